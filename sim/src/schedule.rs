//! The tick schedule and the order of its system sets.

use bevy_ecs::schedule::{ScheduleLabel, SystemSet};

/// The schedule a world runs exactly once per tick.
#[derive(ScheduleLabel, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TickSchedule;

/// The stages of a tick, run in this order, each after the previous has
/// finished (please keep this list current as systems are added):
///
/// 1. `Input`: the inbox is drained; joins, leaves and intents are applied.
/// 2. `Movement`: intents become positions, clamped to the world's bounds.
/// 3. `Combat`: skills, damage, buffs, death and respawn.
/// 4. `Social`: teams, rooms, matchmaking, chat.
/// 5. `Interest`: who can see whom.
/// 6. `Output`: events and replication data are written to the outbox.
/// 7. `Persistence`: changed persisted components mark their players dirty.
/// 8. `Metrics`: per-tick counters.
/// 9. `Hash`: the state hash over all gameplay state. Always last, reads only.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TickSystems {
    /// Drain the inbox and apply inputs.
    Input,
    /// Move entities.
    Movement,
    /// Resolve combat.
    Combat,
    /// Teams, rooms, chat.
    Social,
    /// Visibility.
    Interest,
    /// Fill the outbox.
    Output,
    /// Mark dirty players.
    Persistence,
    /// Count things.
    Metrics,
    /// Hash the tick's final state.
    Hash,
}

impl TickSystems {
    /// Every stage, in execution order.
    pub const ORDER: [TickSystems; 9] = [
        TickSystems::Input,
        TickSystems::Movement,
        TickSystems::Combat,
        TickSystems::Social,
        TickSystems::Interest,
        TickSystems::Output,
        TickSystems::Persistence,
        TickSystems::Metrics,
        TickSystems::Hash,
    ];
}
