//! Combat: skills with server-side checks, cast times and cooldowns in
//! ticks, damage and heals, buffs, death, respawn, kills and experience.
//!
//! Order within a tick (after movement): NPCs pick casts (`npc`), then
//! [`cast::start_casts`] checks and starts every requested cast,
//! [`cast::land_casts`] lands those due, [`buffs::tick_buffs`] applies
//! over-time effects, [`life::deaths`] and [`life::respawns`] close the tick.

pub mod buffs;
pub mod cast;
pub mod components;
pub mod life;

use bevy_app::{App, Plugin};
use bevy_ecs::schedule::IntoScheduleConfigs;

use crate::{
    schedule::{TickSchedule, TickSystems},
    state_hash::AppStateHashExt,
};
use components::{
    Allegiance, BaseStats, Buffs, Casting, CombatStats, Cooldowns, Experience, Health, Home,
    KnownSkills,
};

/// Registers the combat systems and hashes their state.
#[derive(Debug, Clone, Default)]
pub struct CombatPlugin;

impl Plugin for CombatPlugin {
    fn build(&self, app: &mut App) {
        app.add_systems(
            TickSchedule,
            (
                cast::start_casts,
                cast::land_casts,
                buffs::tick_buffs,
                life::deaths,
                life::respawns,
            )
                .chain()
                .in_set(TickSystems::Combat),
        )
        .add_systems(
            TickSchedule,
            buffs::update_speed
                .in_set(TickSystems::Movement)
                .before(crate::movement::integrate),
        )
        .hash_component::<Health>()
        .hash_component::<Allegiance>()
        .hash_component::<KnownSkills>()
        .hash_component::<Cooldowns>()
        .hash_component::<Casting>()
        .hash_component::<Buffs>()
        .hash_component::<BaseStats>()
        .hash_component::<Experience>()
        .hash_component::<CombatStats>()
        .hash_component::<Home>();
    }
}
