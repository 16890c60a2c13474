//! NPCs: placed from the zone table, they aggro on the nearest hostile in
//! reach, chase, cast, and walk home when pulled beyond their leash.

use bevy_app::{App, Plugin};
use bevy_ecs::{
    bundle::Bundle,
    component::Component,
    schedule::IntoScheduleConfigs,
    system::{Commands, Query, Res},
};
use serde::{Deserialize, Serialize};
use tessera_tables::{Tables, schema::Npc as NpcRow, values::Id};

use crate::{
    combat::components::{
        Allegiance, BaseStats, Buffs, Casting, CombatStats, Cooldowns, Faction, Health, Home,
        KnownSkills,
    },
    core::GameTables,
    entity::{SimId, SimIds},
    hash::{StableHasher, StateHash},
    movement::{LastInputSeq, MoveIntent, Position, Speed},
    rules::WorldRules,
    schedule::{TickSchedule, TickSystems},
    spatial::{SpatialGrid, distance_sq, within},
    state_hash::AppStateHashExt,
    world::Tick,
};

/// A computer-controlled creature's mind.
#[derive(Component, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Npc {
    /// The `npcs` row.
    #[serde(deserialize_with = "crate::checkpoint::unchecked_ids")]
    pub kind: Id,
    /// Who it is after.
    pub target: Option<SimId>,
    /// Walking home after being pulled too far.
    pub leashing: bool,
    /// Aggro radius, mm.
    pub aggro_mm: i64,
    /// Leash radius, mm.
    pub leash_mm: i64,
    /// How close it gets to cast (its shortest skill range), mm.
    pub reach_mm: i64,
    /// The cast it asks for this tick (consumed by `start_casts`).
    #[serde(deserialize_with = "crate::checkpoint::unchecked_ids")]
    pub wants_to_cast: Option<(Id, SimId)>,
}

impl StateHash for Npc {
    fn hash_state(&self, hasher: &mut StableHasher) {
        self.kind.0.hash_state(hasher);
        self.target.hash_state(hasher);
        self.leashing.hash_state(hasher);
    }
}

/// Everything an NPC is made of: spawned as one bundle, so every NPC lives
/// in one archetype, and a checkpoint restores it the same way.
#[derive(Bundle, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NpcBundle {
    /// Its id.
    pub id: SimId,
    /// Where it is.
    pub position: Position,
    /// Where it steers.
    pub intent: MoveIntent,
    /// Ground speed per tick.
    pub speed: Speed,
    /// Unused by NPCs; kept so movement treats every mover alike.
    pub last_input: LastInputSeq,
    /// Its spawn point.
    pub home: Home,
    /// Its mind.
    pub npc: Npc,
    /// HP.
    pub health: Health,
    /// Who it fights for.
    pub allegiance: Allegiance,
    /// Its row's skills.
    pub skills: KnownSkills,
    /// Skill cooldowns.
    pub cooldowns: Cooldowns,
    /// The cast in progress.
    pub casting: Casting,
    /// Active buffs.
    pub buffs: Buffs,
    /// Unbuffed numbers.
    pub base: BaseStats,
    /// Kills, deaths, damage, healing.
    pub stats: CombatStats,
}

/// Spawns one NPC of `row` at `at`.
pub fn spawn_npc(
    commands: &mut Commands,
    ids: &mut SimIds,
    row: &NpcRow,
    at: Position,
    tables: &Tables,
) -> SimId {
    let reach_mm = row
        .skills
        .0
        .iter()
        .filter_map(|s| tables.skills.get(&s.0))
        .map(|s| s.range.mm)
        .min()
        .unwrap_or(2_000);
    let entity = commands.spawn_empty().id();
    let id = ids.allocate(entity);
    let hp = i32::try_from(row.hp).unwrap_or(i32::MAX);
    commands.entity(entity).insert(NpcBundle {
        id,
        position: at,
        intent: MoveIntent::default(),
        speed: Speed(0),
        last_input: LastInputSeq(0),
        home: Home(at),
        npc: Npc {
            kind: row.id.clone(),
            target: None,
            leashing: false,
            aggro_mm: row.aggro_radius.mm,
            leash_mm: row.leash_radius.mm,
            reach_mm,
            wants_to_cast: None,
        },
        health: Health::full(hp),
        allegiance: Allegiance::NPC,
        skills: KnownSkills(row.skills.0.clone()),
        cooldowns: Cooldowns::default(),
        casting: Casting::default(),
        buffs: Buffs::default(),
        base: BaseStats {
            speed_mm_s: u32::try_from(row.speed.mm).unwrap_or(0),
            base_hp: hp,
        },
        stats: CombatStats::default(),
    });
    id
}

