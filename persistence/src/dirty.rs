//! Dirty tracking inside a world: one system per persisted component reads
//! bevy's change detection and marks the part stale under the player; the
//! host captures stale parts' values at its own rate and drains [`Dirty`].
//! No gameplay code ever calls "save".

use std::collections::BTreeMap;

use bevy_app::{App, Plugin};
use bevy_ecs::{
    component::Component,
    entity::Entity,
    lifecycle::Remove,
    observer::On,
    query::Changed,
    resource::Resource,
    schedule::IntoScheduleConfigs,
    system::{Query, Res, ResMut},
    world::{DeferredWorld, EntityRef, World},
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

/// Reads one persisted part of an avatar as the stores keep it.
type Read = fn(EntityRef<'_>) -> Option<serde_json::Value>;

/// The persisted parts, in registration order: a part's index is its bit
/// in [`Dirty`]'s stale masks.
#[derive(Resource, Default)]
struct Parts(Vec<(&'static str, Read)>);

impl Parts {
    fn bit(&self, key: &str) -> u32 {
        let index = self
            .0
            .iter()
            .position(|(k, _)| *k == key)
            .expect("every marked part is registered");
        1 << index
    }
}

fn read<T: Persisted>(avatar: EntityRef<'_>) -> Option<serde_json::Value> {
    let value = avatar.get::<T>()?;
    match serde_json::to_value(value) {
        Ok(value) => Some(value),
        Err(error) => {
            tracing::error!(%error, key = T::KEY, "cannot serialise a persisted component");
            None
        }
    }
}

/// Changed parts per player. A change only marks the part stale; its value
/// is read when the host captures ([`capture`]), so a position that moves
/// every tick is serialised at the capture rate, not the tick rate. An
/// avatar that goes (a leave, a move to another world) is captured as it
/// goes, so nothing marked is lost between captures.
#[derive(Resource, Default, Debug)]
pub struct Dirty {
    /// Captured parts waiting for the host: player -> key -> newest value.
    pub players: BTreeMap<PlayerId, BTreeMap<String, serde_json::Value>>,
    /// Parts marked since the world started (a metric, and what tests count).
    pub marked: u64,
    /// Players who left the world since the host last drained: their last
    /// changes should be written now, not at the next interval.
    pub leaving: Vec<PlayerId>,
    /// Marked but not captured yet: player -> (avatar, part bits).
    stale: BTreeMap<PlayerId, (Entity, u32)>,
}

impl Dirty {
    /// Takes everything captured so far (see [`capture`] and [`take_all`]).
    pub fn take(&mut self) -> BTreeMap<PlayerId, BTreeMap<String, serde_json::Value>> {
        std::mem::take(&mut self.players)
    }

    /// Takes the players who left.
    pub fn take_leaving(&mut self) -> Vec<PlayerId> {
        std::mem::take(&mut self.leaving)
    }

    /// Adds values read from avatars to what waits for the host.
    fn keep(&mut self, captured: Vec<(PlayerId, &'static str, serde_json::Value)>) {
        for (player, key, value) in captured {
            self.players
                .entry(player)
                .or_default()
                .insert(key.to_string(), value);
        }
    }

    /// Whether parts are marked and not captured yet.
    pub fn has_stale(&self) -> bool {
        !self.stale.is_empty()
    }
}

/// Reads every stale part of every avatar into [`Dirty::players`]. Hosts
/// call it between ticks, at their capture rate and when a world ends.
pub fn capture(world: &mut World) {
    let Some(stale) = world
        .get_resource_mut::<Dirty>()
        .map(|mut dirty| std::mem::take(&mut dirty.stale))
    else {
        return;
    };
    if stale.is_empty() {
        return;
    }
    let captured = read_stale(world, stale);
    world.resource_mut::<Dirty>().keep(captured);
}

/// Captures, then takes everything captured (see [`Dirty::take`]).
pub fn take_all(world: &mut World) -> BTreeMap<PlayerId, BTreeMap<String, serde_json::Value>> {
    capture(world);
    world
        .get_resource_mut::<Dirty>()
        .map(|mut dirty| dirty.take())
        .unwrap_or_default()
}

fn read_stale(
    world: &World,
    stale: impl IntoIterator<Item = (PlayerId, (Entity, u32))>,
) -> Vec<(PlayerId, &'static str, serde_json::Value)> {
    let Some(parts) = world.get_resource::<Parts>() else {
        return Vec::new();
    };
    let mut captured = Vec::new();
    for (player, (avatar, bits)) in stale {
        // Avatars are captured as they go, so a stale one is still here.
        let Ok(avatar) = world.get_entity(avatar) else {
            continue;
        };
        for (index, (key, read)) in parts.0.iter().enumerate() {
            if bits & (1 << index) != 0
                && let Some(value) = read(avatar)
            {
                captured.push((player, *key, value));
            }
        }
    }
    captured
}

/// Notes players whose avatar left this tick.
pub fn mark_leaving(outbox: Res<Outbox>, mut dirty: ResMut<Dirty>) {
    for event in outbox.events() {
        if let OutEvent::Left { player } = event {
            dirty.leaving.push(*player);
        }
    }
}

/// Marks `T` stale for every player whose `T` changed this tick.
fn mark<T: Persisted>(
    changed: Query<(Entity, &Player), Changed<T>>,
    parts: Res<Parts>,
    mut dirty: ResMut<Dirty>,
) {
    let bit = parts.bit(T::KEY);
    for (avatar, player) in &changed {
        let entry = dirty.stale.entry(player.0).or_insert((avatar, 0));
        // A player's avatar is replaced when they join again.
        if entry.0 != avatar {
            *entry = (avatar, 0);
        }
        entry.1 |= bit;
        dirty.marked += 1;
    }
}

/// An avatar is going (despawned or no longer a player): its stale parts
/// are read now, while its components are still there.
fn capture_going(going: On<Remove<Player>>, mut world: DeferredWorld) {
    let avatar = going.entity;
    let Some(player) = world.get::<Player>(avatar).map(|p| p.0) else {
        return;
    };
    let stale = match world.get_resource_mut::<Dirty>() {
        Some(mut dirty) => match dirty.stale.get(&player) {
            Some(&(marked, bits)) if marked == avatar => {
                dirty.stale.remove(&player);
                (marked, bits)
            }
            _ => return,
        },
        None => return,
    };
    let captured = read_stale(&world, [(player, stale)]);
    world.resource_mut::<Dirty>().keep(captured);
}

/// Registers the persisted components.
#[derive(Debug, Clone, Default)]
pub struct PersistencePlugin;

impl Plugin for PersistencePlugin {
    fn build(&self, app: &mut App) {
        fn part<T: Persisted>() -> (&'static str, Read) {
            (T::KEY, read::<T>)
        }
        let parts = vec![
            part::<ClassOf>(),
            part::<Experience>(),
            part::<Position>(),
            part::<Health>(),
            part::<Allegiance>(),
            part::<CombatStats>(),
        ];
        app.init_resource::<Dirty>()
            .insert_resource(Parts(parts))
            .add_observer(capture_going)
            .add_systems(
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
