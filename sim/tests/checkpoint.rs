//! Checkpoints: a world rebuilt from one goes on exactly like the original
//! (same hash every tick, same events, same entity order), and bad bytes or
//! a world a checkpoint cannot hold give errors.

mod support;

use std::sync::Arc;

use bevy_ecs::component::Component;
use proptest::prelude::*;
use support::Arena;
use tessera_sim::{
    ChatChannel, Checkpoint, CheckpointError, Input, InputEnvelope, OutEvent, PlayerId, SimId,
    SimWorld, TeamCommand, TeamId, WorldSpec, driver::RandomInputs, entity::SimIds,
    movement::Position,
};
use tessera_tables::{Tables, generate::default_tables};

fn world(kind: &str, seed: u64) -> SimWorld {
    let tables = Arc::new(default_tables());
    let zone = tables.zones.get(kind).unwrap();
    let spec = WorldSpec {
        kind: kind.into(),
        seed,
        tick_hz: zone.tick_hz as u16,
        width: zone.width.mm as i32,
        height: zone.height.mm as i32,
        capacity: zone.capacity,
    };
    let mut world = SimWorld::new(spec).unwrap();
    world.set_tables(tables);
    world
}

/// Team and chat traffic on top of the random players: a team of players
/// 1-3 (warrior, mage, cleric) whose health is shared, and some chat.
fn social(tick: u64) -> Vec<InputEnvelope> {
    let team = |p: u64, c: TeamCommand| InputEnvelope::new(PlayerId(p), Input::Team(c));
    let chat = |p: u64, channel: ChatChannel| {
        InputEnvelope::new(
            PlayerId(p),
            Input::Chat {
                channel,
                text: format!("tick {tick}"),
            },
        )
    };
    match tick {
        5 => vec![team(1, TeamCommand::Create)],
        6 => vec![
            team(1, TeamCommand::Invite(PlayerId(2))),
            team(1, TeamCommand::Invite(PlayerId(3))),
        ],
        7 => vec![
            team(2, TeamCommand::Accept(TeamId(1))),
            team(3, TeamCommand::Accept(TeamId(1))),
        ],
        t if t % 37 == 0 => vec![chat(2, ChatChannel::Team)],
        t if t % 53 == 0 => vec![chat(4, ChatChannel::Say)],
        _ => Vec::new(),
    }
}

/// Steps `world` once with the driver's and the social inputs.
fn step(world: &mut SimWorld, driver: &mut RandomInputs) -> (u64, Vec<OutEvent>) {
    let tick = world.tick() + 1;
    world.push_envelopes(driver.inputs_for(tick));
    world.push_envelopes(social(tick));
    let report = world.step();
    (report.hash, world.drain_events())
}

/// A checkpoint of `world` through bytes and back into a new world.
fn restore(world: &SimWorld) -> (Checkpoint, SimWorld) {
    let checkpoint = world.checkpoint().expect("checkpoint");
    let bytes = checkpoint.to_bytes().unwrap();
    let decoded = Checkpoint::from_bytes(&bytes).unwrap();
    assert_eq!(decoded, checkpoint, "a checkpoint survives its bytes");
    let restored = SimWorld::from_checkpoint(world.tables().clone(), &decoded).expect("restore");
    assert_eq!(
        restored.checkpoint().unwrap(),
        checkpoint,
        "the restored world holds what the original held, in the same order"
    );
    assert_eq!(
        (restored.tick(), restored.last_hash(), restored.hash_parts()),
        (world.tick(), world.last_hash(), world.hash_parts())
    );
    (checkpoint, restored)
}

/// Runs both worlds `ticks` more with the same inputs; they must agree on
/// every tick. Returns every event of the original.
fn run_both(
    original: &mut SimWorld,
    restored: &mut SimWorld,
    driver: &mut RandomInputs,
    ticks: u64,
) -> Vec<OutEvent> {
    let mut copy = driver.clone();
    let mut all = Vec::new();
    for _ in 0..ticks {
        let (hash, events) = step(original, driver);
        let (again, restored_events) = step(restored, &mut copy);
        let tick = original.tick();
        assert_eq!(hash, again, "tick {tick}: state hashes differ");
        assert_eq!(original.hash_parts(), restored.hash_parts(), "tick {tick}");
        assert_eq!(events, restored_events, "tick {tick}: events differ");
        all.extend(events);
    }
    assert_eq!(
        original.checkpoint().unwrap(),
        restored.checkpoint().unwrap()
    );
    all
}

