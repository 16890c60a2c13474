//! The game's tables: one row type per sheet.
//!
//! Field names are the column headers designers see. Distances are metres
//! (parsed to millimetres), speeds metres per second, times in ticks.

use serde::{Deserialize, Serialize};

use crate::{
    sheet::TableRow,
    values::{Id, IdList, Meters, NpcSpawns, Points},
};

/// A playable class.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Class {
    /// Unique id.
    pub id: Id,
    /// Display name.
    pub name: String,
    /// Hit points at level 1.
    pub base_hp: u32,
    /// Ground speed, metres per second.
    pub speed: Meters,
    /// Skills the class knows.
    pub skills: IdList,
}

impl TableRow for Class {
    const SHEET: &'static str = "classes";
}

/// What a skill does to its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Takes `amount` HP.
    Damage,
    /// Gives `amount` HP.
    Heal,
}

/// What a skill may be aimed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// A hostile entity.
    Enemy,
    /// A friendly entity (including the caster).
    Ally,
    /// The caster only.
    Caster,
    /// A point on the ground (area effects).
    Point,
}

/// An ability.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skill {
    /// Unique id.
    pub id: Id,
    /// Display name.
    pub name: String,
    /// Damage or heal.
    pub effect: Effect,
    /// HP taken or given.
    pub amount: u32,
    /// Reach, metres.
    pub range: Meters,
    /// Ticks before it can be used again.
    pub cooldown_ticks: u32,
    /// Ticks between starting the cast and the effect.
    pub cast_ticks: u32,
    /// What it is aimed at.
    pub target: TargetKind,
    /// A buff applied to the target on hit.
    #[serde(default)]
    pub buff: Option<Id>,
}

impl TableRow for Skill {
    const SHEET: &'static str = "skills";
    const OPTIONAL: &'static [&'static str] = &["buff"];
}

/// The stat a buff changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stat {
    /// Movement speed, percent.
    Speed,
    /// Damage dealt, percent.
    Damage,
    /// Damage taken, percent (negative is a shield).
    DamageTaken,
    /// HP per tick.
    HpPerTick,
}

/// What applying a buff that is already present does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stacking {
    /// Restart the duration.
    Refresh,
    /// Add a stack (up to `max_stacks`) and restart the duration.
    Stack,
    /// Keep the one already there.
    Ignore,
}

/// A timed modifier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buff {
    /// Unique id.
    pub id: Id,
    /// Display name.
    pub name: String,
    /// Which stat.
    pub stat: Stat,
    /// By how much (percent, or HP per tick), per stack.
    pub amount: i32,
    /// How long, in ticks.
    pub duration_ticks: u32,
    /// Re-application rule.
    pub stacking: Stacking,
    /// Most stacks at once.
    pub max_stacks: u32,
}

impl TableRow for Buff {
    const SHEET: &'static str = "buffs";
}

/// A computer-controlled creature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Npc {
    /// Unique id.
    pub id: Id,
    /// Display name.
    pub name: String,
    /// Hit points.
    pub hp: u32,
    /// Ground speed, metres per second.
    pub speed: Meters,
    /// Skills it uses.
    pub skills: IdList,
    /// It attacks hostiles closer than this, metres.
    pub aggro_radius: Meters,
    /// It gives up a chase this far from its spawn, metres.
    pub leash_radius: Meters,
    /// Ticks between death and respawn.
    pub respawn_ticks: u32,
    /// XP awarded for the kill.
    pub xp: u32,
}

impl TableRow for Npc {
    const SHEET: &'static str = "npcs";
}

/// Whether a world lives as long as the node or is created on demand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZoneKind {
    /// A persistent piece of the world.
    Zone,
    /// A match or instance.
    Room,
}

/// How clients are kept in sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// The server simulates and sends snapshots.
    State,
    /// Lockstep: the server relays input frames and checks hashes.
    Frame,
}

/// A kind of world.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Zone {
    /// Unique id.
    pub id: Id,
    /// Zone or room.
    pub kind: ZoneKind,
    /// State or frame sync.
    pub sync: SyncMode,
    /// Ticks per second, 1..=128.
    pub tick_hz: u32,
    /// East-west size, metres.
    pub width: Meters,
    /// North-south size, metres.
    pub height: Meters,
    /// Most players at once.
    pub capacity: u32,
    /// Where players appear.
    pub spawn_points: Points,
    /// NPCs placed at start.
    #[serde(default)]
    pub npc_spawns: NpcSpawns,
}

impl TableRow for Zone {
    const SHEET: &'static str = "zones";
    const OPTIONAL: &'static [&'static str] = &["npc_spawns"];
}

/// One step of the XP curve.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Level {
    /// The level (rows are 1, 2, 3, ...).
    pub level: u32,
    /// XP needed to go from this level to the next (0 on the last level).
    pub xp_to_next: u64,
    /// Bonus max HP at this level, percent of the class's base.
    pub hp_bonus_pct: u32,
}

impl TableRow for Level {
    const SHEET: &'static str = "levels";
}
