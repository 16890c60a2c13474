//! NPCs aggro on the nearest hostile in reach, chase, hit, leash home and respawn.

mod support;

use support::{Arena, hits};
use tessera_sim::{
    OutEvent, SimId,
    combat::components::{Health, Home},
    entity::SimIds,
    movement::Position,
    npc::Npc,
};

fn first_npc(arena: &Arena, kind: &str) -> SimId {
    (1..=500)
        .map(SimId)
        .find(|id| {
            let world = arena.world.world();
            world
                .resource::<SimIds>()
                .get(*id)
                .and_then(|e| world.get::<Npc>(e))
                .is_some_and(|n| n.kind.0 == kind)
        })
        .expect("the starter zone spawns it")
}

/// A wolf (aggro 10 m, leash 30 m) moved to a quiet corner at (20, 190) m.
fn lone_wolf(arena: &mut Arena) -> SimId {
    let wolf = first_npc(arena, "wolf");
    arena.place(wolf, 20, 190);
    arena.get_mut::<Home>(wolf).0 = Position {
        x: 20_000,
        y: 190_000,
    };
    wolf
}

#[test]
fn an_npc_aggroes_on_the_nearest_hostile_chases_and_hits() {
    let mut arena = Arena::new("starter");
    let wolf = lone_wolf(&mut arena);
    let far = arena.join(1, "warrior", 32, 190);
    arena.steps(8);
    assert_eq!(
        arena.get::<Npc>(wolf).target,
        None,
        "12 m is outside a 10 m aggro radius"
    );
    let near = arena.join(2, "warrior", 27, 190);
    arena.join(3, "warrior", 29, 190);
    arena.steps(8);
    assert_eq!(
        arena.get::<Npc>(wolf).target,
        Some(near),
        "the nearest hostile"
    );
    let events = arena.steps(60);
    assert!(
        hits(&events)
            .iter()
            .any(|(caster, target, skill, _)| *caster == wolf
                && *target == near
                && skill == "bite")
    );
    assert!(arena.get::<Position>(wolf).x > 20_000, "it chased");
    let _ = far;
}

#[test]
fn an_npc_pulled_beyond_its_leash_walks_home_and_forgets() {
    let mut arena = Arena::new("starter");
    let wolf = lone_wolf(&mut arena);
    let runner = arena.join(1, "warrior", 25, 190);
    arena.steps(8);
    assert_eq!(arena.get::<Npc>(wolf).target, Some(runner));
    // The runner stands 60 m east: the wolf chases until 30 m from home, then gives up.
    arena.place(runner, 80, 190);
    let mut leashed_at = None;
    for _ in 0..200 {
        arena.step();
        let npc = arena.get::<Npc>(wolf);
        if npc.leashing && leashed_at.is_none() {
            leashed_at = Some(arena.get::<Position>(wolf));
            assert_eq!(npc.target, None, "leashing drops the target");
        }
    }
    let at = leashed_at.expect("the wolf hit its leash");
    assert!(
        (at.x - 20_000).abs() > 30_000 - 400,
        "it chased up to the leash: {at:?}"
    );
    let home = arena.get::<Home>(wolf).0;
    let at = arena.get::<Position>(wolf);
    assert!(
        (at.x - home.x).abs() <= 1_000 && (at.y - home.y).abs() <= 1_000,
        "back home: {at:?}"
    );
    assert_eq!(arena.get::<Npc>(wolf).target, None);
}

#[test]
fn a_dead_npc_respawns_at_home_after_its_delay() {
    let mut arena = Arena::new("starter");
    let wolf = lone_wolf(&mut arena);
    arena.get_mut::<Health>(wolf).hp = 0;
    arena.step();
    assert!(
        arena
            .events
            .iter()
            .any(|e| matches!(e, OutEvent::Died { id, .. } if *id == wolf))
    );
    let events = arena.steps(599);
    assert!(!events.contains(&OutEvent::Respawned { id: wolf }));
    arena.step();
    assert!(
        arena.events.contains(&OutEvent::Respawned { id: wolf }),
        "600 ticks in the wolf row"
    );
    assert_eq!(
        arena.get::<Position>(wolf),
        Position {
            x: 20_000,
            y: 190_000
        }
    );
    assert_eq!(arena.get::<Health>(wolf).hp, 400);
}
