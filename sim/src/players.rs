//! Players entering and leaving a world.

use std::collections::BTreeMap;

use bevy_app::{App, Plugin};
use bevy_ecs::{
    component::Component,
    entity::Entity,
    resource::Resource,
    schedule::IntoScheduleConfigs,
    system::{Commands, Res, ResMut},
};

use crate::{
    entity::{SimId, SimIds},
    hash::{StableHasher, StateHash},
    input::{Inbox, Input, PlayerId},
    movement::{LastInputSeq, MoveIntent, Position, Speed},
    output::{OutEvent, Outbox, Rejection},
    rng::SimRng,
    schedule::{TickSchedule, TickSystems},
    state_hash::AppStateHashExt,
    world::WorldSpec,
};

/// Marks a player's avatar.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Player(pub PlayerId);

impl StateHash for Player {
    fn hash_state(&self, hasher: &mut StableHasher) {
        self.0.hash_state(hasher);
    }
}

/// Which entity is which player's avatar. A `BTreeMap` so that any iteration
/// over it is in player order, never in hash order.
#[derive(Resource, Default, Debug)]
pub struct PlayerIndex {
    by_player: BTreeMap<PlayerId, Entity>,
}

impl PlayerIndex {
    /// The avatar of `player`, if they are in this world.
    pub fn get(&self, player: PlayerId) -> Option<Entity> {
        self.by_player.get(&player).copied()
    }

    /// How many players are in the world.
    pub fn len(&self) -> usize {
        self.by_player.len()
    }

    /// Whether the world has no players.
    pub fn is_empty(&self) -> bool {
        self.by_player.is_empty()
    }

    /// Players in id order.
    pub fn players(&self) -> impl Iterator<Item = PlayerId> + '_ {
        self.by_player.keys().copied()
    }
}

/// Default avatar speed until class tables drive it: 5 m/s at 20 Hz.
pub const DEFAULT_SPEED_MM_PER_TICK: u32 = 250;

/// Spawns avatars on `Join` and despawns them on `Leave`.
#[derive(Debug, Clone, Default)]
pub struct PlayersPlugin;

impl Plugin for PlayersPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<PlayerIndex>()
            .add_systems(TickSchedule, apply_presence.in_set(TickSystems::Input))
            .hash_component::<Player>();
    }
}

/// The presence system: joins and leaves, in arrival order.
pub fn apply_presence(
    mut commands: Commands,
    inbox: Res<Inbox>,
    spec: Res<WorldSpec>,
    mut index: ResMut<PlayerIndex>,
    mut ids: ResMut<SimIds>,
    mut rng: ResMut<SimRng>,
    mut outbox: ResMut<Outbox>,
) {
    for envelope in inbox.pending() {
        let player = envelope.player;
        match envelope.input {
            Input::Join => {
                if index.by_player.contains_key(&player) {
                    outbox.push(OutEvent::Rejected {
                        player,
                        reason: Rejection::AlreadyJoined,
                    });
                    continue;
                }
                if index.len() >= spec.capacity as usize {
                    outbox.push(OutEvent::Rejected {
                        player,
                        reason: Rejection::WorldFull,
                    });
                    continue;
                }
                let id = ids.allocate();
                let position = Position {
                    x: rng.range_i32(0, spec.width),
                    y: rng.range_i32(0, spec.height),
                };
                let entity = commands
                    .spawn((
                        id,
                        Player(player),
                        position,
                        MoveIntent::default(),
                        Speed(DEFAULT_SPEED_MM_PER_TICK),
                        LastInputSeq(0),
                    ))
                    .id();
                index.by_player.insert(player, entity);
                outbox.push(OutEvent::Joined { player, id });
            }
            Input::Leave => match index.by_player.remove(&player) {
                Some(entity) => {
                    commands.entity(entity).despawn();
                    outbox.push(OutEvent::Left { player });
                }
                None => outbox.push(OutEvent::Rejected {
                    player,
                    reason: Rejection::NotJoined,
                }),
            },
            _ => {}
        }
    }
}

/// The `SimId` of a player's avatar, for tests and hosts.
pub fn avatar_id(world: &bevy_ecs::world::World, player: PlayerId) -> Option<SimId> {
    let entity = world.resource::<PlayerIndex>().get(player)?;
    world.get::<SimId>(entity).copied()
}
