//! Per-world rules, set from the world's `zones` row on its first tick.

use bevy_ecs::resource::Resource;
use serde::{Deserialize, Serialize};

use crate::movement::Position;

/// How this world plays.
#[derive(Resource, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorldRules {
    /// Whether players without sides may damage each other.
    pub pvp: bool,
    /// Whether skills may be used (rooms: only while running).
    pub skills_enabled: bool,
    /// Whether dead players come back (rooms: not while running).
    pub respawn: bool,
    /// Ticks from a player's death to respawn.
    pub player_respawn_ticks: u64,
    /// Where players appear (empty: anywhere).
    pub spawn_points: Vec<Position>,
    /// Radius of ground-targeted skills, mm.
    pub area_radius_mm: i32,
    /// Extra reach allowed when a cast lands, mm (the target may have moved).
    pub landing_grace_mm: i32,
}

impl Default for WorldRules {
    fn default() -> Self {
        Self {
            pvp: false,
            skills_enabled: true,
            respawn: true,
            player_respawn_ticks: 100,
            spawn_points: Vec::new(),
            area_radius_mm: 5_000,
            landing_grace_mm: 1_000,
        }
    }
}
