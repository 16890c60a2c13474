//! The validated tables worlds read, and their content hash.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{
    TablesHash,
    schema::{Buff, Class, Level, Npc, Skill, Zone},
    values::Id,
};

/// Rows with unique ids, in sheet order, indexed by id.
#[derive(Clone, Debug)]
pub struct Table<T> {
    rows: Vec<T>,
    by_id: BTreeMap<Id, usize>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Self {
            rows: Vec::new(),
            by_id: BTreeMap::new(),
        }
    }
}

impl<T> Table<T> {
    pub(crate) fn new(rows: Vec<T>, id: impl Fn(&T) -> &Id) -> Self {
        let by_id = rows
            .iter()
            .enumerate()
            .map(|(i, row)| (id(row).clone(), i))
            .collect();
        Self { rows, by_id }
    }

    /// The row with this id.
    pub fn get(&self, id: &str) -> Option<&T> {
        self.by_id.get(id).map(|i| &self.rows[*i])
    }

    /// Whether a row has this id.
    pub fn contains(&self, id: &Id) -> bool {
        self.by_id.contains_key(id)
    }

    /// Rows in sheet order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.rows.iter()
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn by_id(&self) -> impl Iterator<Item = &T> {
        self.by_id.values().map(|i| &self.rows[*i])
    }
}

/// Every game table, validated. Immutable: a reload builds a new one.
#[derive(Clone, Debug, Default)]
pub struct Tables {
    /// Playable classes.
    pub classes: Table<Class>,
    /// Skills.
    pub skills: Table<Skill>,
    /// Buffs.
    pub buffs: Table<Buff>,
    /// NPCs.
    pub npcs: Table<Npc>,
    /// World kinds.
    pub zones: Table<Zone>,
    /// The XP curve, level 1 first.
    pub levels: Vec<Level>,
    hash: TablesHash,
}

#[derive(Serialize)]
struct Canonical<'a> {
    classes: Vec<&'a Class>,
    skills: Vec<&'a Skill>,
    buffs: Vec<&'a Buff>,
    npcs: Vec<&'a Npc>,
    zones: Vec<&'a Zone>,
    levels: &'a [Level],
}

impl Tables {
    pub(crate) fn new(
        classes: Table<Class>,
        skills: Table<Skill>,
        buffs: Table<Buff>,
        npcs: Table<Npc>,
        zones: Table<Zone>,
        levels: Vec<Level>,
    ) -> Self {
        let mut tables = Self {
            classes,
            skills,
            buffs,
            npcs,
            zones,
            levels,
            hash: TablesHash::default(),
        };
        // Rows hash in id order: reordering rows in a sheet changes nothing a
        // world can see, so it must not change the hash either.
        let canonical = Canonical {
            classes: tables.classes.by_id().collect(),
            skills: tables.skills.by_id().collect(),
            buffs: tables.buffs.by_id().collect(),
            npcs: tables.npcs.by_id().collect(),
            zones: tables.zones.by_id().collect(),
            levels: &tables.levels,
        };
        let bytes = rmp_serde::to_vec_named(&canonical).expect("tables serialise");
        tables.hash = TablesHash::of([("tables", bytes.as_slice())]);
        tables
    }

    /// The content hash: the same data gives the same hash, any change to a
    /// value a world can see gives another.
    pub fn hash(&self) -> TablesHash {
        self.hash
    }

    /// The level reached with `xp` total experience (1-based, capped at the last level).
    pub fn level_for_xp(&self, mut xp: u64) -> u32 {
        for level in &self.levels {
            if level.xp_to_next == 0 || xp < level.xp_to_next {
                return level.level;
            }
            xp -= level.xp_to_next;
        }
        self.levels.last().map_or(1, |l| l.level)
    }
}
