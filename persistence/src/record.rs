//! Player records: a version and one serialised value per persisted
//! component ("part"). A patch carries only the parts that changed; a store
//! applies it only if its version is newer than what it holds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Everything stored about a player.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlayerRecord {
    /// The player.
    pub player: u64,
    /// Version of the newest write applied.
    pub version: u64,
    /// Component key -> value.
    pub parts: BTreeMap<String, serde_json::Value>,
}

/// Changed parts of one player, at one version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Patch {
    /// The player.
    pub player: u64,
    /// Must be newer than the stored version to apply.
    pub version: u64,
    /// Only the parts that changed.
    pub parts: BTreeMap<String, serde_json::Value>,
}

impl Patch {
    /// Folds a newer patch of the same player into this one: its parts win,
    /// its version is kept.
    pub fn merge(&mut self, newer: Patch) {
        debug_assert_eq!(self.player, newer.player);
        self.version = self.version.max(newer.version);
        self.parts.extend(newer.parts);
    }
}

/// What happened to a patch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Written.
    Yes,
    /// The store already held this version or a newer one: nothing changed.
    Stale,
}

/// Applies `patch` over `stored` if newer.
pub fn apply(stored: Option<PlayerRecord>, patch: &Patch) -> (PlayerRecord, Applied) {
    let mut record = stored.unwrap_or(PlayerRecord {
        player: patch.player,
        ..PlayerRecord::default()
    });
    if record.version >= patch.version && record.version != 0 {
        return (record, Applied::Stale);
    }
    record.version = patch.version;
    for (key, value) in &patch.parts {
        record.parts.insert(key.clone(), value.clone());
    }
    (record, Applied::Yes)
}

/// The outcome of saving a batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SaveReport {
    /// Patches written.
    pub applied: usize,
    /// Patches refused as not newer.
    pub stale: usize,
}

/// The progress a world restores from a record (`None` without a class:
/// nothing worth restoring). Parts that do not parse are left at defaults
/// and logged, never fatal.
pub fn saved_progress(record: &PlayerRecord) -> Option<tessera_sim::input::SavedProgress> {
    use serde_json::Value;
    let class = record.parts.get("class")?.as_str()?.to_string();
    let number = |part: &str, field: &str| {
        record
            .parts
            .get(part)
            .and_then(|p| p.get(field))
            .and_then(Value::as_i64)
    };
    let position = match (number("position", "x"), number("position", "y")) {
        (Some(x), Some(y)) => i32::try_from(x).ok().zip(i32::try_from(y).ok()),
        _ => None,
    };
    let unsigned = |part: &str, field: &str| {
        number(part, field)
            .and_then(|v| u64::try_from(v).ok())
            .unwrap_or(0)
    };
    Some(tessera_sim::input::SavedProgress {
        class,
        xp: unsigned("experience", "xp"),
        position,
        hp: number("health", "hp").and_then(|hp| i32::try_from(hp).ok()),
        stats: (
            unsigned("stats", "kills") as u32,
            unsigned("stats", "deaths") as u32,
            unsigned("stats", "damage"),
            unsigned("stats", "healing"),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(version: u64, parts: &[(&str, serde_json::Value)]) -> Patch {
        Patch {
            player: 1,
            version,
            parts: parts
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    #[test]
    fn newer_patches_merge_part_by_part_and_older_ones_change_nothing() {
        let (record, applied) = apply(None, &patch(5, &[("xp", json!(10)), ("hp", json!(100))]));
        assert_eq!(applied, Applied::Yes);
        let (record, applied) = apply(Some(record), &patch(7, &[("xp", json!(20))]));
        assert_eq!(applied, Applied::Yes);
        assert_eq!(
            (record.version, &record.parts["xp"], &record.parts["hp"]),
            (7, &json!(20), &json!(100))
        );
        let (after, applied) = apply(Some(record.clone()), &patch(6, &[("xp", json!(1))]));
        assert_eq!((applied, after), (Applied::Stale, record.clone()));
        let (after, applied) = apply(Some(record.clone()), &patch(7, &[("xp", json!(1))]));
        assert_eq!(
            (applied, after),
            (Applied::Stale, record),
            "the same version twice is a retry, not news"
        );
    }
}
