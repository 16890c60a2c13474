//! Leaving and coming back: a player who leaves a world and joins it again
//! with a plain `Join` (back from a room) resumes where they were, however
//! long they were away; progress loaded at login wins over what the world
//! kept; `Forget` (the player left the node) drops it.

mod support;

use tessera_sim::{
    Input, PlayerId,
    combat::components::{Experience, Health},
    input::SavedProgress,
    movement::Position,
    players::{Parked, avatar_id},
};

use support::Arena;

fn leave(arena: &mut Arena, player: u64) {
    arena.input(player, Input::Leave);
    arena.step();
}

fn rejoin(arena: &mut Arena, player: u64, input: Input) -> tessera_sim::SimId {
    arena.input(player, input);
    arena.step();
    avatar_id(arena.world.world(), PlayerId(player)).expect("joined again")
}

#[test]
fn a_player_back_with_a_plain_join_resumes_their_progress() {
    let mut arena = Arena::new("starter");
    let hero = arena.join(1, "warrior", 30, 40);
    arena.get_mut::<Experience>(hero).xp = 250;
    arena.get_mut::<Health>(hero).hp = 17;
    arena.step();
    leave(&mut arena, 1);
    assert_eq!(arena.world.world().resource::<Parked>().len(), 1);

    // Whatever class the client names, the parked one (and its progress) returns.
    let back = rejoin(
        &mut arena,
        1,
        Input::Join {
            class: "mage".into(),
        },
    );
    assert_eq!(arena.get::<Experience>(back).xp, 250);
    assert_eq!(arena.get::<Health>(back).hp, 17);
    assert_eq!(
        arena.get::<Position>(back),
        Position {
            x: 30_000,
            y: 40_000
        }
    );
    assert!(
        arena.world.world().resource::<Parked>().is_empty(),
        "used once"
    );
}

#[test]
fn progress_loaded_at_login_wins_over_the_parked_one() {
    let mut arena = Arena::new("starter");
    let hero = arena.join(2, "warrior", 10, 10);
    arena.get_mut::<Experience>(hero).xp = 40;
    arena.step();
    leave(&mut arena, 2);
    let saved = SavedProgress {
        class: "warrior".into(),
        xp: 900,
        position: Some((5_000, 6_000)),
        hp: None,
        stats: (0, 0, 0, 0),
    };
    let back = rejoin(&mut arena, 2, Input::JoinSaved(Box::new(saved)));
    assert_eq!(arena.get::<Experience>(back).xp, 900);
    assert!(arena.world.world().resource::<Parked>().is_empty());
}

#[test]
fn parked_progress_stays_until_the_host_says_the_player_is_gone() {
    let mut arena = Arena::new("starter");
    let hero = arena.join(3, "warrior", 10, 10);
    arena.get_mut::<Experience>(hero).xp = 40;
    leave(&mut arena, 3);
    // However long they are away (in a long room, say) ...
    let tick_hz = u64::from(arena.world.spec().tick_hz);
    arena.steps(120 * tick_hz);
    assert_eq!(arena.world.world().resource::<Parked>().len(), 1);
    // ... until they leave the node.
    arena.input(3, Input::Forget);
    arena.step();
    assert!(arena.world.world().resource::<Parked>().is_empty());
    let back = rejoin(
        &mut arena,
        3,
        Input::Join {
            class: "warrior".into(),
        },
    );
    assert_eq!(arena.get::<Experience>(back).xp, 0);
}

#[test]
fn a_roam100_runner_stings_and_mends_itself() {
    use std::sync::Arc;
    use tessera_sim::{SimWorld, SkillTarget, WorldSpec};
    let tables = Arc::new(
        tessera_tables::generate::tables_from(tessera_tables::bench::roam100_game(1)).unwrap(),
    );
    let spec = WorldSpec {
        kind: "roam100".into(),
        seed: 3,
        tick_hz: 20,
        width: 150_000,
        height: 150_000,
        capacity: 200,
    };
    let mut world = SimWorld::new(spec).unwrap();
    world.set_tables(tables);
    world.push_input(
        PlayerId(1),
        Input::Join {
            class: "runner".into(),
        },
    );
    world.step();
    let me = avatar_id(world.world(), PlayerId(1)).unwrap();
    let hp = |world: &SimWorld| {
        let entity = world
            .world()
            .resource::<tessera_sim::entity::SimIds>()
            .get(me)
            .unwrap();
        world.world().get::<Health>(entity).unwrap().hp
    };
    let full = hp(&world);
    let cast = |world: &mut SimWorld, skill: &str| {
        world.push_input(
            PlayerId(1),
            Input::UseSkill {
                skill: skill.into(),
                target: SkillTarget::Caster,
            },
        );
        for _ in 0..3 {
            world.step();
        }
    };
    cast(&mut world, "sting");
    assert_eq!(hp(&world), full - 10);
    // Cooldowns are a second (20 ticks).
    for _ in 0..20 {
        world.step();
    }
    cast(&mut world, "mend");
    assert_eq!(hp(&world), full);
}

/// What a host reads to move everyone to a new world of the zone: each
/// avatar's progress as a leave would keep it, and what is parked for the
/// players away, and a world that takes them with `JoinSaved` gives them
/// back exactly that.
#[test]
fn everyones_progress_is_what_a_leave_would_keep_and_a_new_world_restores_it() {
    use tessera_sim::players::players_progress;
    let mut arena = Arena::new("starter");
    let hero = arena.join(1, "warrior", 10, 10);
    arena.get_mut::<Experience>(hero).xp = 250;
    arena.get_mut::<Health>(hero).hp = 17;
    let away = arena.join(2, "warrior", 20, 20);
    arena.get_mut::<Experience>(away).xp = 40;
    arena.step();
    leave(&mut arena, 2);
    let progress = players_progress(arena.world.world());
    assert_eq!(progress.present.len(), 1);
    assert_eq!(progress.parked.len(), 1);
    let (player, kept) = &progress.present[0];
    assert_eq!(*player, tessera_sim::PlayerId(1));
    assert_eq!((kept.xp, kept.hp), (250, Some(17)));
    let here = arena.get::<Position>(hero);
    assert_eq!(kept.position, Some((here.x, here.y)));
    assert_eq!(
        progress.parked[0],
        (
            tessera_sim::PlayerId(2),
            arena
                .world
                .world()
                .resource::<Parked>()
                .get(tessera_sim::PlayerId(2))
                .unwrap()
                .clone()
        )
    );

    let mut fresh = Arena::new("starter");
    let back = rejoin(&mut fresh, 1, Input::JoinSaved(Box::new(kept.clone())));
    assert_eq!(fresh.get::<Experience>(back).xp, 250);
    assert_eq!(fresh.get::<Health>(back).hp, 17);
    assert_eq!(fresh.get::<Position>(back), here);
}
