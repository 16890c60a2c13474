//! Room commands over the network: listing rooms, opening one (with a
//! password or not), entering one by id, queueing for a match (alone, or a
//! team leader with the whole team) and going back to the zone.
//!
//! The node's rooms are of two kinds, state-sync ([`crate::arena`]) and
//! frame-sync ([`crate::rooms`]); ids are world ids, unique on the node
//! across both. A player is in at most one room or queue at a time.

use std::sync::Arc;

use tessera_net::{
    codec::RoomRequest,
    service::{InputSink, RoomOutcome},
};
use tessera_sim::{Input, PlayerId};

use crate::play::ZoneHost;

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

fn join(class: String) -> Input {
    Input::Join { class }
}

impl ZoneHost {
    /// Carries out one room command of `player`.
    pub(crate) fn room_command(
        &mut self,
        player: PlayerId,
        request: RoomRequest,
    ) -> Result<RoomOutcome, String> {
        let (Some(arena), Some(rooms)) = (self.arena.get().cloned(), self.rooms.get().cloned())
        else {
            return Err("this node has no rooms".into());
        };
        let mut arena = arena.lock().unwrap_or_else(|p| p.into_inner());
        let mut rooms = rooms.lock().unwrap_or_else(|p| p.into_inner());
        let busy = |arena: &crate::arena::Arena, rooms: &crate::rooms::Rooms| {
            if arena.room_of(player).is_some() || rooms.contains(player) {
                Err("already in a room: leave it first".to_string())
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
                let sink = match arena.join(player, room, password.as_deref())? {
                    Some(sink) => sink,
                    None => rooms
                        .join(player, room, password.as_deref())?
                        .ok_or_else(|| format!("no room {room}"))?,
                };
                Ok(moved(room, sink, class))
            }
            RoomRequest::Leave => {
                let from_arena = arena.leave(player);
                let from_frame = rooms.contains(player);
                match (from_arena, from_frame) {
                    (None, false) => Err("not in a room or a queue".into()),
                    // Queued from the zone, and still there.
                    (Some(false), false) => Ok(RoomOutcome::default()),
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
    use super::password_matches;

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
}
