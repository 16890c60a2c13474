//! Buffs: stacking rules, expiry, over-time effects and stat modifiers.

use bevy_ecs::system::{Query, Res};
use tessera_tables::{
    Tables,
    schema::{Buff, Stacking, Stat},
};

use super::components::{ActiveBuff, BaseStats, Buffs, Health};
use crate::{core::GameTables, movement::Speed, world::Tick, world::WorldSpec};

/// Applies `buff` at tick `now` following its stacking rule.
pub fn apply_buff(active: &mut Vec<ActiveBuff>, buff: &Buff, now: u64) {
    let expires_at = now + u64::from(buff.duration_ticks);
    match (active.iter_mut().find(|b| b.id == buff.id), buff.stacking) {
        (Some(_), Stacking::Ignore) => {}
        (Some(existing), Stacking::Refresh) => existing.expires_at = expires_at,
        (Some(existing), Stacking::Stack) => {
            existing.stacks = (existing.stacks + 1).min(buff.max_stacks.max(1));
            existing.expires_at = expires_at;
        }
        (None, _) => active.push(ActiveBuff {
            id: buff.id.clone(),
            stacks: 1,
            expires_at,
        }),
    }
}

/// The summed `stat` amount of `active` buffs (percent, or HP per tick).
pub fn stat_percent(active: &[ActiveBuff], stat: Stat, tables: &Tables) -> i64 {
    active
        .iter()
        .filter_map(|b| tables.buffs.get(&b.id.0).map(|row| (row, b.stacks)))
        .filter(|(row, _)| row.stat == stat)
        .map(|(row, stacks)| i64::from(row.amount) * i64::from(stacks))
        .sum()
}

/// Expires buffs and applies their per-tick HP effects.
pub fn tick_buffs(
    tick: Res<Tick>,
    tables: Res<GameTables>,
    mut query: Query<(&mut Buffs, &mut Health)>,
) {
    for (mut buffs, mut health) in &mut query {
        if buffs.0.is_empty() || !health.alive() {
            continue;
        }
        let per_tick = stat_percent(&buffs.0, Stat::HpPerTick, &tables.0);
        if per_tick != 0 {
            let hp = (i64::from(health.hp) + per_tick).clamp(0, i64::from(health.max)) as i32;
            health.set_hp(hp);
        }
        buffs.0.retain(|b| b.expires_at > tick.0);
    }
}

/// Speed per tick from base speed and speed buffs.
pub fn update_speed(
    spec: Res<WorldSpec>,
    tables: Res<GameTables>,
    mut query: Query<(&BaseStats, &Buffs, &mut Speed)>,
) {
    let hz = u64::from(spec.tick_hz.max(1));
    for (base, buffs, mut speed) in &mut query {
        let percent = if buffs.0.is_empty() {
            0
        } else {
            stat_percent(&buffs.0, Stat::Speed, &tables.0)
        };
        let per_second = u64::from(base.speed_mm_s) * (100 + percent).max(0) as u64 / 100;
        let per_tick = Speed((per_second / hz) as u32);
        if *speed != per_tick {
            *speed = per_tick;
        }
    }
}

impl Health {
    /// Sets HP, leaving `last_attacker` as it was.
    pub fn set_hp(&mut self, hp: i32) {
        self.hp = hp.clamp(0, self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_tables::generate::default_tables;

    #[test]
    fn stacking_rules() {
        let tables = default_tables();
        let burn = tables.buffs.get("burn").unwrap(); // stack, max 3
        let chill = tables.buffs.get("chill").unwrap(); // refresh
        let cry = tables.buffs.get("war_cry").unwrap(); // ignore
        let mut active = Vec::new();
        for now in [10, 11, 12, 13] {
            apply_buff(&mut active, burn, now);
        }
        assert_eq!(
            (active[0].stacks, active[0].expires_at),
            (3, 13 + 60),
            "stacks cap at max_stacks, duration refreshes"
        );
        apply_buff(&mut active, chill, 10);
        apply_buff(&mut active, chill, 50);
        assert_eq!((active[1].stacks, active[1].expires_at), (1, 50 + 80));
        apply_buff(&mut active, cry, 10);
        apply_buff(&mut active, cry, 90);
        assert_eq!(
            active[2].expires_at,
            10 + 200,
            "ignore keeps the first application"
        );
        assert_eq!(stat_percent(&active, Stat::HpPerTick, &tables), -6);
        assert_eq!(stat_percent(&active, Stat::Speed, &tables), -30);
    }
}
