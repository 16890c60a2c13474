//! A zone whose world crashed is started again: a new world of the same
//! spec takes the zone's place, and the players the old one had are moved
//! in with their progress as the old world last had it (an avatar's as a
//! leave would keep it; a player away in a room, what was parked for them,
//! restored when they come back). A zone that keeps crashing is left down
//! rather than restarted in a loop.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use tessera_sim::players::PlayersProgress;

use super::{ZoneWorlds, stopping};
use crate::scheduler::WorldId;

/// Crashes of one zone within [`CRASH_WINDOW`] after which it is no
/// longer started again: a bug that strikes at once would otherwise crash
/// it over and over with its players in it.
pub const MAX_CRASHES: usize = 3;
/// See [`MAX_CRASHES`].
pub const CRASH_WINDOW: Duration = Duration::from_secs(60);

/// Each zone's world now, by zone id, and the zones left down (for
/// `/readyz`, and to name a zone's world to the fault injection).
#[derive(Clone, Default)]
pub struct ZoneDirectory(Arc<RwLock<Directory>>);

#[derive(Default)]
struct Directory {
    worlds: BTreeMap<String, WorldId>,
    down: Vec<String>,
}

impl ZoneDirectory {
    /// Zone ids and their worlds' ids (a zone left down has none).
    pub fn worlds(&self) -> BTreeMap<String, u64> {
        self.read()
            .worlds
            .iter()
            .map(|(kind, world)| (kind.clone(), world.0))
            .collect()
    }

    /// Zones whose world crashed too often to be started again.
    pub fn down(&self) -> Vec<String> {
        self.read().down.clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Directory> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Directory> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, kind: &str, world: WorldId) {
        self.write().worlds.insert(kind.to_string(), world);
    }

    fn set_down(&self, kind: &str) {
        let mut directory = self.write();
        directory.worlds.remove(kind);
        directory.down.push(kind.to_string());
    }
}

/// The progress of the players of zone worlds that ended, by world: what a
/// restart moves into the new world. Written by the world's end hook.
#[derive(Clone, Default)]
pub(super) struct Evacuees(Arc<Mutex<BTreeMap<WorldId, PlayersProgress>>>);

impl Evacuees {
    pub(super) fn keep(&self, world: WorldId, progress: PlayersProgress) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(world, progress);
    }

    fn take(&self, world: WorldId) -> PlayersProgress {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&world)
            .unwrap_or_default()
    }
}

/// What the zone task knows to restart zones.
#[derive(Default)]
pub(super) struct Restarts {
    /// Zone ids by their running world.
    zones: BTreeMap<WorldId, String>,
    evacuees: Evacuees,
    /// When each zone crashed lately.
    crashes: BTreeMap<String, VecDeque<Instant>>,
    directory: ZoneDirectory,
}

impl Restarts {
    /// `world` now runs zone `kind`.
    pub(super) fn started(&mut self, world: WorldId, kind: &str) {
        self.zones.insert(world, kind.to_string());
        self.directory.set(kind, world);
    }

    pub(super) fn evacuees(&self) -> Evacuees {
        self.evacuees.clone()
    }

    pub(super) fn directory(&self) -> ZoneDirectory {
        self.directory.clone()
    }
}

/// Notes a crash at `now` in `history` and says whether the zone may be
/// started again: not after [`MAX_CRASHES`] within [`CRASH_WINDOW`].
fn may_restart(history: &mut VecDeque<Instant>, now: Instant) -> bool {
    while history
        .front()
        .is_some_and(|at| now.duration_since(*at) >= CRASH_WINDOW)
    {
        history.pop_front();
    }
    history.push_back(now);
    history.len() < MAX_CRASHES
}

impl ZoneWorlds {
    /// Each zone's world now, by zone id.
    pub fn directory(&self) -> ZoneDirectory {
        self.restarts.directory()
    }

    /// Starts again the zones whose worlds crashed since the last call and
    /// moves their players in. `false` once the scheduler has shut down.
    pub(super) fn restart_crashed(&mut self) -> bool {
        for world in self.host.crashed.take_for_zones() {
            let Some(kind) = self.restarts.zones.remove(&world) else {
                continue; // A room: the net thread sends its players home.
            };
            let progress = self.restarts.evacuees.take(world);
            // Teams were the old world's, restarted or not: their members are
            // told they ended.
            let ended: Vec<_> = {
                let mut teams = self.host.teams.lock().unwrap_or_else(|p| p.into_inner());
                progress
                    .present
                    .iter()
                    .chain(&progress.parked)
                    .filter_map(|(player, _)| Some((*player, teams.remove(player)?.team)))
                    .collect()
            };
            if !ended.is_empty() {
                let _ = self.to_net.send(crate::crashes::team_ended(
                    &ended,
                    crate::crashes::TEAM_CRASHED,
                ));
            }
            let history = self.restarts.crashes.entry(kind.clone()).or_default();
            if !may_restart(history, Instant::now()) {
                tracing::error!(
                    zone = %kind,
                    %world,
                    players = progress.present.len(),
                    "zone crashed {MAX_CRASHES} times within {}s: not starting it again; its players have no world until the node restarts",
                    CRASH_WINDOW.as_secs()
                );
                self.restarts.directory.set_down(&kind);
                continue;
            }
            let Some(spec) = self.running.get(&kind).cloned() else {
                continue;
            };
            let (new, sink) = match self.launch(spec) {
                Ok(started) => started,
                Err(error) if stopping(&error) => return false,
                Err(error) => {
                    tracing::error!(zone = %kind, error = %format!("{error:#}"), "could not start a crashed zone again");
                    continue;
                }
            };
            self.restarts.started(new, &kind);
            // Progress first: the net thread's join reads it.
            let now = Instant::now();
            for (player, kept) in progress.present.iter().chain(&progress.parked) {
                self.host.profiles.insert(*player, kept.clone(), now);
            }
            // The net thread moves whoever its connections had in the old
            // world (a player who was switching to a room as it crashed is
            // in the room now; one switching in from a room is moved).
            if let Some(old) = self.host.replace(&kind, sink.clone()) {
                self.host.crashed.replaced(old, sink);
            }
            let players = progress.present.len();
            tracing::warn!(zone = %kind, crashed = %world, world = %new, players, away = progress.parked.len(), "zone crashed: started it again, moving its players in");
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zone_that_keeps_crashing_is_left_down_and_old_crashes_are_forgotten() {
        let start = Instant::now();
        let mut history = VecDeque::new();
        assert!(may_restart(&mut history, start));
        assert!(may_restart(&mut history, start + Duration::from_secs(10)));
        // A third within the window: down.
        assert!(!may_restart(&mut history, start + Duration::from_secs(20)));

        // Crashes a window apart are each restarted.
        let mut history = VecDeque::new();
        for minute in 0..5 {
            assert!(may_restart(&mut history, start + CRASH_WINDOW * minute));
        }
    }
}