/// Points `intent` from `from` toward `to` (stops when there).
fn steer(intent: &mut MoveIntent, from: Position, to: Position) {
    let (dx, dy) = (
        i64::from(to.x) - i64::from(from.x),
        i64::from(to.y) - i64::from(from.y),
    );
    let scale = dx.abs().max(dy.abs());
    let next = if scale == 0 {
        MoveIntent::default()
    } else {
        MoveIntent {
            dir_x: (dx * 32_767 / scale) as i16,
            dir_y: (dy * 32_767 / scale) as i16,
        }
    };
    if *intent != next {
        *intent = next;
    }
}

/// Every NPC's mind and body.
type Minds<'w, 's> = Query<
    'w,
    's,
    (
        &'static SimId,
        &'static mut Npc,
        &'static Position,
        &'static Home,
        &'static Health,
        &'static Casting,
        &'static Cooldowns,
        &'static mut MoveIntent,
    ),
>;

/// Each NPC looks around and decides where to go and what to cast.
/// Aggro scans run every 4th tick per NPC (staggered by id) to spread cost.
pub fn think(
    tick: Res<Tick>,
    ids: Res<SimIds>,
    grid: Res<SpatialGrid>,
    rules: Res<WorldRules>,
    tables: Res<GameTables>,
    mut npcs: Minds,
    others: Query<(&Position, &Health, &Allegiance)>,
) {
    for (id, mut npc, position, home, health, casting, cooldowns, mut intent) in &mut npcs {
        npc.wants_to_cast = None;
        if !health.alive() {
            continue;
        }
        if npc.leashing {
            if within(*position, home.0, 1_000) {
                npc.leashing = false;
            } else {
                steer(&mut intent, *position, home.0);
                continue;
            }
        }
        if distance_sq(*position, home.0) > npc.leash_mm * npc.leash_mm {
            npc.target = None;
            npc.leashing = true;
            steer(&mut intent, *position, home.0);
            continue;
        }
        let hostile = |a: &Allegiance| Allegiance::NPC.hostile_to(a, rules.pvp);
        let mut target_at = npc
            .target
            .and_then(|t| ids.get(t))
            .and_then(|e| others.get(e).ok())
            .filter(|(_, h, a)| h.alive() && hostile(a))
            .map(|(p, ..)| *p);
        if target_at.is_none() {
            npc.target = None;
            if (id.0 + tick.0).is_multiple_of(4)
                && let Some(found) = grid.nearest(*position, npc.aggro_mm as i32, |e| {
                    e.allegiance.faction == Faction::Players && hostile(&e.allegiance)
                })
            {
                npc.target = Some(found.id);
                target_at = Some(found.position);
            }
        }
        let (Some(target), Some(at)) = (npc.target, target_at) else {
            steer(&mut intent, *position, *position);
            continue;
        };
        if within(*position, at, (npc.reach_mm - 300).max(500)) {
            steer(&mut intent, *position, *position);
            if casting.0.is_none() {
                let ready = tables.0.npcs.get(&npc.kind.0).and_then(|row| {
                    row.skills
                        .0
                        .iter()
                        .find(|s| cooldowns.ready_at(&s.0) <= tick.0)
                        .cloned()
                });
                npc.wants_to_cast = ready.map(|skill| (skill, target));
            }
        } else {
            steer(&mut intent, *position, at);
        }
    }
}

/// NPC minds.
#[derive(Debug, Clone, Default)]
pub struct NpcPlugin;

impl Plugin for NpcPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(
            TickSchedule,
            think
                .in_set(TickSystems::Movement)
                .before(crate::combat::buffs::update_speed),
        )
        .hash_component::<Npc>();
    }
}
