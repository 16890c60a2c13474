//! What players see when a world crashes (a tick panicked, or the world
//! could not be built).
//!
//! - A room is forgotten; each of its players is told why (`room_closed`)
//!   and moved back to the zone they came from, as if they had left the
//!   room, with the progress the zone kept for them.
//! - A zone is started again by the zone task (`zone_worlds`), and its
//!   players are moved into the new world with their progress as the old
//!   one last had it; teams were the old world's, and their members are
//!   told they ended (`team_left` with a reason).
//!
//! The scheduler reports the crash on its event thread; the net thread
//! moves the players at its next poll of the host.

use std::sync::{Arc, Mutex};

use tessera_net::{
    codec::encode_server,
    proto::{self, event, server_message::Body},
    service::{Host, InputSink},
    transport::{ORDERED, RELIABLE},
};
use tessera_sim::{Input, PlayerId, TeamId};

use crate::{arena::Assignment, play::ZoneHost, scheduler::WorldId};

/// Worlds that crashed, as the scheduler reported them, and players to
/// move to a zone's new world; shared by the event thread that hears of
/// crashes, the task that restarts zones, and the net thread.
#[derive(Clone, Default)]
pub struct CrashedWorlds(Arc<Shared>);

#[derive(Default)]
struct Shared {
    crashes: Mutex<Crashes>,
    /// Wakes the zone task at once: between a zone's crash and its new
    /// world, its players' inputs have nowhere to go.
    zone_crashed: tokio::sync::Notify,
}

/// A crashed zone's world, and the world that took its place.
type Replaced = (Arc<dyn InputSink>, Arc<dyn InputSink>);

#[derive(Default)]
struct Crashes {
    /// For the net thread: rooms among them send their players home.
    rooms: Vec<(WorldId, String)>,
    /// For the zone task: zones among them are started again.
    zones: Vec<WorldId>,
    /// Crashed zones' worlds and their replacements, for the net thread.
    replaced: Vec<Replaced>,
}

impl CrashedWorlds {
    fn lock(&self) -> std::sync::MutexGuard<'_, Crashes> {
        self.0.crashes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes that `world` crashed with the panic `message`.
    pub fn push(&self, world: WorldId, message: String) {
        {
            let mut crashes = self.lock();
            crashes.rooms.push((world, message));
            crashes.zones.push(world);
        }
        self.0.zone_crashed.notify_one();
    }

    /// The worlds that crashed since the last call, for the zone task.
    pub fn take_for_zones(&self) -> Vec<WorldId> {
        std::mem::take(&mut self.lock().zones)
    }

    /// Returns once a world crashed since the last return (at once if one
    /// did meanwhile: the wake-up is kept), for the zone task.
    pub async fn crashed(&self) {
        self.0.zone_crashed.notified().await;
    }

    /// At the net thread's next poll, every player in `old` is moved to
    /// `new` (a crashed zone's world and the one started in its place).
    pub fn replaced(&self, old: Arc<dyn InputSink>, new: Arc<dyn InputSink>) {
        self.lock().replaced.push((old, new));
    }

    fn take_rooms(&self) -> Vec<(WorldId, String)> {
        std::mem::take(&mut self.lock().rooms)
    }

    /// The replaced worlds since the last call, for the net thread.
    pub(crate) fn take_replaced(&self) -> Vec<Replaced> {
        std::mem::take(&mut self.lock().replaced)
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

/// What a team's members are told when their zone's world crashed.
pub const TEAM_CRASHED: &str = "the team ended: its zone stopped because of a server error";

/// `team_left` for each of `members` (each with their team), with
/// `reason`: the team is gone though nobody left it.
pub fn team_ended(members: &[(PlayerId, TeamId)], reason: &str) -> Vec<(PlayerId, u8, Vec<u8>)> {
    members
        .iter()
        .map(|(player, team)| {
            let bytes = encode_server(&proto::ServerMessage {
                body: Some(Body::Event(proto::Event {
                    kind: Some(event::Kind::TeamLeft(proto::TeamLeft {
                        team: team.0,
                        kicked: false,
                        reason: reason.to_string(),
                    })),
                })),
            });
            (*player, RELIABLE, bytes)
        })
        .collect()
}

impl ZoneHost {
    /// The players of rooms that crashed since the last call, each with
    /// the zone to go back to and the join that takes them there.
    pub(crate) fn out_of_crashed_rooms(&mut self) -> Vec<Assignment> {
        let mut moves = Vec::new();
        for (world, message) in self.crashed.take_rooms() {
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
                // A zone (the zone task starts it again), or a room nobody
                // was in any more.
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The zone task may be busy (starting a zone, syncing tables) when a
    /// world crashes: the wake-up waits for it, and one wake-up covers
    /// every crash noted before it looks.
    #[tokio::test]
    async fn a_crash_wakes_the_zone_task_even_if_noted_before_it_waits() {
        let crashed = CrashedWorlds::default();
        crashed.push(WorldId(3), "boom".into());
        crashed.push(WorldId(4), "boom".into());
        tokio::time::timeout(Duration::from_secs(10), crashed.crashed())
            .await
            .expect("woken by the crashes noted before");
        assert_eq!(crashed.take_for_zones(), [WorldId(3), WorldId(4)]);
        // Nothing new: no wake-up left over.
        let idle = tokio::time::timeout(Duration::from_millis(50), crashed.crashed()).await;
        assert!(idle.is_err(), "woken without a crash");
        let waiter = tokio::spawn({
            let crashed = crashed.clone();
            async move { crashed.crashed().await }
        });
        // The waiter waits before the crash comes (one thread: it runs now).
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "woken without a crash");
        crashed.push(WorldId(5), "boom".into());
        tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("woken by a crash while waiting")
            .unwrap();
    }
}
