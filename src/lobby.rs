//! Room commands over the network: listing rooms, opening one (with a
//! password or not), entering one by id, queueing for a match (alone, or a
//! team leader with the whole team) and going back to the zone.
//!
//! The node's rooms are of two kinds, state-sync ([`crate::arena`]) and
//! frame-sync ([`crate::rooms`]); ids are world ids, unique on the node
//! across both. A player is in at most one room or queue at a time.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use tessera_net::{
    codec::RoomRequest,
    service::{InputSink, RoomOutcome},
};
use tessera_sim::{Input, PlayerId};

use crate::play::ZoneHost;

/// The refusal for a wrong room password.
pub const WRONG_PASSWORD: &str = "wrong password";

/// Whether `given` opens a room whose password is `expected` (none: open to
/// all). Compared in constant time over the longer input, so timing does
/// not leak a prefix.
pub fn password_matches(given: Option<&str>, expected: Option<&str>) -> bool {
    let Some(expected) = expected else {
        return true;
    };
    let (a, b) = (given.unwrap_or("").as_bytes(), expected.as_bytes());
    let mut diff = (a.len() ^ b.len()) | usize::from(given.is_none());
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

/// Rooms a node runs at most (matchmade and opened by players, both sync
/// modes): each is a world with its own tick.
pub const MAX_ROOMS: usize = 2_000;
/// A player may open one room per this long.
pub const CREATE_INTERVAL: Duration = Duration::from_secs(2);
/// Wrong passwords a player may give per minute before joins by id are
/// refused for the rest of it.
pub const PASSWORD_FAILURES_PER_MINUTE: u32 = 5;
/// Rooms in one list answer at most (the lowest ids first).
pub const MAX_LISTED: usize = 100;

/// Per-player limits on room commands (the net thread's own state).
#[derive(Clone, Default)]
pub struct Limits {
    last_create: BTreeMap<PlayerId, Instant>,
    /// Wrong passwords in the current minute, and when it began.
    failures: BTreeMap<PlayerId, (Instant, u32)>,
}

impl Limits {
    /// Drops what was kept for `player` (gone from the node).
    pub fn forget(&mut self, player: PlayerId) {
        self.last_create.remove(&player);
        self.failures.remove(&player);
    }

    fn may_create(&mut self, player: PlayerId, now: Instant) -> Result<(), String> {
        if let Some(last) = self.last_create.get(&player)
            && now.duration_since(*last) < CREATE_INTERVAL
        {
            return Err("opening rooms too fast: wait a moment".into());
        }
        self.last_create.insert(player, now);
        Ok(())
    }

    fn may_try_password(&self, player: PlayerId, now: Instant) -> Result<(), String> {
        match self.failures.get(&player) {
            Some((since, count))
                if now.duration_since(*since) < Duration::from_secs(60)
                    && *count >= PASSWORD_FAILURES_PER_MINUTE =>
            {
                Err("too many wrong passwords: try again in a minute".into())
            }
            _ => Ok(()),
        }
    }

    fn wrong_password(&mut self, player: PlayerId, now: Instant) {
        let entry = self.failures.entry(player).or_insert((now, 0));
        if now.duration_since(entry.0) >= Duration::from_secs(60) {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }
}

fn join(class: String) -> Input {
    Input::Join { class }
}

impl ZoneHost {
    /// Carries out one room command of `player`.
    pub(crate) fn room_command(
        &mut self,
        player: PlayerId,
        current: Option<Arc<dyn InputSink>>,
        request: RoomRequest,
    ) -> Result<RoomOutcome, String> {
        let now = Instant::now();
        let (Some(arena), Some(rooms)) = (self.arena.get().cloned(), self.rooms.get().cloned())
        else {
            return Err("this node has no rooms".into());
        };
        let mut arena = arena.lock().unwrap_or_else(|p| p.into_inner());
        let mut rooms = rooms.lock().unwrap_or_else(|p| p.into_inner());
        let busy = |arena: &crate::arena::Arena, rooms: &crate::rooms::Rooms| {
            if arena.room_of(player).is_some() || rooms.contains(player) {
                Err("already in a room: leave it first".to_string())
            } else if arena.is_queued(player) {
                Err("queued for a match: leave the queue first".to_string())
            } else {
                Ok(())
            }
        };
        let moved = |room: u64, sink: Arc<dyn InputSink>, class: String| RoomOutcome {
            room,
            moves: vec![(player, sink, join(class))],
            ..RoomOutcome::default()
        };
        match request {
            RoomRequest::List { kind } => {
                let mut listed = arena.list(&kind);
                listed.extend(rooms.list(&kind));
                listed.sort_by_key(|r| r.id);
                listed.truncate(MAX_LISTED);
                Ok(RoomOutcome {
                    rooms: listed,
                    ..RoomOutcome::default()
                })
            }
            RoomRequest::Create {
                kind,
                password,
                class,
            } => {
                busy(&arena, &rooms)?;
                if arena.room_count() + rooms.room_count() >= MAX_ROOMS {
                    return Err("this node runs as many rooms as it can: try later".into());
                }
                self.limits.may_create(player, now)?;
                let (id, sink) = if arena.is_room_kind(&kind) {
                    arena.create(player, &kind, password)?
                } else if rooms.is_room_kind(&kind) {
                    rooms.create(player, &kind, password)?
                } else {
                    return Err(format!("{kind:?} is not a room kind on this node"));
                };
                tracing::info!(%player, room = id, kind, "room opened");
                Ok(moved(id, sink, class))
            }
            RoomRequest::Join {
                room,
                password,
                class,
            } => {
                busy(&arena, &rooms)?;
                self.limits.may_try_password(player, now)?;
                let joined = arena
                    .join(player, room, password.as_deref())
                    .and_then(|found| match found {
                        Some(sink) => Ok(Some(sink)),
                        None => rooms.join(player, room, password.as_deref()),
                    });
                match joined {
                    Ok(Some(sink)) => Ok(moved(room, sink, class)),
                    Ok(None) => Err(format!("no room {room}")),
                    Err(reason) => {
                        if reason == WRONG_PASSWORD {
                            self.limits.wrong_password(player, now);
                        }
                        Err(reason)
                    }
                }
            }
            RoomRequest::Leave => {
                let from_arena = arena.leave(player);
                let from_frame = rooms.contains(player);
                // Wherever the player is if not in a zone (a room that
                // ended, a finished one), they go home.
                let in_zone = current.as_ref().is_none_or(|sink| self.is_zone(sink));
                match (from_arena, from_frame) {
                    (None, false) if in_zone => Err("not in a room or a queue".into()),
                    // Queued from the zone, and still there.
                    (Some(false), false) if in_zone => Ok(RoomOutcome::default()),
                    _ => {
                        let zone = self.home_zone(player).ok_or("no zone to go back to")?;
                        // Progress loaded at login if the player never
                        // reached a zone yet; else the zone resumes what it
                        // kept when they left it.
                        let input = tessera_net::service::Host::adapt_join(
                            self,
                            player,
                            join(String::new()),
                        );
                        Ok(RoomOutcome {
                            moves: vec![(player, zone, input)],
                            ..RoomOutcome::default()
                        })
                    }
                }
            }
            RoomRequest::Queue { kind, class } => {
                busy(&arena, &rooms)?;
                let party = match self.team_of(player) {
                    Some((leader, _)) if leader != player => {
                        return Err("only the team leader can queue the team".into());
                    }
                    Some((_, members)) => members
                        .into_iter()
                        .map(|m| {
                            (
                                m,
                                if m == player {
                                    class.clone()
                                } else {
                                    String::new()
                                },
                            )
                        })
                        .collect(),
                    None => vec![(player, class)],
                };
                if let Some((mate, _)) = party.iter().find(|(m, _)| {
                    *m != player && (arena.room_of(*m).is_some() || rooms.contains(*m))
                }) {
                    return Err(format!("team member {} is in a room", mate.0));
                }
                arena.queue_from_zone(&kind, party)?;
                Ok(RoomOutcome::default())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_match_exactly() {
        assert!(password_matches(None, None));
        assert!(password_matches(Some("anything"), None));
        assert!(password_matches(Some("s3cret"), Some("s3cret")));
        assert!(!password_matches(None, Some("s3cret")));
        assert!(!password_matches(Some(""), Some("s3cret")));
        assert!(!password_matches(Some("s3cre"), Some("s3cret")));
        assert!(!password_matches(Some("s3cret!"), Some("s3cret")));
        assert!(!password_matches(Some("S3cret"), Some("s3cret")));
    }

    #[test]
    fn wrong_passwords_lock_joins_out_for_the_minute() {
        let mut limits = Limits::default();
        let (player, now) = (PlayerId(7), Instant::now());
        for _ in 0..PASSWORD_FAILURES_PER_MINUTE {
            assert!(limits.may_try_password(player, now).is_ok());
            limits.wrong_password(player, now);
        }
        assert!(limits.may_try_password(player, now).is_err());
        assert!(
            limits.may_try_password(PlayerId(8), now).is_ok(),
            "others may"
        );
        let later = now + Duration::from_secs(61);
        assert!(limits.may_try_password(player, later).is_ok());
        limits.wrong_password(player, later);
        assert!(
            limits.may_try_password(player, later).is_ok(),
            "a new minute"
        );
    }

    #[test]
    fn a_player_opens_one_room_per_interval() {
        let mut limits = Limits::default();
        let (player, now) = (PlayerId(7), Instant::now());
        assert!(limits.may_create(player, now).is_ok());
        assert!(
            limits
                .may_create(player, now + Duration::from_millis(500))
                .is_err()
        );
        assert!(limits.may_create(player, now + CREATE_INTERVAL).is_ok());
    }
}
