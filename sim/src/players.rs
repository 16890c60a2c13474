//! Players entering and leaving a world.

use std::collections::BTreeMap;

use bevy_app::{App, Plugin};
use bevy_ecs::{
    bundle::Bundle,
    component::Component,
    entity::Entity,
    resource::Resource,
    schedule::IntoScheduleConfigs,
    system::{Commands, Res, ResMut},
};
use serde::{Deserialize, Serialize};
use tessera_tables::values::Id;

use crate::{
    combat::{
        components::{
            Allegiance, BaseStats, Buffs, Casting, CombatStats, Cooldowns, Experience, Health,
            KnownSkills,
        },
        life::{max_hp_at, spawn_point},
    },
    core::GameTables,
    entity::{SimId, SimIds},
    hash::{StableHasher, StateHash},
    input::{Inbox, Input, PlayerId, SavedProgress},
    movement::{LastInputSeq, MoveIntent, Position, Speed},
    output::{OutEvent, Outbox, Rejection},
    rng::SimRng,
    rules::WorldRules,
    schedule::{TickSchedule, TickSystems},
    state_hash::AppStateHashExt,
    world::WorldSpec,
};

/// Marks a player's avatar.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Player(pub PlayerId);

impl StateHash for Player {
    fn hash_state(&self, hasher: &mut StableHasher) {
        self.0.hash_state(hasher);
    }
}

/// The class an avatar plays.
#[derive(Component, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassOf(#[serde(deserialize_with = "crate::checkpoint::unchecked_ids")] pub Id);

impl StateHash for ClassOf {
    fn hash_state(&self, hasher: &mut StableHasher) {
        self.0.0.hash_state(hasher);
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

    /// Avatars by player, in player order.
    pub fn iter(&self) -> impl Iterator<Item = (PlayerId, Entity)> + '_ {
        self.by_player.iter().map(|(p, e)| (*p, *e))
    }

    /// An index of `avatars`; `None` when a player has two.
    pub(crate) fn of(avatars: impl IntoIterator<Item = (PlayerId, Entity)>) -> Option<Self> {
        let mut by_player = BTreeMap::new();
        for (player, entity) in avatars {
            if by_player.insert(player, entity).is_some() {
                return None;
            }
        }
        Some(Self { by_player })
    }
}

/// Progress of players who left, by player. A player who comes back with a
/// plain `Join` (back from a room, say) resumes it rather than starting
/// over; a `JoinSaved` (progress loaded at login) wins over it. An entry
/// stays until the player comes back or the host says they are gone from
/// the node ([`Input::Forget`]): expiring it while they are still around
/// (a long room) would hand them a fresh avatar over their real progress.
/// Derived from inputs alone, so replays and lockstep peers agree on it.
/// Not part of the state hash: it only matters through the avatars it
/// makes, which are.
#[derive(Resource, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parked {
    by_player: BTreeMap<PlayerId, SavedProgress>,
}

impl Parked {
    /// The parked progress of `player`.
    pub fn get(&self, player: PlayerId) -> Option<&SavedProgress> {
        self.by_player.get(&player)
    }

    /// How many players have progress parked.
    pub fn len(&self) -> usize {
        self.by_player.len()
    }

    /// Whether nothing is parked.
    pub fn is_empty(&self) -> bool {
        self.by_player.is_empty()
    }
}

/// Stats of an avatar in a world whose tables have no classes (sandboxes):
/// 1,000 HP, 5 m/s, no skills.
pub const SANDBOX_HP: i32 = 1_000;
/// Sandbox speed, mm/s.
pub const SANDBOX_SPEED_MM_S: u32 = 5_000;

/// Everything a player's avatar is made of: spawned as one bundle, so every
/// avatar lives in one archetype, and a checkpoint restores it the same way.
#[derive(Bundle, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvatarBundle {
    /// Its id.
    pub id: SimId,
    /// Whose it is.
    pub player: Player,
    /// Its class.
    pub class: ClassOf,
    /// Where it is.
    pub position: Position,
    /// Where it steers.
    pub intent: MoveIntent,
    /// Ground speed per tick.
    pub speed: Speed,
    /// Newest input applied.
    pub last_input: LastInputSeq,
    /// HP.
    pub health: Health,
    /// Who it fights for.
    pub allegiance: Allegiance,
    /// Its class's skills.
    pub skills: KnownSkills,
    /// Skill cooldowns.
    pub cooldowns: Cooldowns,
    /// The cast in progress.
    pub casting: Casting,
    /// Active buffs.
    pub buffs: Buffs,
    /// Unbuffed numbers.
    pub base: BaseStats,
    /// Experience.
    pub experience: Experience,
    /// Kills, deaths, damage, healing.
    pub stats: CombatStats,
}

