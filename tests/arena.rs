//! Matchmaking over the network: two players join the `arena` room kind,
//! are matched into a room world on opposite sides, fight when it starts,
//! and both hear the same result when it finishes.

mod support;

use std::time::Duration;

use support::*;
use tessera_bot::{
    arena::{Arena, Weapon},
    session::{Session, login},
};
use tessera_net::proto::{self, client_message::Body};

#[test]
fn two_queued_players_are_matched_fight_and_get_one_result() {
    let dir = tempfile::tempdir().unwrap();
    write_tables_with_room_size(dir.path(), "arena", 2);
    let node = start(&["--tables", dir.path().to_str().unwrap()]);
    let mut players: Vec<(Session, Arena, usize)> = ["duelist-a", "duelist-b"]
        .iter()
        .map(|name| {
            let login = login(&node.http, name).expect("login");
            let mut session = Session::connect(&login, Duration::from_secs(20)).expect("connect");
            session.send(Body::Join(proto::JoinWorld {
                class: "warrior".into(),
                world: "arena".into(),
            }));
            (session, Arena::default(), 0)
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while players.iter().any(|(_, arena, _)| arena.result.is_none()) {
        if std::time::Instant::now() >= deadline {
            let logs: Vec<String> = node.lines.try_iter().collect();
            eprintln!("{}", logs.join("\n"));
            eprintln!(
                "{:?}",
                players
                    .iter()
                    .map(|(s, _, _)| (s.welcome.clone(), s.responses.clone(), s.events.len()))
                    .collect::<Vec<_>>()
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no result: {:?}",
            players
                .iter()
                .map(|(_, a, _)| (a.stage, a.side, a.attacks))
                .collect::<Vec<_>>()
        );
        for (session, arena, seen) in players.iter_mut() {
            session.pump().unwrap();
            let events = session.events[*seen..].to_vec();
            *seen = session.events.len();
            let weapon = Weapon::of(session.welcome.as_ref());
            for body in arena.step(
                &events,
                session.snapshot.as_ref(),
                weapon,
                std::time::Instant::now(),
            ) {
                session.send(body);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for (session, arena, _) in &players {
        let welcome = session.welcome.as_ref().expect("welcomed into the room");
        assert_eq!(welcome.world, "arena");
        assert!(arena.attacks > 0, "they fought");
        // Duelists only close in, so no swing is out of range, not even the
        // first: the room's first running tick moves each side to its spawn
        // point, and its snapshot shows them there.
        let out_of_range = session
            .responses
            .iter()
            .filter(|r| r.reason == "OutOfRange")
            .count();
        assert_eq!(out_of_range, 0, "{:?}", session.responses);
    }
    let sides: Vec<u32> = players
        .iter()
        .map(|(_, a, _)| a.side.expect("a side"))
        .collect();
    assert_ne!(sides[0], sides[1], "matched on opposite sides");
    let results: Vec<&proto::RoomResult> = players
        .iter()
        .map(|(_, a, _)| a.result.as_ref().unwrap())
        .collect();
    assert_eq!(results[0], results[1], "one result for both");
    assert_eq!(results[0].players.len(), 2);
    assert!(
        results[0].players.iter().any(|p| p.damage > 0),
        "the result counts the fight: {:?}",
        results[0]
    );
}

#[test]
fn a_zone_avatar_leaves_when_its_player_queues_and_the_match_moves_them_in() {
    let dir = tempfile::tempdir().unwrap();
    // Everyone spawns at (100, 100) m in the zone; the arena is for two.
    write_tables_with_zones(
        dir.path(),
        &[
            ("starter", ZONE_SPAWNS, "100:100".into()),
            ("arena", ZONE_CAPACITY, 2i64.into()),
        ],
    );
    let node = start(&["--tables", dir.path().to_str().unwrap()]);
    let wait = Duration::from_secs(30);
    let connect = |name: &str, world: &str| join_world(&node, name, "warrior", world);
    // Two players in the zone; one sees the other.
    let mut traveller = connect("traveller", "");
    let mut watcher = connect("watcher", "");
    let avatar = traveller.avatar().unwrap();
    assert!(
        watcher
            .pump_until(wait, |s| s.entity(avatar).is_some())
            .unwrap()
    );

    // The traveller queues for the arena: their zone avatar leaves.
    traveller.welcome = None;
    traveller.send(Body::Join(proto::JoinWorld {
        class: "warrior".into(),
        world: "arena".into(),
    }));
    traveller.pump().unwrap();
    assert!(
        watcher
            .pump_until(wait, |s| s.entity(avatar).is_none())
            .unwrap(),
        "the zone avatar left when its player went to the arena"
    );

    // A second player queues: a match, a room, a welcome into it.
    let mut rival = connect_later(&node, "rival", wait);
    let deadline = std::time::Instant::now() + wait;
    let in_arena = |s: &Session| s.welcome.as_ref().is_some_and(|w| w.world == "arena");
    while !(in_arena(&traveller) && in_arena(&rival)) {
        assert!(
            std::time::Instant::now() < deadline,
            "not matched: {:?} / {:?}",
            traveller.welcome,
            rival.welcome
        );
        traveller.pump().unwrap();
        rival.pump().unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Logs in and joins the arena queue without waiting for a world.
fn connect_later(node: &Node, name: &str, wait: Duration) -> Session {
    let login = login(&node.http, name).expect("login");
    let mut session = Session::connect(&login, wait).expect("connect");
    session.send(Body::Join(proto::JoinWorld {
        class: "warrior".into(),
        world: "arena".into(),
    }));
    session
}