#[test]
fn a_restored_starter_zone_goes_on_exactly_like_the_original() {
    let mut original = world("starter", 2026);
    let skills: Vec<String> = original
        .tables()
        .skills
        .iter()
        .map(|s| s.id.0.clone())
        .collect();
    let skills: Vec<&str> = skills.iter().map(String::as_str).collect();
    let mut driver = RandomInputs::new(77, 60).fighting(&skills, 160);
    let mut before = Vec::new();
    for _ in 0..400 {
        before.extend(step(&mut original, &mut driver).1);
    }
    let left = before
        .iter()
        .filter(|e| matches!(e, OutEvent::Left { .. }))
        .count();
    assert!(left > 0, "someone left, so table rows were swap-removed");

    let (checkpoint, mut restored) = restore(&original);
    assert!(checkpoint.entities() > 100, "{}", checkpoint.entities());
    let after = run_both(&mut original, &mut restored, &mut driver, 400);

    let count = |f: fn(&OutEvent) -> bool| after.iter().filter(|e| f(e)).count();
    let hits = count(|e| matches!(e, OutEvent::SkillHit { .. }));
    let shared = count(|e| matches!(e, OutEvent::TeamMemberHp { .. }));
    let chats = count(|e| matches!(e, OutEvent::Chat { .. }));
    eprintln!("after the restore: {hits} hits, {shared} team health shares, {chats} chats");
    assert!(
        hits > 20 && shared > 0 && chats > 0,
        "the run must fight, share team health and chat: {hits} {shared} {chats}"
    );
}

#[test]
fn restored_components_do_not_look_changed_on_the_first_tick() {
    // Team health sharing reads `Changed<Health>`: a restored world whose
    // components looked new would announce every member's health at once.
    let mut arena = Arena::new("field");
    for p in 1..=2 {
        arena.join(p, "cleric", 10, 10);
    }
    arena.input(1, Input::Team(TeamCommand::Create));
    arena.step();
    arena.input(1, Input::Team(TeamCommand::Invite(PlayerId(2))));
    arena.step();
    arena.input(2, Input::Team(TeamCommand::Accept(TeamId(1))));
    arena.steps(3);
    let (_, mut restored) = restore(&arena.world);
    arena.step();
    restored.step();
    assert_eq!(restored.drain_events(), arena.events);
    assert_eq!(restored.last_hash(), arena.world.last_hash());

    // A change on the next tick is still seen: a heal on a hurt mate.
    for world in [&mut arena.world, &mut restored] {
        let entity = world
            .world()
            .resource::<SimIds>()
            .get(SimId(2))
            .expect("player 2");
        world
            .world_mut()
            .get_mut::<tessera_sim::combat::components::Health>(entity)
            .unwrap()
            .hp -= 100;
    }
    arena.step();
    restored.step();
    let mut restored_events = restored.drain_events();
    assert!(
        restored_events
            .iter()
            .any(|e| matches!(e, OutEvent::TeamMemberHp { member, .. } if *member == PlayerId(2)))
    );
    assert_eq!(std::mem::take(&mut restored_events), arena.events);
}

fn storage_order(world: &mut SimWorld) -> Vec<SimId> {
    let ecs = world.world_mut();
    let mut query = ecs.query::<&SimId>();
    query.iter(ecs).copied().collect()
}

