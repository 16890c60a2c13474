//! Rooms over the network: opening a room with a password, finding it in
//! the list, joining it by id, leaving it for the zone with one's progress,
//! and a team leader queueing the whole team into one room on one side.

mod support;

use std::time::Duration;

use support::*;
use tessera_bot::{
    session::{Session, login},
    team::{Role, Team},
};
use tessera_net::proto::{self, client_message::Body, room_command::Kind};

const WAIT: Duration = Duration::from_secs(30);

fn join_zone(node: &Node, name: &str) -> Session {
    join_world(node, name, "warrior", "")
}

#[test]
fn a_password_room_is_listed_joined_by_id_and_left_for_the_zone_with_progress() {
    let dir = tempfile::tempdir().unwrap();
    write_tables_with_zones(
        dir.path(),
        &[
            ("starter", ZONE_SPAWNS, "100:100".into()),
            ("arena", ZONE_CAPACITY, 2i64.into()),
        ],
    );
    let node = start(&["--tables", dir.path().to_str().unwrap()]);
    let mut owner = join_zone(&node, "room-owner");
    let mut guest = join_zone(&node, "room-guest");

    // Nothing to leave yet.
    let refused = ask(&mut owner, Kind::Leave(proto::Empty {}));
    assert_eq!(refused.code, proto::ResultCode::Rejected as i32);
    assert_eq!(refused.reason, "not in a room or a queue");

    // The owner walks somewhere in the zone, then opens a room.
    walk_and_settle(&mut owner, (1, 0), 15);
    let avatar = owner.avatar().unwrap();
    let walked_to = owner.entity(avatar).unwrap().x_dm;
    assert!(walked_to > 1_000, "walked east from 100 m: {walked_to}");
    owner.welcome = None;
    owner.snapshot = None;
    let created = ask(
        &mut owner,
        Kind::Create(proto::RoomCreate {
            kind: "arena".into(),
            password: "s3cret".into(),
            class: String::new(),
        }),
    );
    assert!(ok(&created), "{created:?}");
    assert_ne!(created.room, 0);
    welcomed_to(&mut owner, "arena");

    // The guest finds it, is refused without the password, and joins with it.
    let listed = ask(&mut guest, Kind::List("arena".into()));
    let room = listed
        .rooms
        .iter()
        .find(|r| r.id == created.room)
        .unwrap_or_else(|| panic!("{:?}", listed.rooms));
    assert!(room.has_password && !room.started);
    assert_eq!((room.players, room.capacity), (1, 2));
    assert_eq!(room.sync, "state");
    let wrong = ask(
        &mut guest,
        Kind::Join(proto::RoomJoin {
            room: created.room,
            password: "guess".into(),
            class: String::new(),
        }),
    );
    assert_eq!(wrong.reason, "wrong password");
    assert_eq!(guest.welcome.as_ref().unwrap().world, "starter");
    guest.welcome = None;
    guest.snapshot = None;
    let joined = ask(
        &mut guest,
        Kind::Join(proto::RoomJoin {
            room: created.room,
            password: "s3cret".into(),
            class: String::new(),
        }),
    );
    assert!(ok(&joined), "{joined:?}");
    welcomed_to(&mut guest, "arena");
    let full = ask(&mut guest, Kind::List(String::new()));
    let room = full.rooms.iter().find(|r| r.id == created.room).unwrap();
    assert_eq!(room.players, 2);

    // Back to the zone: where the owner left it, not a fresh spawn; the
    // guest sees the owner's room avatar go.
    let owner_in_room = owner.avatar().unwrap();
    assert!(
        guest
            .pump_until(WAIT, |s| s.entity(owner_in_room).is_some())
            .unwrap()
    );
    owner.welcome = None;
    owner.snapshot = None;
    let left = ask(&mut owner, Kind::Leave(proto::Empty {}));
    assert!(ok(&left), "{left:?}");
    assert!(
        guest
            .pump_until(WAIT, |s| s.entity(owner_in_room).is_none())
            .unwrap(),
        "the owner's room avatar left the room"
    );
    welcomed_to(&mut owner, "starter");
    let back = owner.avatar().unwrap();
    let me = owner.entity(back).unwrap();
    assert!(
        (me.x_dm - walked_to).abs() <= 2,
        "back at {}, left at {walked_to}",
        me.x_dm
    );
}