/// Spawns avatars on `Join` and despawns them on `Leave`.
#[derive(Debug, Clone, Default)]
pub struct PlayersPlugin;

impl Plugin for PlayersPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<PlayerIndex>()
            .init_resource::<Parked>()
            .add_systems(TickSchedule, apply_presence.in_set(TickSystems::Input))
            .hash_component::<Player>()
            .hash_component::<ClassOf>();
    }
}

/// What a departing avatar's progress is read from.
type Progress<'w, 's> = bevy_ecs::system::Query<
    'w,
    's,
    (
        &'static ClassOf,
        &'static Position,
        &'static Health,
        &'static Experience,
        &'static CombatStats,
    ),
>;

/// The presence system: joins and leaves, in arrival order.
#[allow(clippy::too_many_arguments)]
pub fn apply_presence(
    mut commands: Commands,
    inbox: Res<Inbox>,
    spec: Res<WorldSpec>,
    tables: Res<GameTables>,
    rules: Res<WorldRules>,
    mut index: ResMut<PlayerIndex>,
    mut ids: ResMut<SimIds>,
    mut rng: ResMut<SimRng>,
    mut outbox: ResMut<Outbox>,
    avatars: bevy_ecs::system::Query<&SimId>,
    progress: Progress,
    mut parked: ResMut<Parked>,
) {
    for envelope in inbox.pending() {
        let player = envelope.player;
        match &envelope.input {
            Input::Join { .. } | Input::JoinSaved(_) => {
                let resumed = match &envelope.input {
                    Input::Join { .. } if !index.by_player.contains_key(&player) => {
                        parked.by_player.get(&player).cloned()
                    }
                    _ => None,
                };
                let saved = match &envelope.input {
                    Input::JoinSaved(saved) => Some(saved.as_ref()),
                    _ => resumed.as_ref(),
                };
                let class = match (&envelope.input, saved) {
                    (_, Some(saved)) => &saved.class,
                    (Input::Join { class }, None) => class,
                    _ => unreachable!("matched above"),
                };
                if let Some(entity) = index.by_player.get(&player) {
                    // A reconnecting client resumes its avatar: welcome it back.
                    if let Some(id) = avatars.get(*entity).ok().copied() {
                        outbox.push(OutEvent::Joined { player, id });
                    } else {
                        outbox.reject(player, envelope.request, Rejection::AlreadyJoined);
                    }
                    continue;
                }
                if index.len() >= spec.capacity as usize {
                    outbox.reject(player, envelope.request, Rejection::WorldFull);
                    continue;
                }
                let (base_hp, speed, skills) = match tables.0.classes.get(class) {
                    Some(row) => (
                        i32::try_from(row.base_hp).unwrap_or(i32::MAX),
                        u32::try_from(row.speed.mm).unwrap_or(0),
                        row.skills.0.clone(),
                    ),
                    None if tables.0.classes.is_empty() => {
                        (SANDBOX_HP, SANDBOX_SPEED_MM_S, Vec::new())
                    }
                    None => {
                        outbox.reject(player, envelope.request, Rejection::UnknownClass);
                        continue;
                    }
                };
                let entity = commands.spawn_empty().id();
                let id = ids.allocate(entity);
                let mut position = spawn_point(&rules, &spec, &mut rng, id);
                let mut experience = Experience { xp: 0, level: 1 };
                let mut health = Health::full(base_hp);
                let mut stats = CombatStats::default();
                if let Some(saved) = saved {
                    let level = tables.0.level_for_xp(saved.xp).max(1);
                    experience = Experience {
                        xp: saved.xp,
                        level,
                    };
                    health = Health::full(max_hp_at(base_hp, level, &tables.0));
                    if let Some(hp) = saved.hp.filter(|hp| *hp > 0) {
                        health.hp = hp.min(health.max);
                    }
                    if let Some((x, y)) = saved.position
                        && (0..=spec.width).contains(&x)
                        && (0..=spec.height).contains(&y)
                    {
                        position = Position { x, y };
                    }
                    let (kills, deaths, damage, healing) = saved.stats;
                    stats = CombatStats {
                        kills,
                        deaths,
                        damage,
                        healing,
                    };
                }
                let tick_hz = u32::from(spec.tick_hz.max(1));
                commands.entity(entity).insert(AvatarBundle {
                    id,
                    player: Player(player),
                    class: ClassOf(Id(class.clone())),
                    position,
                    intent: MoveIntent::default(),
                    speed: Speed(speed / tick_hz),
                    last_input: LastInputSeq(0),
                    health,
                    allegiance: Allegiance::PLAYER,
                    skills: KnownSkills(skills),
                    cooldowns: Cooldowns::default(),
                    casting: Casting::default(),
                    buffs: Buffs::default(),
                    base: BaseStats {
                        speed_mm_s: speed,
                        base_hp,
                    },
                    experience,
                    stats,
                });
                index.by_player.insert(player, entity);
                parked.by_player.remove(&player);
                outbox.push(OutEvent::Joined { player, id });
            }
            Input::Forget => {
                parked.by_player.remove(&player);
            }
            Input::Leave => match index.by_player.remove(&player) {
                Some(entity) => {
                    // Joined earlier this tick, its components are not applied yet: scan.
                    if let Some(id) = avatars
                        .get(entity)
                        .ok()
                        .copied()
                        .or_else(|| ids.id_of(entity))
                    {
                        ids.release(id);
                    }
                    if let Ok((class, position, health, experience, stats)) = progress.get(entity) {
                        let kept = kept(class, position, health, experience, stats);
                        parked.by_player.insert(player, kept);
                    }
                    commands.entity(entity).despawn();
                    outbox.push(OutEvent::Left { player });
                }
                None => outbox.reject(player, envelope.request, Rejection::NotJoined),
            },
            _ => {}
        }
    }
}