#[test]
fn a_restore_keeps_the_row_order_that_despawns_left() {
    let mut arena = Arena::new("field");
    for p in 1..=5 {
        arena.join(p, "warrior", 10 * p as i32, 10);
    }
    arena.input(2, Input::Leave);
    arena.step();
    let order = storage_order(&mut arena.world);
    assert_eq!(
        order,
        [1, 5, 3, 4].map(SimId),
        "the last row moved into the hole"
    );
    let (_, mut restored) = restore(&arena.world);
    assert_eq!(storage_order(&mut restored), order);
    // And a join after the restore lands where it would have.
    for world in [&mut arena.world, &mut restored] {
        world.push_input(
            PlayerId(9),
            Input::Join {
                class: "mage".into(),
            },
        );
        world.step();
    }
    assert_eq!(
        storage_order(&mut restored),
        storage_order(&mut arena.world)
    );
    assert_eq!(restored.last_hash(), arena.world.last_hash());
}

#[test]
fn a_zone_with_nobody_in_it_keeps_its_empty_archetype() {
    // Everyone left: the avatars' archetype is empty but still comes
    // before anything created later, so the restore recreates it.
    let mut arena = Arena::new("starter");
    arena.join(1, "mage", 100, 100);
    arena.input(1, Input::Leave);
    arena.step();
    let (_, mut restored) = restore(&arena.world);
    let mut driver = RandomInputs::new(3, 3);
    run_both(&mut arena.world, &mut restored, &mut driver, 40);
}

#[derive(Component)]
struct Marker;

#[test]
fn entities_a_restore_could_not_recreate_fail_the_checkpoint() {
    let mut arena = Arena::new("field");
    let id = arena.join(1, "warrior", 10, 10);
    let entity = arena.world.world().resource::<SimIds>().get(id).unwrap();
    arena.world.world_mut().entity_mut(entity).insert(Marker);
    assert!(matches!(
        arena.world.checkpoint(),
        Err(CheckpointError::Shape { .. })
    ));

    let mut arena = Arena::new("field");
    arena.world.world_mut().spawn(Position { x: 1, y: 2 });
    assert!(matches!(
        arena.world.checkpoint(),
        Err(CheckpointError::Shape { .. })
    ));
}

#[test]
fn a_checkpoint_needs_the_tables_it_was_taken_on() {
    let arena = Arena::new("starter");
    let checkpoint = arena.world.checkpoint().unwrap();
    assert!(matches!(
        SimWorld::from_checkpoint(Arc::new(Tables::default()), &checkpoint),
        Err(CheckpointError::Tables { .. })
    ));
}

#[test]
fn bad_bytes_are_an_error() {
    let arena = Arena::new("starter");
    let bytes = arena.world.checkpoint().unwrap().to_bytes().unwrap();
    assert!(matches!(
        Checkpoint::from_bytes(&[]),
        Err(CheckpointError::Decode(_))
    ));
    for cut in [1, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            matches!(
                Checkpoint::from_bytes(&bytes[..cut]),
                Err(CheckpointError::Decode(_))
            ),
            "cut at {cut}"
        );
    }
    // Another format version is named as such, whatever its layout.
    let mut newer = bytes.clone();
    assert_eq!(
        (newer[0], newer[3]),
        (0xdc, 1),
        "an array16 led by the version"
    );
    newer[3] = 2;
    assert!(matches!(
        Checkpoint::from_bytes(&newer),
        Err(CheckpointError::Version { found: 2 })
    ));
    let other = rmp_serde::to_vec(&(3u32, "something else")).unwrap();
    assert!(matches!(
        Checkpoint::from_bytes(&other),
        Err(CheckpointError::Version { found: 3 })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn any_bytes_give_a_checkpoint_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..2_048)) {
        let _ = Checkpoint::from_bytes(&bytes);
    }

    /// A lockstep room (waiting, countdown, running, finished) checkpointed
    /// at any tick goes on like the original.
    #[test]
    fn a_room_restored_at_any_tick_goes_on_like_the_original(
        seed: u64,
        inputs: u64,
        players in 1u64..=4,
        before in 0u64..200,
    ) {
        let mut original = world("duel_lockstep", seed);
        let mut driver = RandomInputs::new(inputs, players).fighting(&["slash", "war_cry", "firebolt", "frost_nova", "heal", "smite", "renew"], 6);
        for _ in 0..before {
            step(&mut original, &mut driver);
        }
        let (_, mut restored) = restore(&original);
        run_both(&mut original, &mut restored, &mut driver, 40);
    }
}
