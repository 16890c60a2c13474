//! A world: a bevy `App` assembled from plugins, then stepped by hand one
//! tick per call on whatever thread owns it.

use std::sync::Arc;

use bevy_app::App;
use bevy_ecs::{resource::Resource, world::World};
use serde::{Deserialize, Serialize};
use tessera_tables::{Tables, TablesHash};

use crate::{
    chat::ChatPlugin,
    combat::CombatPlugin,
    core::{CorePlugin, GameTables},
    input::{Inbox, Input, InputEnvelope, PlayerId},
    movement::MovementPlugin,
    npc::NpcPlugin,
    output::{OutEvent, Outbox},
    players::PlayersPlugin,
    replay::TickRecord,
    room::RoomPlugin,
    schedule::TickSchedule,
    state_hash::StateHashes,
    teams::TeamsPlugin,
    zone::ZonePlugin,
};

/// Fastest tick rate a world accepts. Game worlds run 10-60 Hz; tests and
/// replays of them may run faster.
pub const MAX_TICK_HZ: u16 = 1000;

/// Everything a world is built from, besides its plugins. Recorded in replay
/// headers, so the same spec and inputs always give the same ticks.
#[derive(Resource, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorldSpec {
    /// The world kind (a `zones` table id, e.g. `"starter"`).
    pub kind: String,
    /// Seed of the world's `SimRng`.
    pub seed: u64,
    /// Ticks per second.
    pub tick_hz: u16,
    /// Width of the playable area, in millimetres.
    pub width: i32,
    /// Height of the playable area, in millimetres.
    pub height: i32,
    /// Most players at once.
    pub capacity: u32,
}

impl Default for WorldSpec {
    fn default() -> Self {
        Self {
            kind: "sandbox".into(),
            seed: 0,
            tick_hz: 20,
            width: 200_000,
            height: 200_000,
            capacity: 1_000,
        }
    }
}

/// A `WorldSpec` the runtime cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// `tick_hz` is 0 or above [`MAX_TICK_HZ`].
    #[error("tick rate {0} Hz is outside 1..={MAX_TICK_HZ}")]
    TickRate(u16),
    /// Width or height is not positive.
    #[error("world size {width}x{height} mm must be positive")]
    Size {
        /// The width given.
        width: i32,
        /// The height given.
        height: i32,
    },
}

impl WorldSpec {
    /// Checks the spec can be run.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.tick_hz == 0 || self.tick_hz > MAX_TICK_HZ {
            return Err(SpecError::TickRate(self.tick_hz));
        }
        if self.width <= 0 || self.height <= 0 {
            return Err(SpecError::Size {
                width: self.width,
                height: self.height,
            });
        }
        Ok(())
    }

    /// The tick period in nanoseconds.
    pub fn tick_period_nanos(&self) -> u64 {
        1_000_000_000 / u64::from(self.tick_hz.max(1))
    }
}

/// The number of the tick being (or last) simulated; the first tick is 1.
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tick(pub u64);

/// What one step produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TickReport {
    /// The tick just simulated.
    pub tick: u64,
    /// Its 64-bit state hash.
    pub hash: u64,
}

/// A world, ready to be stepped. `Send`, so a worker thread can own it.
pub struct SimWorld {
    world: World,
    spec: WorldSpec,
    tick: u64,
    last_hash: u64,
    recording: Option<Vec<TickRecord>>,
}

impl std::fmt::Debug for SimWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimWorld")
            .field("spec", &self.spec)
            .field("tick", &self.tick)
            .field("entities", &self.world.entities().len())
            .finish_non_exhaustive()
    }
}

impl SimWorld {
    /// A world of `spec` with the standard gameplay plugins.
    pub fn new(spec: WorldSpec) -> Result<Self, SpecError> {
        Self::build(spec, |_| {})
    }

    /// A world of `spec` with the standard gameplay plugins plus whatever
    /// `extra` adds (host-side plugins, test systems).
    pub fn build(spec: WorldSpec, extra: impl FnOnce(&mut App)) -> Result<Self, SpecError> {
        spec.validate()?;
        let mut app = App::new();
        app.insert_resource(spec.clone());
        app.add_plugins((
            CorePlugin { seed: spec.seed },
            ZonePlugin::default(),
            PlayersPlugin,
            MovementPlugin,
            CombatPlugin,
            NpcPlugin,
            TeamsPlugin::default(),
            ChatPlugin::default(),
            RoomPlugin,
        ));
        extra(&mut app);
        app.finish();
        app.cleanup();
        // `App` is not `Send`, its `World` is: keep the world, drop the app.
        let world = std::mem::take(app.world_mut());
        Ok(Self {
            world,
            spec,
            tick: 0,
            last_hash: 0,
            recording: None,
        })
    }

    /// Sets the tick counter and last hash of a world rebuilt from a
    /// checkpoint (the `Tick` resource is the caller's to set).
    pub(crate) fn restore_clock(&mut self, tick: u64, last_hash: u64) {
        self.tick = tick;
        self.last_hash = last_hash;
    }

    /// The spec this world was built from.
    pub fn spec(&self) -> &WorldSpec {
        &self.spec
    }

