//! Dirty tracking inside a world: one system per persisted component reads
//! bevy's change detection and records the new value under the player. No
//! gameplay code ever calls "save"; the host drains [`Dirty`] after ticks.

use std::collections::BTreeMap;

use bevy_app::{App, Plugin};
use bevy_ecs::{
    component::Component,
    query::Changed,
    resource::Resource,
    schedule::IntoScheduleConfigs,
    system::{Query, Res, ResMut},
};
use serde::Serialize;
use tessera_sim::{
    OutEvent, Outbox, PlayerId, TickSchedule, TickSystems,
    combat::components::{Allegiance, CombatStats, Experience, Health},
    movement::Position,
    players::{ClassOf, Player},
};

/// A component saved with the player. `KEY` names it in every store and
/// must never change once records exist.
pub trait Persisted: Component + Serialize {
    /// The stable key.
    const KEY: &'static str;
}

impl Persisted for ClassOf {
    const KEY: &'static str = "class";
}
impl Persisted for Experience {
    const KEY: &'static str = "experience";
}
impl Persisted for Position {
    const KEY: &'static str = "position";
}
impl Persisted for Health {
    const KEY: &'static str = "health";
}
impl Persisted for Allegiance {
    const KEY: &'static str = "allegiance";
}
impl Persisted for CombatStats {
    const KEY: &'static str = "stats";
}

/// Changed parts per player since the host last drained them.
#[derive(Resource, Default, Debug)]
pub struct Dirty {
    /// Player -> key -> newest value.
    pub players: BTreeMap<PlayerId, BTreeMap<String, serde_json::Value>>,
    /// Parts marked since the world started (a metric, and what tests count).
    pub marked: u64,
    /// Players who left the world since the host last drained: their last
    /// changes should be written now, not at the next interval.
    pub leaving: Vec<PlayerId>,
}

impl Dirty {
    /// Takes everything marked so far.
    pub fn take(&mut self) -> BTreeMap<PlayerId, BTreeMap<String, serde_json::Value>> {
        std::mem::take(&mut self.players)
    }

    /// Takes the players who left.
    pub fn take_leaving(&mut self) -> Vec<PlayerId> {
        std::mem::take(&mut self.leaving)
    }
}

/// Notes players whose avatar left this tick.
pub fn mark_leaving(outbox: Res<Outbox>, mut dirty: ResMut<Dirty>) {
    for event in outbox.events() {
        if let OutEvent::Left { player } = event {
            dirty.leaving.push(*player);
        }
    }
}

/// Marks `T` dirty for every player whose `T` changed this tick.
pub fn mark<T: Persisted>(changed: Query<(&Player, &T), Changed<T>>, mut dirty: ResMut<Dirty>) {
    for (player, value) in &changed {
        match serde_json::to_value(value) {
            Ok(value) => {
                dirty
                    .players
                    .entry(player.0)
                    .or_default()
                    .insert(T::KEY.to_string(), value);
                dirty.marked += 1;
            }
            Err(error) => {
                tracing::error!(%error, key = T::KEY, player = %player.0, "cannot serialise a persisted component")
            }
        }
    }
}

/// Registers the persisted components.
#[derive(Debug, Clone, Default)]
pub struct PersistencePlugin;

impl Plugin for PersistencePlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Dirty>().add_systems(
            TickSchedule,
            (
                mark::<ClassOf>,
                mark::<Experience>,
                mark::<Position>,
                mark::<Health>,
                mark::<Allegiance>,
                mark::<CombatStats>,
                mark_leaving,
            )
                .in_set(TickSystems::Persistence),
        );
    }
}
