//! A room's lifecycle and how teams land in it.

mod support;

use support::Arena;
use tessera_sim::{
    Input, OutEvent, PlayerId, Rejection, RoomCommand, SkillTarget,
    combat::components::{Allegiance, Health},
    matchmaking::{Matchmaker, QueueRules},
    output::RoomStage,
    room::{Room, RoomPhase},
};

#[test]
fn waiting_countdown_running_finished_then_empty() {
    let mut arena = Arena::new("arena"); // room, 30 Hz, capacity 10
    let a = arena.join(1, "warrior", 30, 30);
    let b = arena.join(2, "warrior", 31, 30);
    assert_eq!(arena.get::<Allegiance>(a).side, Some(0));
    assert_eq!(arena.get::<Allegiance>(b).side, Some(1), "the smaller side");

    arena.input(
        1,
        Input::UseSkill {
            skill: "slash".into(),
            target: SkillTarget::Entity(b),
        },
    );
    arena.input(2, Input::Room(RoomCommand::Start));
    arena.step();
    assert_eq!(arena.rejections(1), vec![Rejection::NotRunning]);
    assert_eq!(arena.rejections(2), vec![Rejection::NotOwner]);
    arena.input(1, Input::Room(RoomCommand::Start));
    arena.step();
    assert!(arena.events.iter().any(|e| matches!(
        e,
        OutEvent::RoomStage {
            stage: RoomStage::Countdown { .. }
        }
    )));
    let events = arena.steps(90);
    assert!(
        events.contains(&OutEvent::RoomStage {
            stage: RoomStage::Running
        }),
        "3 s at 30 Hz"
    );

    // Side spawn points are 50 m apart: bring them together and fight.
    arena.place(a, 30, 30);
    arena.place(b, 31, 30);
    arena.get_mut::<Health>(b).hp = 100;
    arena.input(
        1,
        Input::UseSkill {
            skill: "slash".into(),
            target: SkillTarget::Entity(b),
        },
    );
    arena.step();
    arena.step();
    let result = arena
        .world
        .world()
        .resource::<Room>()
        .result
        .clone()
        .expect("finished");
    assert_eq!(
        arena.world.world().resource::<Room>().phase,
        RoomPhase::Finished
    );
    assert_eq!(result.winner, Some(0));
    assert_eq!(
        (
            result.players[0].player,
            result.players[0].kills,
            result.players[0].damage
        ),
        (PlayerId(1), 1, 100)
    );
    assert_eq!((result.players[1].deaths, result.players[1].side), (1, 1));
    let dead = arena.get::<Health>(b);
    arena.steps(200);
    assert_eq!(
        arena.get::<Health>(b).respawn_at,
        dead.respawn_at,
        "no respawn in a running/finished room"
    );

    arena.input(1, Input::Leave);
    arena.input(2, Input::Leave);
    arena.step();
    assert!(arena.events.contains(&OutEvent::RoomEmpty));
}

#[test]
fn starting_needs_enough_players() {
    let mut arena = Arena::new("arena");
    arena.join(1, "warrior", 30, 30);
    arena.input(1, Input::Room(RoomCommand::Start));
    arena.step();
    assert_eq!(arena.rejections(1), vec![Rejection::NotEnoughPlayers]);
}

#[test]
fn a_matchmade_team_of_three_lands_whole_on_one_side_and_the_room_starts() {
    let mut matchmaker = Matchmaker::default();
    matchmaker.add_queue(
        "arena",
        QueueRules {
            room_size: 6,
            sides: 2,
            min_players: 2,
            wait_budget: 100,
        },
    );
    matchmaker.enqueue("arena", vec![PlayerId(1)], 0).unwrap();
    matchmaker
        .enqueue("arena", vec![PlayerId(7), PlayerId(8), PlayerId(9)], 1)
        .unwrap();
    matchmaker.enqueue("arena", vec![PlayerId(2)], 2).unwrap();
    matchmaker.enqueue("arena", vec![PlayerId(3)], 3).unwrap();
    let formed = matchmaker.poll(4).remove(0);

    let mut arena = Arena::new("arena");
    {
        let mut room = arena.world.world_mut().resource_mut::<Room>();
        for (side, players) in formed.sides.iter().enumerate() {
            for player in players {
                room.roster.insert(*player, side as u8);
            }
        }
    }
    let mut events = Vec::new();
    for player in [1, 2, 3, 7, 8, 9] {
        arena.join(player, "warrior", 30, 30);
        events.extend(arena.events.clone());
    }
    let side_of = |p: u64| {
        let id = tessera_sim::players::avatar_id(arena.world.world(), PlayerId(p)).unwrap();
        arena.get::<Allegiance>(id).side.unwrap()
    };
    assert_eq!(side_of(7), side_of(8));
    assert_eq!(side_of(8), side_of(9));
    assert!([1, 2, 3].iter().all(|p| side_of(*p) != side_of(7)));
    assert!(
        events.iter().any(|e| matches!(
            e,
            OutEvent::RoomStage {
                stage: RoomStage::Countdown { .. }
            }
        )),
        "a complete roster starts by itself"
    );
}
