//! The node's room directory: create, list, join, leave; capacity and an
//! optional password. Pure and deterministic: the host owns it and turns
//! its decisions into room worlds.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use tessera_tables::{Tables, schema::ZoneKind};

use crate::input::PlayerId;

/// A room, numbered on its node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RoomId(pub u64);

/// Why a directory request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum RoomError {
    /// No `zones` row with that id.
    #[error("no such room kind")]
    UnknownKind,
    /// The `zones` row is a zone, not a room.
    #[error("that kind is a zone, not a room")]
    NotARoom,
    /// No such room.
    #[error("no such room")]
    NoSuchRoom,
    /// The password does not match.
    #[error("wrong password")]
    WrongPassword,
    /// The room is at capacity.
    #[error("the room is full")]
    Full,
    /// The player is already in a room.
    #[error("already in a room")]
    AlreadyInRoom,
    /// The player is in no room.
    #[error("not in a room")]
    NotInRoom,
    /// The room has started; it takes no one new.
    #[error("the room has started")]
    Started,
}

/// A room as listed (never shows the password).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSummary {
    /// Its id.
    pub id: RoomId,
    /// Its kind (`zones` row).
    pub kind: String,
    /// Players in it.
    pub players: usize,
    /// Most players.
    pub capacity: usize,
    /// Whether joining needs a password.
    pub has_password: bool,
    /// Whether it has started.
    pub started: bool,
}

#[derive(Clone, Debug)]
struct Entry {
    kind: String,
    capacity: usize,
    password: Option<String>,
    players: BTreeSet<PlayerId>,
    started: bool,
}

/// What a leave did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Left {
    /// The room goes on.
    Stays(RoomId),
    /// It was the last player: the room is gone; end its world.
    Closed(RoomId),
}

/// Every open room on a node.
#[derive(Clone, Debug, Default)]
pub struct RoomDirectory {
    next: u64,
    rooms: BTreeMap<RoomId, Entry>,
    of: BTreeMap<PlayerId, RoomId>,
}

