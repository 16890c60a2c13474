//! Stable entity ids: the same in every run of the same inputs.
//!
//! bevy's `Entity` is an allocator detail; gameplay, hashes, replication and
//! replays name entities by `SimId`, allocated in order from a counter that is
//! itself part of the world state.

use bevy_ecs::{component::Component, resource::Resource};
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

/// Hands out `SimId`s in order.
#[derive(Resource, Debug, Default, Clone)]
pub struct SimIds {
    next: u64,
}

impl SimIds {
    /// The next unused id.
    pub fn allocate(&mut self) -> SimId {
        self.next += 1;
        SimId(self.next)
    }
}

impl StateHash for SimIds {
    fn hash_state(&self, hasher: &mut StableHasher) {
        hasher.write_u64(self.next);
    }
}
