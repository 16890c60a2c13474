//! The per-tick state hash, assembled from one part per hashed component or
//! resource so that a divergence can be traced to what diverged.
//!
//! Per entity, a component contributes `hash(SimId, value)`; the part is the
//! wrapping sum of those, so it does not depend on query iteration order and
//! costs no sort.

use bevy_app::App;
use bevy_ecs::{
    component::Component,
    resource::Resource,
    schedule::IntoScheduleConfigs,
    system::{Query, Res, ResMut},
};

use crate::{
    entity::SimId,
    hash::{StableHasher, StateHash, mix64},
    schedule::{TickSchedule, TickSystems},
};

/// This tick's hash parts, in registration order, with their names.
#[derive(Resource, Default, Debug, Clone)]
pub struct StateHashes {
    names: Vec<&'static str>,
    parts: Vec<u64>,
}

impl StateHashes {
    /// The names of the parts, in order (stable for a given build).
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }

    /// The parts computed by the last tick.
    pub fn parts(&self) -> &[u64] {
        &self.parts
    }

    /// Puts back the parts of a restored tick; `false` (and no change) when
    /// their number differs from the registered parts'.
    pub(crate) fn restore_parts(&mut self, parts: &[u64]) -> bool {
        if parts.len() != self.parts.len() {
            return false;
        }
        self.parts.copy_from_slice(parts);
        true
    }

    fn register(&mut self, name: &'static str) -> usize {
        assert!(
            !self.names.contains(&name),
            "{name} registered twice for state hashing"
        );
        self.names.push(name);
        self.parts.push(0);
        self.parts.len() - 1
    }

    /// Folds the tick number and every part into the tick's hash.
    pub fn combine(&self, tick: u64) -> u64 {
        let mut hasher = StableHasher::new();
        hasher.write_u64(tick);
        for part in &self.parts {
            hasher.write_u64(*part);
        }
        hasher.finish()
    }
}

/// Registers gameplay state with the tick hash.
pub trait AppStateHashExt {
    /// Hashes every `T` on an entity with a `SimId`, every tick.
    fn hash_component<T: Component + StateHash>(&mut self) -> &mut Self;
    /// Hashes resource `R` every tick (absent counts as a fixed value).
    fn hash_resource<R: Resource + StateHash>(&mut self) -> &mut Self;
}

fn short_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

impl AppStateHashExt for App {
    fn hash_component<T: Component + StateHash>(&mut self) -> &mut Self {
        let index = self
            .world_mut()
            .get_resource_or_init::<StateHashes>()
            .register(short_name::<T>());
        let system = move |query: Query<(&SimId, &T)>, mut hashes: ResMut<StateHashes>| {
            let mut sum = 0u64;
            let mut count = 0u64;
            for (id, value) in &query {
                let mut hasher = StableHasher::new();
                id.hash_state(&mut hasher);
                value.hash_state(&mut hasher);
                sum = sum.wrapping_add(hasher.finish());
                count += 1;
            }
            hashes.parts[index] = mix64(sum ^ mix64(count));
        };
        self.add_systems(TickSchedule, system.in_set(TickSystems::Hash))
    }

    fn hash_resource<R: Resource + StateHash>(&mut self) -> &mut Self {
        let index = self
            .world_mut()
            .get_resource_or_init::<StateHashes>()
            .register(short_name::<R>());
        let system = move |resource: Option<Res<R>>, mut hashes: ResMut<StateHashes>| {
            hashes.parts[index] = resource.map_or(0, |r| StableHasher::of(&*r));
        };
        self.add_systems(TickSchedule, system.in_set(TickSystems::Hash))
    }
}
