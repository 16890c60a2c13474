//! The grid a tick's snapshots find each viewer's neighbours in.
//!
//! The world's grid is built right after movement, for combat and NPCs,
//! and they keep it that way. Later systems still move entities (a room's
//! start puts each side on its spawn point) or bring them back (a
//! respawn), and a snapshot of tick T must show tick T as it ended: who is
//! in reach as well as where they stand. When the grid no longer says
//! where everything is, the snapshots use a copy rebuilt from the entities.

use bevy_ecs::{entity::Entity, system::Query};
use tessera_sim::{
    SimId,
    combat::components::{Allegiance, Health},
    movement::Position,
    spatial::{GridEntry, SpatialGrid},
};

/// What a grid entry is made from.
pub(super) type Located = (
    Entity,
    &'static SimId,
    &'static Position,
    &'static Allegiance,
    &'static Health,
);

/// Whether `grid` still places every entity in it where it stands and
/// holds every entity alive now (a respawn since it was built is missing).
pub(super) fn is_current(grid: &SpatialGrid, located: &Query<Located>) -> bool {
    let mut alive_in_grid = 0usize;
    for entry in grid.entries() {
        match located.get(entry.entity) {
            Ok((_, _, position, _, health)) if *position == entry.position => {
                alive_in_grid += usize::from(health.alive());
            }
            _ => return false,
        }
    }
    located.iter().filter(|(.., health)| health.alive()).count() == alive_in_grid
}

/// `fresh` rebuilt as `grid` would be if it were built now: every entity
/// in it at its position now (one that died since included, so the
/// snapshot of its death shows it dead, as it would without a move), and
/// every entity alive now.
pub(super) fn rebuilt<'a>(
    grid: &SpatialGrid,
    fresh: &'a mut Option<SpatialGrid>,
    located: &Query<Located>,
) -> &'a SpatialGrid {
    let mut known: Vec<Entity> = grid.entries().iter().map(|e| e.entity).collect();
    known.sort_unstable();
    // The world's geometry, once; its entries are replaced below.
    let fresh = fresh.get_or_insert_with(|| grid.clone());
    fresh.rebuild(
        located
            .iter()
            .filter(|(entity, .., health)| health.alive() || known.binary_search(entity).is_ok())
            .map(|(entity, id, position, allegiance, _)| GridEntry {
                id: *id,
                entity,
                position: *position,
                allegiance: *allegiance,
            }),
    );
    fresh
}
