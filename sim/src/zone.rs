//! A world's first tick: rules, spawn points and NPCs from its `zones` row.

use bevy_app::{App, Plugin};
use bevy_ecs::{
    resource::Resource,
    schedule::IntoScheduleConfigs,
    system::{Commands, Query, Res, ResMut},
};
use tessera_tables::schema::ZoneKind;

use crate::{
    combat::components::{Allegiance, Health},
    core::GameTables,
    entity::{SimId, SimIds},
    movement::Position,
    npc::spawn_npc,
    players::apply_presence,
    rng::SimRng,
    room::Room,
    rules::WorldRules,
    schedule::{TickSchedule, TickSystems},
    spatial::SpatialGrid,
    world::WorldSpec,
};

/// Whether the zone has been set up.
#[derive(Resource, Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ZoneSetUp(pub bool);

fn clamp_point(p: &tessera_tables::values::Point, spec: &WorldSpec) -> Position {
    Position {
        x: p.x.mm.clamp(0, i64::from(spec.width)) as i32,
        y: p.y.mm.clamp(0, i64::from(spec.height)) as i32,
    }
}

/// Reads the world's `zones` row (by `WorldSpec::kind`) once, on the first tick.
#[allow(clippy::too_many_arguments)]
pub fn set_up_zone(
    mut done: ResMut<ZoneSetUp>,
    spec: Res<WorldSpec>,
    tables: Res<GameTables>,
    mut rules: ResMut<WorldRules>,
    mut room: ResMut<Room>,
    mut commands: Commands,
    mut ids: ResMut<SimIds>,
    mut rng: ResMut<SimRng>,
) {
    if done.0 {
        return;
    }
    done.0 = true;
    rules.player_respawn_ticks = 5 * u64::from(spec.tick_hz);
    let Some(zone) = tables.0.zones.get(&spec.kind) else {
        return;
    };
    rules.spawn_points = zone
        .spawn_points
        .0
        .iter()
        .map(|p| clamp_point(p, &spec))
        .collect();
    if zone.kind == ZoneKind::Room {
        room.activate(&spec, &mut rules);
    }
    for spawn in &zone.npc_spawns.0 {
        let Some(row) = tables.0.npcs.get(&spawn.npc.0) else {
            continue;
        };
        let center = clamp_point(&spawn.at, &spec);
        for _ in 0..spawn.count {
            let at = Position {
                x: (center.x + rng.range_i32(-2_000, 2_000)).clamp(0, spec.width),
                y: (center.y + rng.range_i32(-2_000, 2_000)).clamp(0, spec.height),
            };
            spawn_npc(&mut commands, &mut ids, row, at, &tables.0);
        }
    }
}

/// Rebuilds the spatial grid from every living entity, after movement.
pub fn rebuild_grid(
    mut grid: ResMut<SpatialGrid>,
    query: Query<(
        bevy_ecs::entity::Entity,
        &SimId,
        &Position,
        &Allegiance,
        &Health,
    )>,
) {
    grid.rebuild(query.iter().filter(|(.., health)| health.alive()).map(
        |(entity, id, position, allegiance, _)| crate::spatial::GridEntry {
            id: *id,
            entity,
            position: *position,
            allegiance: *allegiance,
        },
    ));
}

/// Zone set-up and the spatial grid.
#[derive(Debug, Clone)]
pub struct ZonePlugin {
    /// Grid cell size, mm.
    pub grid_cell_mm: i32,
}

impl Default for ZonePlugin {
    fn default() -> Self {
        Self {
            grid_cell_mm: 10_000,
        }
    }
}

impl Plugin for ZonePlugin {
    fn build(&self, app: &mut App) {
        let spec = app.world().resource::<WorldSpec>().clone();
        app.init_resource::<ZoneSetUp>()
            .init_resource::<WorldRules>()
            .insert_resource(SpatialGrid::new(spec.width, spec.height, self.grid_cell_mm))
            .add_systems(
                TickSchedule,
                set_up_zone
                    .in_set(TickSystems::Input)
                    .before(apply_presence),
            )
            .add_systems(
                TickSchedule,
                rebuild_grid
                    .in_set(TickSystems::Movement)
                    .after(crate::movement::integrate),
            );
    }
}