    /// The last tick simulated (0 before the first step).
    pub fn tick(&self) -> u64 {
        self.tick
    }

    /// The state hash after the last tick (0 before the first step).
    pub fn last_hash(&self) -> u64 {
        self.last_hash
    }

    /// The game tables this world reads.
    pub fn tables(&self) -> &Arc<Tables> {
        &self.world.resource::<GameTables>().0
    }

    /// The content hash of the tables this world reads.
    pub fn tables_hash(&self) -> TablesHash {
        self.tables().hash()
    }

    /// Replaces the game tables. Call between ticks only (this is how a hot
    /// reload reaches a world: at a tick boundary, never mid-tick).
    pub fn set_tables(&mut self, tables: Arc<Tables>) {
        self.world.resource_mut::<GameTables>().0 = tables;
    }

    /// Queues an input for the next tick.
    pub fn push_input(&mut self, player: PlayerId, input: Input) {
        self.world.resource_mut::<Inbox>().push(player, input);
    }

    /// Simulates exactly one tick with the queued inputs.
    pub fn step(&mut self) -> TickReport {
        self.tick += 1;
        let tick = self.tick;
        let _span = tracing::debug_span!("tick", world = %self.spec.kind, tick).entered();
        self.world.resource_mut::<crate::world::Tick>().0 = tick;
        let inputs = self.world.resource_mut::<Inbox>().take();
        let recorded_inputs = self.recording.as_ref().map(|_| inputs.clone());
        self.world.resource_mut::<Inbox>().set(inputs);

        self.world.run_schedule(TickSchedule);
        self.world.clear_trackers();
        self.world.resource_mut::<Inbox>().take();

        let hashes = self.world.resource::<StateHashes>();
        let hash = hashes.combine(tick);
        if let (Some(recording), Some(inputs)) = (self.recording.as_mut(), recorded_inputs) {
            recording.push(TickRecord {
                tick,
                inputs,
                hash,
                parts: hashes.parts().to_vec(),
            });
        }
        self.last_hash = hash;
        TickReport { tick, hash }
    }

    /// Events the last ticks produced, oldest first.
    pub fn drain_events(&mut self) -> Vec<OutEvent> {
        self.world.resource_mut::<Outbox>().take()
    }

    /// Names of the state hash parts, in order.
    pub fn hash_part_names(&self) -> Vec<String> {
        let hashes = self.world.resource::<StateHashes>();
        hashes.names().iter().map(|n| n.to_string()).collect()
    }

    /// The state hash parts of the last tick.
    pub fn hash_parts(&self) -> &[u64] {
        self.world.resource::<StateHashes>().parts()
    }

    /// Starts keeping a `TickRecord` for every tick from now on.
    pub fn start_recording(&mut self) {
        self.recording.get_or_insert_with(Vec::new);
    }

    /// Stops recording and drops records not yet taken.
    pub fn stop_recording(&mut self) {
        self.recording = None;
    }

    /// Whether ticks are being recorded.
    pub fn is_recording(&self) -> bool {
        self.recording.is_some()
    }

    /// Takes the records kept since the last call (empty when not recording).
    pub fn take_recorded(&mut self) -> Vec<TickRecord> {
        self.recording
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Read access to the ECS world (inspection, tests).
    pub fn world(&self) -> &World {
        &self.world
    }

    /// Write access to the ECS world. Changing gameplay state from outside a
    /// tick breaks replays: meant for setup in tests and benches.
    pub fn world_mut(&mut self) -> &mut World {
        &mut self.world
    }

    /// Queues a batch of envelopes (as read back from a replay).
    pub fn push_envelopes(&mut self, envelopes: impl IntoIterator<Item = InputEnvelope>) {
        let mut inbox = self.world.resource_mut::<Inbox>();
        for envelope in envelopes {
            inbox.push_envelope(envelope);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn sim_world_is_send() {
        assert_send::<SimWorld>();
    }

    #[test]
    fn bad_specs_are_refused() {
        let spec = WorldSpec {
            tick_hz: 0,
            ..WorldSpec::default()
        };
        assert_eq!(SimWorld::new(spec).unwrap_err(), SpecError::TickRate(0));
        let spec = WorldSpec {
            width: 0,
            ..WorldSpec::default()
        };
        assert!(matches!(
            SimWorld::new(spec).unwrap_err(),
            SpecError::Size { .. }
        ));
    }

    #[test]
    fn one_step_is_one_tick() {
        let mut world = SimWorld::new(WorldSpec::default()).unwrap();
        assert_eq!(world.tick(), 0);
        let a = world.step();
        let b = world.step();
        assert_eq!((a.tick, b.tick), (1, 2));
        assert_ne!(a.hash, b.hash, "the tick number is part of the hash");
    }

    #[test]
    fn same_seed_and_inputs_give_same_hashes_and_other_seeds_do_not() {
        let run = |seed| {
            let mut world = SimWorld::new(WorldSpec {
                seed,
                ..WorldSpec::default()
            })
            .unwrap();
            world.push_input(
                PlayerId(1),
                Input::Join {
                    class: "warrior".into(),
                },
            );
            (0..50).map(|_| world.step().hash).collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(
            run(1),
            run(2),
            "the spawn point is drawn from the seeded rng"
        );
    }
}
