//! Using skills: every check on the server, then casts landing.

use bevy_ecs::{
    entity::Entity,
    system::{Query, Res, ResMut},
};
use tessera_tables::{
    schema::{Effect, Skill, TargetKind},
    values::Id,
};

use super::{
    buffs::{apply_buff, stat_percent},
    components::{Allegiance, Buffs, Cast, Casting, CombatStats, Cooldowns, Health, KnownSkills},
};
use crate::{
    core::GameTables,
    entity::{SimId, SimIds},
    input::{Inbox, Input, PlayerId, SkillTarget},
    movement::Position,
    npc::Npc,
    output::{OutEvent, Outbox, Rejection},
    players::PlayerIndex,
    rules::WorldRules,
    spatial::{SpatialGrid, within},
    world::Tick,
};
use tessera_tables::schema::Stat;

/// A caster's view of a target.
#[derive(Clone, Copy)]
struct TargetView {
    position: Position,
    allegiance: Allegiance,
    alive: bool,
}

type CasterQuery<'w, 's> = Query<
    'w,
    's,
    (
        &'static SimId,
        &'static Position,
        &'static Allegiance,
        &'static Health,
        &'static KnownSkills,
        &'static mut Cooldowns,
        &'static mut Casting,
    ),
>;

fn view(casters: &CasterQuery, ids: &SimIds, id: SimId) -> Option<TargetView> {
    let (_, position, allegiance, health, ..) = casters.get(ids.get(id)?).ok()?;
    Some(TargetView {
        position: *position,
        allegiance: *allegiance,
        alive: health.alive(),
    })
}

/// Checks a target against a skill's target kind, relation and range.
fn check_target(
    skill: &Skill,
    caster: (SimId, Position, Allegiance),
    target: &SkillTarget,
    lookup: impl Fn(SimId) -> Option<TargetView>,
    rules: &WorldRules,
    extra_range: i64,
) -> Result<(), Rejection> {
    let (caster_id, caster_pos, caster_side) = caster;
    let range = skill.range.mm + extra_range;
    let entity_target = |id: SimId, want_hostile: bool| -> Result<(), Rejection> {
        let target = lookup(id).ok_or(Rejection::NoSuchTarget)?;
        if !target.alive {
            return Err(Rejection::TargetDead);
        }
        let hostile = id != caster_id && caster_side.hostile_to(&target.allegiance, rules.pvp);
        match (want_hostile, hostile) {
            (true, false) => return Err(Rejection::NotHostile),
            (false, true) => return Err(Rejection::NotFriendly),
            _ => {}
        }
        if within(caster_pos, target.position, range) {
            Ok(())
        } else {
            Err(Rejection::OutOfRange)
        }
    };
    match (skill.target, target) {
        (TargetKind::Enemy, SkillTarget::Entity(id)) => entity_target(*id, true),
        (TargetKind::Ally, SkillTarget::Entity(id)) => entity_target(*id, false),
        (TargetKind::Ally | TargetKind::Caster, SkillTarget::Caster) => Ok(()),
        (TargetKind::Caster, SkillTarget::Entity(id)) if *id == caster_id => Ok(()),
        (TargetKind::Point, SkillTarget::Point { x, y }) => {
            if within(caster_pos, Position { x: *x, y: *y }, range) {
                Ok(())
            } else {
                Err(Rejection::OutOfRange)
            }
        }
        _ => Err(Rejection::WrongTargetKind),
    }
}

