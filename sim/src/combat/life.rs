//! Death, respawn, kills and experience.

use bevy_ecs::{
    entity::Entity,
    system::{ParamSet, Query, Res, ResMut},
};

use super::components::{BaseStats, Buffs, Casting, CombatStats, Experience, Health, Home};
use crate::{
    core::GameTables,
    entity::{SimId, SimIds},
    movement::{MoveIntent, Position},
    npc::Npc,
    output::{OutEvent, Outbox},
    players::Player,
    rng::SimRng,
    rules::WorldRules,
    world::{Tick, WorldSpec},
};

/// What dies this tick, and who gets the credit.
type Dying<'w, 's> = Query<
    'w,
    's,
    (
        Entity,
        &'static SimId,
        &'static mut Health,
        &'static mut Casting,
        &'static mut Buffs,
        &'static mut MoveIntent,
        Option<&'static Npc>,
    ),
>;

/// Who gets credit for a kill.
type Credit<'w, 's> = Query<
    'w,
    's,
    (
        &'static mut CombatStats,
        Option<&'static mut Experience>,
        &'static mut Health,
        Option<&'static Player>,
        Option<&'static BaseStats>,
    ),
>;

/// Entities at 0 HP die: casts stop, buffs clear, the killer is credited
/// (kills, and XP for a player who killed an NPC), a respawn is scheduled.
pub fn deaths(
    tick: Res<Tick>,
    ids: Res<SimIds>,
    tables: Res<GameTables>,
    rules: Res<WorldRules>,
    mut queries: ParamSet<(Dying, Credit)>,
    mut outbox: ResMut<Outbox>,
) {
    let now = tick.0;
    let mut dead: Vec<(SimId, Entity, Option<SimId>, u32)> = Vec::new();
    for (entity, id, mut health, mut casting, mut buffs, mut intent, npc) in &mut queries.p0() {
        if !health.alive() || health.hp > 0 {
            continue;
        }
        let (respawn_after, xp) = match npc {
            Some(npc) => tables
                .0
                .npcs
                .get(&npc.kind.0)
                .map_or((600, 0), |row| (u64::from(row.respawn_ticks), row.xp)),
            None if rules.respawn => (rules.player_respawn_ticks, 0),
            None => (u64::MAX - now, 0),
        };
        health.respawn_at = Some(now.saturating_add(respawn_after.max(1)));
        casting.0 = None;
        buffs.0.clear();
        *intent = MoveIntent::default();
        dead.push((*id, entity, health.last_attacker, xp));
    }
    dead.sort_by_key(|(id, ..)| *id);
    let mut credit = queries.p1();
    for (id, entity, killer, xp) in dead {
        if let Ok((mut victim, ..)) = credit.get_mut(entity) {
            victim.deaths += 1;
        }
        outbox.push(OutEvent::Died { id, killer });
        let Some(killer_entity) = killer.and_then(|k| ids.get(k)) else {
            continue;
        };
        let Ok((mut killer_stats, experience, mut health, player, base)) =
            credit.get_mut(killer_entity)
        else {
            continue;
        };
        killer_stats.kills += 1;
        let (Some(mut experience), Some(player), Some(base)) = (experience, player, base) else {
            continue;
        };
        if xp == 0 {
            continue;
        }
        experience.xp += u64::from(xp);
        let level = tables.0.level_for_xp(experience.xp);
        if level > experience.level {
            experience.level = level;
            let max = max_hp_at(base.base_hp, level, &tables.0);
            let gain = max - health.max;
            health.max = max;
            if health.alive() {
                health.hp = (health.hp + gain).clamp(0, max);
            }
            outbox.push(OutEvent::LevelUp {
                player: player.0,
                level,
            });
        }
    }
}

/// Max HP of a class with `base_hp` at `level`.
pub fn max_hp_at(base_hp: i32, level: u32, tables: &tessera_tables::Tables) -> i32 {
    let bonus = tables
        .levels
        .iter()
        .find(|l| l.level == level)
        .map_or(0, |l| l.hp_bonus_pct);
    (i64::from(base_hp) * (100 + i64::from(bonus)) / 100).min(i64::from(i32::MAX)) as i32
}

/// The dead, some of whom get up.
type Rising<'w, 's> = Query<
    'w,
    's,
    (
        Entity,
        &'static SimId,
        &'static mut Health,
        &'static mut Position,
        Option<&'static Home>,
        Option<&'static mut Npc>,
    ),
>;

/// The dead whose time has come get up: full HP, at home (NPCs) or a spawn point.
#[allow(clippy::too_many_arguments)]
pub fn respawns(
    tick: Res<Tick>,
    spec: Res<WorldSpec>,
    rules: Res<WorldRules>,
    mut rng: ResMut<SimRng>,
    mut query: Rising,
    mut outbox: ResMut<Outbox>,
) {
    // In id order: each respawn draws from the world RNG.
    let mut rising: Vec<(SimId, Entity)> = query
        .iter()
        .filter(|(_, _, health, ..)| health.respawn_at.is_some_and(|t| t <= tick.0))
        .map(|(entity, id, ..)| (*id, entity))
        .collect();
    rising.sort();
    for (id, entity) in rising {
        let Ok((_, _, mut health, mut position, home, npc)) = query.get_mut(entity) else {
            continue;
        };
        health.hp = health.max;
        health.respawn_at = None;
        health.last_attacker = None;
        *position = match home {
            Some(home) => home.0,
            None => spawn_point(&rules, &spec, &mut rng, id),
        };
        if let Some(mut npc) = npc {
            npc.target = None;
            npc.leashing = false;
        }
        outbox.push(OutEvent::Respawned { id });
    }
}

/// A spawn point for a player. Drawn per entity from the world RNG mixed with
/// the id, so the draw does not depend on query iteration order.
pub fn spawn_point(rules: &WorldRules, spec: &WorldSpec, rng: &mut SimRng, id: SimId) -> Position {
    let mut local = SimRng::from_seed(rng.next_u64() ^ id.0.rotate_left(17));
    if rules.spawn_points.is_empty() {
        Position {
            x: local.range_i32(0, spec.width),
            y: local.range_i32(0, spec.height),
        }
    } else {
        rules.spawn_points[local.below(rules.spawn_points.len() as u32) as usize]
    }
}
