//! What players see when a room's world crashes (a tick panicked, or the
//! world could not be built): the room is forgotten, each of its players
//! is told why (`room_closed`) and moved back to the zone they came from,
//! as if they had left the room, with the progress the zone kept for them.
//!
//! The scheduler reports the crash on its event thread; the net thread
//! moves the players at its next poll of the host.

use std::sync::{Arc, Mutex};

use tessera_net::{
    codec::encode_server,
    proto::{self, event, server_message::Body},
    service::Host,
    transport::ORDERED,
};
use tessera_sim::{Input, PlayerId};

use crate::{arena::Assignment, play::ZoneHost, scheduler::WorldId};

/// Worlds that crashed, with the panic's message, for the net thread to
/// take their players out at its next poll.
#[derive(Clone, Default)]
pub struct CrashedWorlds(Arc<Mutex<Vec<(WorldId, String)>>>);

impl CrashedWorlds {
    /// Notes that `world` crashed.
    pub fn push(&self, world: WorldId, message: String) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((world, message));
    }

    fn take(&self) -> Vec<(WorldId, String)> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// What a player is told of a room that crashed. The panic's message stays
/// in the node's log: it is for the studio, not for players.
pub const ROOM_CRASHED: &str = "the room stopped because of a server error";

/// `room_closed` for each of `players`, on the ordered channel so that it
/// comes before the welcome of the zone they are moved to.
pub fn room_closed(
    players: &[PlayerId],
    world: WorldId,
    reason: &str,
) -> Vec<(PlayerId, u8, Vec<u8>)> {
    let bytes = encode_server(&proto::ServerMessage {
        body: Some(Body::Event(proto::Event {
            kind: Some(event::Kind::RoomClosed(proto::RoomClosed {
                room: world.0,
                reason: reason.to_string(),
            })),
        })),
    });
    players
        .iter()
        .map(|player| (*player, ORDERED, bytes.clone()))
        .collect()
}

impl ZoneHost {
    /// The players of rooms that crashed since the last call, each with
    /// the zone to go back to and the join that takes them there.
    pub(crate) fn out_of_crashed_rooms(&mut self) -> Vec<Assignment> {
        let mut moves = Vec::new();
        for (world, message) in self.crashed.take() {
            let mut players = Vec::new();
            if let Some(arena) = self.arena.get() {
                players.extend(
                    arena
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .crashed(world, ROOM_CRASHED),
                );
            }
            if let Some(rooms) = self.rooms.get() {
                players.extend(
                    rooms
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .crashed(world, ROOM_CRASHED),
                );
            }
            if players.is_empty() {
                // A zone, or a room nobody was in any more.
                tracing::debug!(%world, panic = %message, "crashed world held no room players");
            }
            for player in players {
                let Some(zone) = self.home_zone(player) else {
                    tracing::error!(%player, %world, "no zone to send a crashed room's player back to");
                    continue;
                };
                // As a `leave` does: progress loaded at login if the player
                // never reached a zone, else what the zone kept.
                let join = Input::Join {
                    class: String::new(),
                };
                let input = self.adapt_join(player, join);
                moves.push((player, zone, input));
            }
        }
        moves
    }
}