/// Starts casts requested this tick: players' `UseSkill` inputs in arrival
/// order, then NPCs that have a target in reach, in `SimId` order.
#[allow(clippy::too_many_arguments)]
pub fn start_casts(
    tick: Res<Tick>,
    inbox: Res<Inbox>,
    index: Res<PlayerIndex>,
    ids: Res<SimIds>,
    tables: Res<GameTables>,
    rules: Res<WorldRules>,
    npcs: Query<(Entity, &SimId, &Npc)>,
    mut casters: CasterQuery,
    mut outbox: ResMut<Outbox>,
) {
    let now = tick.0;
    // The caster, and the player and request number to refuse (NPCs: none).
    type Request = (Entity, Option<(PlayerId, u32)>, Id, SkillTarget);
    let mut requests: Vec<Request> = Vec::new();
    let cutoffs = inbox.presence_cutoffs();
    for (position, envelope) in inbox.pending().iter().enumerate() {
        let Input::UseSkill { skill, target } = &envelope.input else {
            continue;
        };
        if let Some(cut) = cutoffs
            .get(&envelope.player)
            .filter(|cut| cut.skips(position))
        {
            if let Some(reason) = cut.refusal() {
                outbox.reject(envelope.player, envelope.request, reason);
            }
            continue;
        }
        match index.get(envelope.player) {
            Some(entity) => requests.push((
                entity,
                Some((envelope.player, envelope.request)),
                Id(skill.clone()),
                *target,
            )),
            None => outbox.reject(envelope.player, envelope.request, Rejection::NotJoined),
        }
    }
    let mut npc_requests: Vec<(SimId, Entity, Id, SkillTarget)> = npcs
        .iter()
        .filter_map(|(entity, id, npc)| {
            npc.wants_to_cast
                .clone()
                .map(|(skill, target)| (*id, entity, skill, SkillTarget::Entity(target)))
        })
        .collect();
    npc_requests.sort_by_key(|(id, ..)| *id);
    requests.extend(npc_requests.into_iter().map(|(_, e, s, t)| (e, None, s, t)));

    for (entity, player, skill_id, target) in requests {
        let result = (|| {
            let (caster_id, position, allegiance, health, known, cooldowns, casting) =
                casters.get(entity).map_err(|_| Rejection::NotJoined)?;
            if !health.alive() {
                return Err(Rejection::Dead);
            }
            let skill = tables
                .0
                .skills
                .get(&skill_id.0)
                .ok_or(Rejection::UnknownSkill)?;
            if !known.0.contains(&skill_id) {
                return Err(Rejection::SkillNotKnown);
            }
            if !rules.skills_enabled {
                return Err(Rejection::NotRunning);
            }
            if casting.0.is_some() {
                return Err(Rejection::AlreadyCasting);
            }
            if cooldowns.ready_at(&skill_id.0) > now {
                return Err(Rejection::Cooldown);
            }
            let caster = (*caster_id, *position, *allegiance);
            check_target(
                skill,
                caster,
                &target,
                |id| view(&casters, &ids, id),
                &rules,
                0,
            )?;
            Ok((*caster_id, skill.cooldown_ticks, skill.cast_ticks))
        })();
        match result {
            Ok((caster, cooldown, cast_ticks)) => {
                let (.., mut cooldowns, mut casting) =
                    casters.get_mut(entity).expect("checked above");
                cooldowns.start(&skill_id, now + u64::from(cooldown));
                let lands_at = now + u64::from(cast_ticks);
                casting.0 = Some(Cast {
                    skill: skill_id.clone(),
                    target,
                    lands_at,
                });
                outbox.push(OutEvent::CastStarted {
                    caster,
                    skill: skill_id.0,
                    target,
                    lands_at,
                });
            }
            Err(reason) => {
                if let Some((player, request)) = player {
                    outbox.reject(player, request, reason);
                }
            }
        }
    }
}

type TargetQuery<'w, 's> = Query<
    'w,
    's,
    (
        &'static SimId,
        &'static Position,
        &'static Allegiance,
        &'static mut Health,
        &'static mut Buffs,
        &'static mut CombatStats,
    ),
>;

