//! Stable entity ids: the same in every run of the same inputs.
//!
//! bevy's `Entity` is an allocator detail; gameplay, hashes, replication and
//! replays name entities by `SimId`, allocated in order from a counter that is
//! itself part of the world state.

use bevy_ecs::{component::Component, entity::Entity, resource::Resource};
use serde::{Deserialize, Serialize};

use crate::hash::{StableHasher, StateHash};

/// An entity's id within its world, never reused.
#[derive(
    Component, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct SimId(pub u64);

impl StateHash for SimId {
    fn hash_state(&self, hasher: &mut StableHasher) {
        hasher.write_u64(self.0);
    }
}

/// Hands out `SimId`s in order and finds an entity by its id.
#[derive(Resource, Debug, Default, Clone)]
pub struct SimIds {
    next: u64,
    /// `entities[id - 1]`: ids are dense, so a vector beats a map.
    entities: Vec<Option<Entity>>,
}

impl SimIds {
    /// The next unused id, bound to `entity`.
    pub fn allocate(&mut self, entity: Entity) -> SimId {
        self.next += 1;
        self.entities.push(Some(entity));
        SimId(self.next)
    }

    /// The live entity with this id.
    pub fn get(&self, id: SimId) -> Option<Entity> {
        let index = usize::try_from(id.0).ok()?.checked_sub(1)?;
        self.entities.get(index).copied().flatten()
    }

    /// The id bound to `entity` (a linear scan: for rare events like leaving).
    pub fn id_of(&self, entity: Entity) -> Option<SimId> {
        self.entities
            .iter()
            .position(|e| *e == Some(entity))
            .map(|i| SimId(i as u64 + 1))
    }

    /// How many ids were ever handed out (the newest id, 0 for none).
    pub fn allocated(&self) -> u64 {
        self.next
    }

    /// Live ids and their entities, in id order.
    pub fn live(&self) -> impl Iterator<Item = (SimId, Entity)> + '_ {
        self.entities
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.map(|e| (SimId(i as u64 + 1), e)))
    }

    /// An allocator that handed out `allocated` ids, of which `live` are
    /// bound. `None` when a live id is 0, above `allocated` or repeated.
    pub(crate) fn restored(
        allocated: u64,
        live: impl IntoIterator<Item = (SimId, Entity)>,
    ) -> Option<Self> {
        let mut entities = vec![None; usize::try_from(allocated).ok()?];
        for (id, entity) in live {
            let slot = entities.get_mut(usize::try_from(id.0).ok()?.checked_sub(1)?)?;
            if slot.replace(entity).is_some() {
                return None;
            }
        }
        Some(Self {
            next: allocated,
            entities,
        })
    }

    /// Forgets a despawned entity.
    pub fn release(&mut self, id: SimId) {
        if let Some(slot) = usize::try_from(id.0)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| self.entities.get_mut(i))
        {
            *slot = None;
        }
    }
}

impl StateHash for SimIds {
    fn hash_state(&self, hasher: &mut StableHasher) {
        hasher.write_u64(self.next);
    }
}