#[test]
fn a_team_leader_queues_the_team_into_one_room_on_one_side() {
    let dir = tempfile::tempdir().unwrap();
    write_tables_with_zones(
        dir.path(),
        &[
            ("starter", ZONE_SPAWNS, "100:100".into()),
            ("arena", ZONE_CAPACITY, 4i64.into()),
        ],
    );
    let node = start(&["--tables", dir.path().to_str().unwrap()]);
    let mut leader = join_zone(&node, "team-lead");
    let mut mate = join_zone(&node, "team-mate");

    // The bot library's team behaviour: the leader forms the team, the mate
    // accepts, and the leader queues the whole team once it is complete.
    let mut leading = Team::new(
        Role::Leader {
            invite: vec![mate.player],
        },
        30,
    )
    .queue_for("arena", 2);
    let mut following = Team::new(Role::Member, 30);

    // Only the leader may queue the team (the mate asks once it is in one).
    step_teams_until(
        (&mut leader, &mut leading),
        (&mut mate, &mut following),
        "the team did not form",
        |lead, follow| lead.queued && team_of(follow, 2),
    );
    let refused = ask(&mut mate, queue_command("arena"));
    assert_eq!(refused.reason, "only the team leader can queue the team");
    assert!(
        leader
            .pump_until(WAIT, |s| s.responses.iter().any(ok))
            .unwrap(),
        "the queue was answered OK: {:?}",
        leader.responses
    );
    // Queued from the zone, they play on there until the match forms.
    assert_eq!(leader.welcome.as_ref().unwrap().world, "starter");

    // Two solo players complete the match.
    let mut solos: Vec<Session> = ["solo-a", "solo-b"]
        .iter()
        .map(|name| {
            let mut solo = join_zone(&node, name);
            assert!(ok(&ask(&mut solo, queue_command("arena"))));
            solo
        })
        .collect();
    for session in std::iter::once(&mut leader)
        .chain(std::iter::once(&mut mate))
        .chain(solos.iter_mut())
    {
        welcomed_to(session, "arena");
    }
    let side_of = |s: &mut Session| {
        let me = s.player;
        assert!(
            s.pump_until(WAIT, |s| s.events.iter().any(
                |e| matches!(&e.kind, Some(proto::event::Kind::RoomSide(side)) if side.player == me)
            ))
            .unwrap()
        );
        s.events
            .iter()
            .find_map(|e| match &e.kind {
                Some(proto::event::Kind::RoomSide(side)) if side.player == me => Some(side.side),
                _ => None,
            })
            .unwrap()
    };
    let team_side = side_of(&mut leader);
    assert_eq!(side_of(&mut mate), team_side, "the team fights together");
    // In one room: each sees the other's avatar there.
    let (leader_player, mate_player) = (leader.player, mate.player);
    for (me, other) in [(&mut leader, mate_player), (&mut mate, leader_player)] {
        let sees = |s: &Session| {
            s.snapshot
                .as_ref()
                .is_some_and(|snapshot| snapshot.entities.iter().any(|e| e.player == other))
        };
        assert!(
            me.pump_until(WAIT, sees).unwrap(),
            "the team is in one room"
        );
    }
    for solo in &mut solos {
        assert_ne!(
            side_of(solo),
            team_side,
            "the solo players are the other side"
        );
    }
}