/// Lands every cast due this tick, in caster `SimId` order.
#[allow(clippy::too_many_arguments)]
pub fn land_casts(
    tick: Res<Tick>,
    ids: Res<SimIds>,
    tables: Res<GameTables>,
    rules: Res<WorldRules>,
    grid: Res<SpatialGrid>,
    mut casting: Query<(Entity, &SimId, &mut Casting)>,
    mut targets: TargetQuery,
    mut outbox: ResMut<Outbox>,
) {
    let now = tick.0;
    let mut due: Vec<(SimId, Entity, Cast)> = Vec::new();
    for (entity, id, mut cast) in &mut casting {
        if cast.0.as_ref().is_some_and(|c| c.lands_at <= now) {
            due.push((*id, entity, cast.0.take().expect("checked")));
        }
    }
    due.sort_by_key(|(id, ..)| *id);

    for (caster_id, caster_entity, cast) in due {
        let Some(skill) = tables.0.skills.get(&cast.skill.0) else {
            continue;
        };
        let Ok((_, caster_pos, caster_side, caster_health, caster_buffs, _)) =
            targets.get(caster_entity)
        else {
            continue;
        };
        if !caster_health.alive() {
            continue;
        }
        let (caster_pos, caster_side) = (*caster_pos, *caster_side);
        let damage_pct = stat_percent(&caster_buffs.0, Stat::Damage, &tables.0);
        let lookup = |id: SimId| {
            let (_, position, allegiance, health, ..) = targets.get(ids.get(id)?).ok()?;
            Some(TargetView {
                position: *position,
                allegiance: *allegiance,
                alive: health.alive(),
            })
        };
        let grace = i64::from(rules.landing_grace_mm);
        if let Err(reason) = check_target(
            skill,
            (caster_id, caster_pos, caster_side),
            &cast.target,
            lookup,
            &rules,
            grace,
        ) {
            outbox.push(OutEvent::CastFailed {
                caster: caster_id,
                skill: cast.skill.0.clone(),
                reason,
            });
            continue;
        }
        let mut hit: Vec<Entity> = match cast.target {
            SkillTarget::Entity(id) => ids.get(id).into_iter().collect(),
            SkillTarget::Caster => vec![caster_entity],
            SkillTarget::Point { x, y } => {
                let mut found = Vec::new();
                let wants_hostile = skill.effect == Effect::Damage;
                grid.for_each_within(Position { x, y }, rules.area_radius_mm, |entry| {
                    let hostile = entry.id != caster_id
                        && caster_side.hostile_to(&entry.allegiance, rules.pvp);
                    if hostile == wants_hostile {
                        found.push((entry.id, entry.entity));
                    }
                });
                found.sort();
                found.into_iter().map(|(_, e)| e).collect()
            }
        };
        hit.dedup();
        let mut dealt = 0u64;
        let mut healed = 0u64;
        for target in hit {
            let Ok((target_id, _, _, mut health, mut buffs, _)) = targets.get_mut(target) else {
                continue;
            };
            if !health.alive() {
                continue;
            }
            let amount = match skill.effect {
                Effect::Damage => {
                    let taken_pct = stat_percent(&buffs.0, Stat::DamageTaken, &tables.0);
                    let raw = i64::from(skill.amount) * (100 + damage_pct).max(0) / 100
                        * (100 + taken_pct).max(0)
                        / 100;
                    let applied = raw.min(i64::from(health.hp)) as i32;
                    health.hp -= applied;
                    health.last_attacker = Some(caster_id);
                    dealt += applied as u64;
                    -applied
                }
                Effect::Heal => {
                    let applied =
                        (i64::from(skill.amount)).min(i64::from(health.max - health.hp)) as i32;
                    health.hp += applied;
                    healed += applied as u64;
                    applied
                }
            };
            if let Some(buff) = skill.buff.as_ref().and_then(|b| tables.0.buffs.get(&b.0)) {
                apply_buff(&mut buffs.0, buff, now);
            }
            outbox.push(OutEvent::SkillHit {
                caster: caster_id,
                target: *target_id,
                skill: cast.skill.0.clone(),
                amount,
                hp: health.hp,
            });
        }
        if let Ok((.., mut stats)) = targets.get_mut(caster_entity) {
            stats.damage += dealt;
            stats.healing += healed;
        }
    }
}
