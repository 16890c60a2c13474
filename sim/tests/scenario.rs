//! 200 players fighting among 100 NPCs for 10,000 ticks on random inputs,
//! with the invariants a player would notice checked every tick, then the
//! recording replayed tick by tick.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use tessera_sim::{
    OutEvent, SimId, SimWorld, WorldSpec,
    combat::components::{Casting, Health},
    driver::RandomInputs,
    movement::Position,
    npc::Npc,
    replay::{ReplayHeader, ReplayReader, ReplayWriter, verify},
};
use tessera_tables::generate::default_tables;

const TICKS: u64 = 10_000;

#[test]
fn two_hundred_players_and_a_hundred_npcs_keep_every_invariant_and_replay_exactly() {
    let tables = Arc::new(default_tables());
    let zone = tables.zones.get("starter").unwrap();
    let spec = WorldSpec {
        kind: "starter".into(),
        seed: 2026,
        tick_hz: 20,
        width: zone.width.mm as i32,
        height: zone.height.mm as i32,
        capacity: 1_000,
    };
    let cooldown: BTreeMap<String, u64> = tables
        .skills
        .iter()
        .map(|s| (s.id.0.clone(), u64::from(s.cooldown_ticks)))
        .collect();
    let mut world = SimWorld::new(spec.clone()).unwrap();
    world.set_tables(tables.clone());
    world.start_recording();
    let mut writer = ReplayWriter::new(Vec::new(), &ReplayHeader::for_world(&world)).unwrap();
    let skills: Vec<&str> = tables.skills.iter().map(|s| s.id.0.as_str()).collect();
    let mut driver = RandomInputs::new(99, 200).fighting(&skills, 320);

    let mut dead_at: BTreeMap<SimId, Position> = BTreeMap::new();
    let mut last_cast: BTreeMap<(SimId, String), u64> = BTreeMap::new();
    let (mut hits, mut deaths, mut npc_deaths, mut casts) = (0u64, 0u64, 0u64, 0u64);
    let mut npcs: BTreeSet<SimId> = BTreeSet::new();

    for _ in 0..TICKS {
        let tick = world.tick() + 1;
        world.push_envelopes(driver.inputs_for(tick));
        world.step();
        for record in world.take_recorded() {
            writer.append(&record).unwrap();
        }
        for event in world.drain_events() {
            match event {
                OutEvent::CastStarted { caster, skill, .. } => {
                    assert!(
                        !dead_at.contains_key(&caster),
                        "tick {tick}: dead {caster:?} started a cast"
                    );
                    if let Some(previous) = last_cast.insert((caster, skill.clone()), tick) {
                        assert!(
                            tick - previous >= cooldown[&skill],
                            "tick {tick}: {caster:?} {skill} after {}",
                            tick - previous
                        );
                    }
                    casts += 1;
                }
                OutEvent::SkillHit { caster, .. } => {
                    assert!(
                        !dead_at.contains_key(&caster),
                        "tick {tick}: dead {caster:?} landed a hit"
                    );
                    hits += 1;
                }
                OutEvent::Died { id, .. } => {
                    deaths += 1;
                    npc_deaths += u64::from(npcs.contains(&id));
                }
                _ => {}
            }
        }
        let ecs = world.world_mut();
        let mut query = ecs.query::<(&SimId, &Health, &Position, &Casting, Option<&Npc>)>();
        let mut now_dead = BTreeMap::new();
        let mut count = 0;
        for (id, health, position, casting, npc) in query.iter(ecs) {
            count += 1;
            if npc.is_some() {
                npcs.insert(*id);
            }
            assert!(
                (0..=health.max).contains(&health.hp),
                "tick {tick}: {id:?} hp {} of {}",
                health.hp,
                health.max
            );
            assert!(
                (0..=spec.width).contains(&position.x) && (0..=spec.height).contains(&position.y),
                "tick {tick}: {id:?} outside the zone at {position:?}"
            );
            if !health.alive() {
                assert!(casting.0.is_none(), "tick {tick}: dead {id:?} is casting");
                if let Some(then) = dead_at.get(id) {
                    assert_eq!(then, position, "tick {tick}: dead {id:?} moved");
                }
                now_dead.insert(*id, *position);
            }
        }
        assert!(count >= 250, "tick {tick}: only {count} entities");
        dead_at = now_dead;
    }
    assert_eq!(npcs.len(), 100);
    // The scenario must actually fight, or the invariants prove nothing.
    assert!(
        casts > 1_000 && hits > 1_000 && deaths > 50 && npc_deaths > 0,
        "casts {casts} hits {hits} deaths {deaths} npc deaths {npc_deaths}"
    );

    let bytes = writer.finish().unwrap();
    let report = verify(ReplayReader::new(&bytes[..]).unwrap(), tables, |_| {}).unwrap();
    assert_eq!(report.ticks, TICKS);
    assert_eq!(report.divergence, None);
}