fn same(a: &str, b: &str) -> bool {
    // Constant-time over the longer input, so timing does not leak a prefix.
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

impl RoomDirectory {
    /// `owner` opens a room of `kind` (a `zones` row of kind room) and is in it.
    pub fn create(
        &mut self,
        owner: PlayerId,
        kind: &str,
        password: Option<String>,
        tables: &Tables,
    ) -> Result<RoomId, RoomError> {
        let zone = tables.zones.get(kind).ok_or(RoomError::UnknownKind)?;
        if zone.kind != ZoneKind::Room {
            return Err(RoomError::NotARoom);
        }
        if self.of.contains_key(&owner) {
            return Err(RoomError::AlreadyInRoom);
        }
        self.next += 1;
        let id = RoomId(self.next);
        let password = password.filter(|p| !p.is_empty());
        let players = BTreeSet::from([owner]);
        self.rooms.insert(
            id,
            Entry {
                kind: kind.into(),
                capacity: zone.capacity as usize,
                password,
                players,
                started: false,
            },
        );
        self.of.insert(owner, id);
        Ok(id)
    }

    /// Open rooms, optionally of one kind, by id.
    pub fn list(&self, kind: Option<&str>) -> Vec<RoomSummary> {
        self.rooms
            .iter()
            .filter(|(_, e)| kind.is_none_or(|k| e.kind == k))
            .map(|(id, e)| RoomSummary {
                id: *id,
                kind: e.kind.clone(),
                players: e.players.len(),
                capacity: e.capacity,
                has_password: e.password.is_some(),
                started: e.started,
            })
            .collect()
    }

    /// `player` joins `room`.
    pub fn join(
        &mut self,
        player: PlayerId,
        room: RoomId,
        password: Option<&str>,
    ) -> Result<(), RoomError> {
        if self.of.contains_key(&player) {
            return Err(RoomError::AlreadyInRoom);
        }
        let entry = self.rooms.get_mut(&room).ok_or(RoomError::NoSuchRoom)?;
        if let Some(expected) = &entry.password
            && !password.is_some_and(|given| same(given, expected))
        {
            return Err(RoomError::WrongPassword);
        }
        if entry.started {
            return Err(RoomError::Started);
        }
        if entry.players.len() >= entry.capacity {
            return Err(RoomError::Full);
        }
        entry.players.insert(player);
        self.of.insert(player, room);
        Ok(())
    }

    /// `player` leaves their room; the last one out closes it.
    pub fn leave(&mut self, player: PlayerId) -> Result<Left, RoomError> {
        let room = self.of.remove(&player).ok_or(RoomError::NotInRoom)?;
        let entry = self.rooms.get_mut(&room).expect("a player's room exists");
        entry.players.remove(&player);
        if entry.players.is_empty() {
            self.rooms.remove(&room);
            return Ok(Left::Closed(room));
        }
        Ok(Left::Stays(room))
    }

    /// Marks a room started (it takes no one new).
    pub fn mark_started(&mut self, room: RoomId) {
        if let Some(entry) = self.rooms.get_mut(&room) {
            entry.started = true;
        }
    }

    /// The room `player` is in.
    pub fn room_of(&self, player: PlayerId) -> Option<RoomId> {
        self.of.get(&player).copied()
    }

    /// The players in `room`, by id.
    pub fn players(&self, room: RoomId) -> Vec<PlayerId> {
        self.rooms
            .get(&room)
            .map(|e| e.players.iter().copied().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_tables::generate::default_tables;

    #[test]
    fn create_list_join_leave() {
        let tables = default_tables();
        let mut rooms = RoomDirectory::default();
        assert_eq!(
            rooms.create(PlayerId(1), "nope", None, &tables),
            Err(RoomError::UnknownKind)
        );
        assert_eq!(
            rooms.create(PlayerId(1), "starter", None, &tables),
            Err(RoomError::NotARoom)
        );
        let open = rooms.create(PlayerId(1), "arena", None, &tables).unwrap();
        let locked = rooms
            .create(PlayerId(2), "arena", Some("sesame".into()), &tables)
            .unwrap();
        assert_eq!(
            rooms.create(PlayerId(1), "arena", None, &tables),
            Err(RoomError::AlreadyInRoom)
        );
        let listed = rooms.list(Some("arena"));
        assert_eq!(listed.len(), 2);
        assert!(!listed[0].has_password && listed[1].has_password);
        assert_eq!(listed[0].capacity, 10);

        assert_eq!(
            rooms.join(PlayerId(3), locked, None),
            Err(RoomError::WrongPassword)
        );
        assert_eq!(
            rooms.join(PlayerId(3), locked, Some("sesam")),
            Err(RoomError::WrongPassword)
        );
        rooms.join(PlayerId(3), locked, Some("sesame")).unwrap();
        assert_eq!(
            rooms.join(PlayerId(3), open, None),
            Err(RoomError::AlreadyInRoom)
        );
        assert_eq!(
            rooms.join(PlayerId(4), RoomId(99), None),
            Err(RoomError::NoSuchRoom)
        );

        assert_eq!(rooms.leave(PlayerId(2)), Ok(Left::Stays(locked)));
        assert_eq!(
            rooms.leave(PlayerId(3)),
            Ok(Left::Closed(locked)),
            "a room whose players all left ends"
        );
        assert_eq!(rooms.leave(PlayerId(3)), Err(RoomError::NotInRoom));
        assert_eq!(rooms.list(None).len(), 1);
    }

    #[test]
    fn capacity_and_started_rooms() {
        let tables = default_tables();
        let mut rooms = RoomDirectory::default();
        let duel = rooms
            .create(PlayerId(1), "duel_lockstep", None, &tables)
            .unwrap(); // capacity 4
        for p in 2..=4 {
            rooms.join(PlayerId(p), duel, None).unwrap();
        }
        assert_eq!(rooms.join(PlayerId(5), duel, None), Err(RoomError::Full));
        rooms.leave(PlayerId(4)).unwrap();
        rooms.mark_started(duel);
        assert_eq!(rooms.join(PlayerId(5), duel, None), Err(RoomError::Started));
        assert_eq!(
            rooms.players(duel),
            vec![PlayerId(1), PlayerId(2), PlayerId(3)]
        );
    }
}