/// What an avatar keeps when it leaves.
fn kept(
    class: &ClassOf,
    position: &Position,
    health: &Health,
    experience: &Experience,
    stats: &CombatStats,
) -> SavedProgress {
    SavedProgress {
        class: class.0.0.clone(),
        xp: experience.xp,
        position: Some((position.x, position.y)),
        hp: Some(health.hp),
        stats: (stats.kills, stats.deaths, stats.damage, stats.healing),
    }
}

/// Every player's progress in a world as it stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlayersProgress {
    /// The avatars' players, each with what it would keep if it left now.
    pub present: Vec<(PlayerId, SavedProgress)>,
    /// Players away (in a room), with what was parked for them.
    pub parked: Vec<(PlayerId, SavedProgress)>,
}

/// Every player's progress in `world`: for a host that must move them to
/// another world of the same zone because this one cannot go on (it
/// crashed). Read from components alone, so it works on a world whose
/// tick was cut short.
pub fn players_progress(world: &bevy_ecs::world::World) -> PlayersProgress {
    let index = world.resource::<PlayerIndex>();
    let present = index
        .iter()
        .filter_map(|(player, entity)| {
            let progress = kept(
                world.get::<ClassOf>(entity)?,
                world.get::<Position>(entity)?,
                world.get::<Health>(entity)?,
                world.get::<Experience>(entity)?,
                world.get::<CombatStats>(entity)?,
            );
            Some((player, progress))
        })
        .collect();
    let parked = world
        .get_resource::<Parked>()
        .map(|parked| {
            parked
                .by_player
                .iter()
                .filter(|(player, _)| index.get(**player).is_none())
                .map(|(player, progress)| (*player, progress.clone()))
                .collect()
        })
        .unwrap_or_default();
    PlayersProgress { present, parked }
}

/// The `SimId` of a player's avatar, for tests and hosts.
pub fn avatar_id(world: &bevy_ecs::world::World, player: PlayerId) -> Option<SimId> {
    let entity = world.resource::<PlayerIndex>().get(player)?;
    world.get::<SimId>(entity).copied()
}
