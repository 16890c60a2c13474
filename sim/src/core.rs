//! The plugin every world starts from: its doors, clock, randomness and hash.

use std::sync::Arc;

use bevy_app::{App, Plugin};
use bevy_ecs::{
    resource::Resource,
    schedule::{IntoScheduleConfigs, Schedule, SingleThreadedExecutor},
};
use tessera_tables::Tables;

use crate::{
    entity::SimIds,
    hash::{StableHasher, StateHash},
    input::Inbox,
    output::Outbox,
    rng::SimRng,
    schedule::{TickSchedule, TickSystems},
    state_hash::{AppStateHashExt, StateHashes},
    world::Tick,
};

/// The game tables a world reads. Swapped only between ticks; its content
/// hash is part of the state hash, so a replay notices different data.
#[derive(Resource, Clone, Debug, Default)]
pub struct GameTables(pub Arc<Tables>);

impl StateHash for GameTables {
    fn hash_state(&self, hasher: &mut StableHasher) {
        hasher.write_u64(self.0.hash().0);
    }
}

/// Installs the tick schedule with its ordered sets, the `Tick`, `SimRng`,
/// `SimIds`, `Inbox`, `Outbox` and `GameTables` resources, and the state hash.
#[derive(Debug, Clone, Default)]
pub struct CorePlugin {
    /// Seed of the world's random number generator.
    pub seed: u64,
}

impl Plugin for CorePlugin {
    fn build(&self, app: &mut App) {
        let mut schedule = Schedule::new(TickSchedule);
        // Parallelism comes from many worlds, never from inside one.
        schedule.set_executor(SingleThreadedExecutor::new());
        app.add_schedule(schedule);
        // The order is written once, in `TickSystems::ORDER`.
        for pair in TickSystems::ORDER.windows(2) {
            app.configure_sets(TickSchedule, pair[0].before(pair[1]));
        }

        app.insert_resource(Tick(0))
            .insert_resource(SimRng::from_seed(self.seed))
            .init_resource::<SimIds>()
            .init_resource::<Inbox>()
            .init_resource::<Outbox>()
            .init_resource::<StateHashes>()
            .init_resource::<GameTables>();
        app.hash_resource::<SimRng>()
            .hash_resource::<SimIds>()
            .hash_resource::<GameTables>();
    }
}

#[cfg(test)]
mod tests {
    use bevy_ecs::{resource::Resource, schedule::IntoScheduleConfigs, system::ResMut};

    use crate::{SimWorld, TickSchedule, TickSystems, WorldSpec};

    #[derive(Resource, Default)]
    struct Ran(Vec<TickSystems>);

    #[test]
    fn stages_run_in_the_documented_order() {
        let mut world = SimWorld::build(WorldSpec::default(), |app| {
            app.init_resource::<Ran>();
            // Registered in reverse to show the order comes from the sets, not from registration.
            for set in TickSystems::ORDER.into_iter().rev() {
                app.add_systems(
                    TickSchedule,
                    (move |mut ran: ResMut<Ran>| ran.0.push(set)).in_set(set),
                );
            }
        })
        .unwrap();
        world.step();
        assert_eq!(
            world.world().resource::<Ran>().0,
            TickSystems::ORDER.to_vec()
        );
    }
}