#[test]
fn a_private_frame_sync_room_is_joined_by_id_only() {
    let node = start(&[]);
    let mut owner = join_zone(&node, "frame-owner");
    let created = ask(
        &mut owner,
        Kind::Create(proto::RoomCreate {
            kind: "duel_lockstep".into(),
            password: String::new(),
            class: String::new(),
        }),
    );
    assert!(ok(&created), "{created:?}");
    assert!(
        owner
            .pump_until(WAIT, |s| s
                .welcome
                .as_ref()
                .is_some_and(|w| w.frame_room.is_some()))
            .unwrap()
    );

    // Automatic placement does not use a player's room ...
    let mut stranger = join_zone(&node, "frame-stranger");
    stranger.send(Body::Join(proto::JoinWorld {
        class: "warrior".into(),
        world: "duel_lockstep".into(),
    }));
    assert!(
        stranger
            .pump_until(WAIT, |s| s
                .welcome
                .as_ref()
                .is_some_and(|w| w.frame_room.is_some()))
            .unwrap()
    );
    let listed = ask(&mut stranger, Kind::List("duel_lockstep".into()));
    let private = listed.rooms.iter().find(|r| r.id == created.room).unwrap();
    assert_eq!((private.players, private.sync.as_str()), (1, "frame"));
    assert!(
        listed
            .rooms
            .iter()
            .any(|r| r.id != created.room && r.players == 1),
        "the stranger got a room of their own: {:?}",
        listed.rooms
    );

    // ... a join by its id does.
    let mut friend = join_zone(&node, "frame-friend");
    let joined = ask(
        &mut friend,
        Kind::Join(proto::RoomJoin {
            room: created.room,
            password: String::new(),
            class: String::new(),
        }),
    );
    assert!(ok(&joined), "{joined:?}");
    let listed = ask(&mut friend, Kind::List("duel_lockstep".into()));
    let private = listed.rooms.iter().find(|r| r.id == created.room).unwrap();
    assert_eq!(private.players, 2);
    let unknown = ask(
        &mut friend,
        Kind::Join(proto::RoomJoin {
            room: 999_999,
            password: String::new(),
            class: String::new(),
        }),
    );
    assert_eq!(unknown.reason, "already in a room: leave it first");

    // Back to the zone, then an id that names no room.
    friend.welcome = None;
    assert!(ok(&ask(&mut friend, Kind::Leave(proto::Empty {}))));
    welcomed_to(&mut friend, "starter");
    let unknown = ask(
        &mut friend,
        Kind::Join(proto::RoomJoin {
            room: 999_999,
            password: String::new(),
            class: String::new(),
        }),
    );
    assert_eq!(unknown.reason, "no room 999999");
    let listed = ask(&mut friend, Kind::List("duel_lockstep".into()));
    let private = listed.rooms.iter().find(|r| r.id == created.room).unwrap();
    assert_eq!(private.players, 1, "the friend left it");
}

#[test]
fn a_player_back_within_the_grace_period_leaves_the_zone_for_a_room_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    write_tables_with_zones(dir.path(), &[("starter", ZONE_SPAWNS, "100:100".into())]);
    let node = start(&["--tables", dir.path().to_str().unwrap()]);
    let mut watcher = join_zone(&node, "grace-watcher");
    let mut player = join_zone(&node, "grace-returner");
    let avatar = player.avatar().unwrap();
    assert!(
        watcher
            .pump_until(WAIT, |s| s.entity(avatar).is_some())
            .unwrap()
    );
    // Dropped, then back on a new connection within the grace period,
    // without a new join: the same avatar is theirs again.
    player.disconnect();
    let login = login(&node.http, "grace-returner").expect("login");
    let mut back = Session::connect(&login, WAIT).expect("connect");
    // Opening a room takes the zone avatar out of the zone.
    let created = ask(
        &mut back,
        Kind::Create(proto::RoomCreate {
            kind: "arena".into(),
            password: String::new(),
            class: String::new(),
        }),
    );
    assert!(ok(&created), "{created:?}");
    welcomed_to(&mut back, "arena");
    assert!(
        watcher
            .pump_until(WAIT, |s| s.entity(avatar).is_none())
            .unwrap(),
        "no avatar left behind in the zone"
    );
}
