//! What players see when a world crashes (here by fault injection, as a
//! bug in its code would crash it): a room's players are told and sent
//! back to their zone; a zone is started again with its players in it.

mod support;

use std::time::Duration;

use support::*;
use tessera_bot::session::Session;
use tessera_net::proto::{self, room_command::Kind};

const WAIT: Duration = Duration::from_secs(30);

/// Whether `session` was told that `room` closed.
fn told_closed(session: &Session, room: u64) -> bool {
    session.events.iter().any(
        |e| matches!(&e.kind, Some(proto::event::Kind::RoomClosed(closed)) if closed.room == room),
    )
}

/// `leader` and `mate` in a team, and the team's id as both see it.
fn form_team(
    leader: &mut Session,
    mate: &mut Session,
) -> (tessera_bot::team::Team, tessera_bot::team::Team, u64) {
    use tessera_bot::team::{Role, Team};
    let mut leading = Team::new(
        Role::Leader {
            invite: vec![mate.player],
        },
        30,
    );
    let mut following = Team::new(Role::Member, 30);
    step_teams_until(
        (leader, &mut leading),
        (mate, &mut following),
        "the team did not form",
        |lead, follow| team_of(lead, 2) && team_of(follow, 2),
    );
    let team = following.view.as_ref().unwrap().team;
    (leading, following, team)
}

/// Waits until `session` is told that `team` ended because of a server
/// error; then the bot's own view of the team is gone too.
fn assert_told_team_ended(
    session: &mut Session,
    team_state: &mut tessera_bot::team::Team,
    team: u64,
) {
    let told = |session: &Session| {
        session.events.iter().any(|e| {
            matches!(&e.kind, Some(proto::event::Kind::TeamLeft(left))
                if left.team == team && !left.kicked && left.reason.contains("server error"))
        })
    };
    assert!(
        session.pump_until(WAIT, told).unwrap(),
        "{:?}",
        session.events
    );
    let events = session.events.clone();
    let _ = team_state.step(&events, session.snapshot.as_ref());
    assert!(team_state.view.is_none(), "the bot's team is gone too");
}

/// When a room's world crashes (here by fault injection, as a bug in its
/// code would), its players are told and sent back to the zone they came
/// from, where they left it; the crashed rooms leave the list, their
/// players are in no room, and everyone else plays on. The key guards
/// the fault injection.
#[test]
fn players_of_a_crashed_room_are_told_and_sent_back_to_their_zone() {
    let dir = tempfile::tempdir().unwrap();
    let node = chaos_node(dir.path());
    let mut bystander = join_world(&node, "crash-bystander", "warrior", "");
    let mut stated = join_world(&node, "crash-state", "warrior", "");
    let mut framed = join_world(&node, "crash-frame", "warrior", "");

    walk_and_settle(&mut stated, (1, 0), 15);
    let walked_to = stated.entity(stated.avatar().unwrap()).unwrap().x_dm;
    stated.welcome = None;
    stated.snapshot = None;
    let state_room = open_room(&mut stated, "arena");
    assert!(ok(&state_room), "{state_room:?}");
    welcomed_to(&mut stated, "arena");
    let frame_room = open_room(&mut framed, "duel_lockstep");
    assert!(ok(&frame_room), "{frame_room:?}");
    assert!(
        framed
            .pump_until(WAIT, |s| s
                .welcome
                .as_ref()
                .is_some_and(|w| w.frame_room.is_some()))
            .unwrap()
    );

    // Without the key, or with another, nothing happens.
    for key in [None, Some("crash-test-chaos-kez")] {
        let (status, reply) = crash(&node, state_room.room, key);
        assert_eq!(status, 401, "{reply}");
        assert_eq!(reply["code"], "unauthorized");
    }
    let listed = ask(&mut bystander, Kind::List(String::new()));
    assert_eq!(listed.rooms.len(), 2, "{:?}", listed.rooms);

    for (session, room) in [(&mut stated, &state_room), (&mut framed, &frame_room)] {
        session.welcome = None;
        session.snapshot = None;
        let (status, reply) = crash(&node, room.room, Some(CHAOS_KEY));
        assert_eq!(status, 202, "{reply}");
    }
    for (session, room) in [(&mut stated, &state_room), (&mut framed, &frame_room)] {
        welcomed_to(session, "starter");
        assert!(told_closed(session, room.room), "{:?}", session.events);
        assert!(session.welcome.as_ref().unwrap().frame_room.is_none());
    }
    let back = stated.entity(stated.avatar().unwrap()).unwrap().x_dm;
    assert!(
        (back - walked_to).abs() <= 2,
        "back at {back}, left the zone at {walked_to}"
    );

    // A world that is not running (one that crashed, or a mistyped id) is
    // said to be missing, not crashed.
    for world in [state_room.room, frame_room.room, u64::MAX] {
        let (status, reply) = crash(&node, world, Some(CHAOS_KEY));
        assert_eq!(status, 404, "{reply}");
        assert_eq!(reply["code"], "no_such_world");
    }

    // The crashed rooms are gone, and their players are in no room.
    let listed = ask(&mut bystander, Kind::List(String::new()));
    assert!(listed.rooms.is_empty(), "{:?}", listed.rooms);
    for session in [&mut stated, &mut framed] {
        let left = ask(session, Kind::Leave(proto::Empty {}));
        assert_eq!(left.reason, "not in a room or a queue");
    }

    // Everyone else played on; the node counts what crashed.
    let before = bystander.snapshot.as_ref().unwrap().tick;
    assert!(
        bystander
            .pump_until(WAIT, |s| s.snapshot.as_ref().unwrap().tick >= before + 20)
            .unwrap()
    );
    assert!(!told_closed(&bystander, state_room.room));
    assert_eq!(ready(&node)["panicked_worlds"], 2);
}

/// Where `session`'s avatar stands, decimetres.
fn standing(session: &Session) -> (i32, i32) {
    let me = session.entity(session.avatar().unwrap()).unwrap();
    (me.x_dm, me.y_dm)
}

fn near(a: (i32, i32), b: (i32, i32)) -> bool {
    (a.0 - b.0).abs() <= 2 && (a.1 - b.1).abs() <= 2
}

/// `session`'s player leaves its room and is welcomed in `starter` where
/// it stood when it left the zone, `left_at`.
fn back_from_room(session: &mut Session, left_at: (i32, i32)) {
    session.welcome = None;
    session.snapshot = None;
    let left = ask(session, Kind::Leave(proto::Empty {}));
    assert!(ok(&left), "{left:?}");
    welcomed_to(session, "starter");
    let back = standing(session);
    assert!(near(back, left_at), "back at {back:?}, left at {left_at:?}");
}

/// When a zone's world crashes, a new world takes the zone's place: its
/// players are welcomed into it where they stood, a player away in a room
/// (or on the way to one as it crashed) stays there and comes back to it
/// where they left, and players who log in after land in it and see the
/// others.
#[test]
fn a_crashed_zone_starts_again_with_its_players_where_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let node = chaos_node(dir.path());
    let zone = ready(&node)["zones"]["starter"].as_u64().unwrap();
    let mut walker = join_world(&node, "zone-walker", "warrior", "");
    let mut away = join_world(&node, "zone-away", "warrior", "");
    walk_and_settle(&mut walker, (1, 0), 15);
    walk_and_settle(&mut away, (0, 1), 10);
    let (walker_at, away_at) = (standing(&walker), standing(&away));
    assert!(
        walker_at.0 > 1_000 && away_at.1 > 1_000,
        "{walker_at:?} {away_at:?}"
    );
    let room = open_room(&mut away, "arena");
    assert!(ok(&room), "{room:?}");
    welcomed_to(&mut away, "arena");

    // One more leaves for a room just as the zone crashes: the zone may
    // never take its leave, but the player is the room's now.
    let mut switcher = join_world(&node, "zone-switcher", "warrior", "");
    walk_and_settle(&mut switcher, (-1, 0), 10);
    let switcher_at = standing(&switcher);
    switcher.welcome = None;
    switcher.snapshot = None;
    let room = open_room(&mut switcher, "arena");
    assert!(ok(&room), "{room:?}");

    walker.welcome = None;
    walker.snapshot = None;
    let (status, reply) = crash(&node, zone, Some(CHAOS_KEY));
    assert_eq!(status, 202, "{reply}");
    welcomed_to(&mut switcher, "arena");
    welcomed_to(&mut walker, "starter");
    assert!(
        near(standing(&walker), walker_at),
        "{:?} vs {walker_at:?}",
        standing(&walker)
    );
    let state = ready(&node);
    let restarted = state["zones"]["starter"].as_u64().unwrap();
    assert_ne!(restarted, zone, "a new world");
    assert_eq!(state["panicked_worlds"], 1);

    // Back from the room: into the new world, where the old one kept them.
    back_from_room(&mut away, away_at);
    // The switcher stayed in its room, and is back where it left the zone.
    switcher.pump().unwrap();
    assert_eq!(switcher.welcome.as_ref().unwrap().world, "arena");
    back_from_room(&mut switcher, switcher_at);

    // Someone new lands in the new world with them.
    let mut late = join_world(&node, "zone-late", "warrior", "");
    let walker_avatar = walker.avatar().unwrap();
    assert!(
        late.pump_until(WAIT, |s| s.entity(walker_avatar).is_some())
            .unwrap(),
        "the walker is in the world new players join"
    );
}

/// A zone that crashes again and again (a bug its players keep hitting) is
/// started again twice, then left down rather than crashed in a loop; the
/// node then says it is not ready (503), naming the zone, so a load
/// balancer sends new logins elsewhere. A team in the zone that is left
/// down is told it ended, as one in a restarted zone is.
#[test]
fn a_zone_that_keeps_crashing_is_left_down_and_the_node_is_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let node = chaos_node(dir.path());
    let mut player = join_world(&node, "crashing-zone", "warrior", "");
    for crashes in 1..=3u64 {
        let zone = ready(&node)["zones"]["starter"].as_u64().unwrap();
        player.welcome = None;
        // The mate stays connected (and in the team) until the crash.
        let team = (crashes == 3).then(|| {
            let mut mate = join_world(&node, "crashing-zone-mate", "warrior", "");
            let (leading, _, team) = form_team(&mut player, &mut mate);
            (mate, leading, team)
        });
        let (status, reply) = crash(&node, zone, Some(CHAOS_KEY));
        assert_eq!(status, 202, "{reply}");
        if crashes < 3 {
            welcomed_to(&mut player, "starter");
            continue;
        }
        if let Some((_mate, mut leading, team)) = team {
            assert_told_team_ended(&mut player, &mut leading, team);
        }
        // The third: nothing takes the zone's place.
        let deadline = std::time::Instant::now() + WAIT;
        let (status, state) = loop {
            let (status, body) = get(&node.http, "/readyz");
            if status != 200 || std::time::Instant::now() > deadline {
                break (
                    status,
                    serde_json::from_str::<serde_json::Value>(&body).unwrap(),
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(status, 503, "{state}");
        assert_eq!(state["ready"], false);
        assert_eq!(state["zones_down"], serde_json::json!(["starter"]));
        assert!(state["zones"].get("starter").is_none(), "{state}");
        assert_eq!(state["panicked_worlds"], crashes);
    }
}

/// Teams lived in the crashed zone's world: after the restart nobody is in
/// one, so a former member may queue alone (before, only the leader could
/// queue, for the whole team), and every member is told the team ended and
/// why, so no client shows a team that is gone.
#[test]
fn a_crashed_zone_takes_its_teams_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let node = chaos_node(dir.path());
    let mut leader = join_world(&node, "crash-team-lead", "warrior", "");
    let mut mate = join_world(&node, "crash-team-mate", "warrior", "");
    let (mut leading, mut following, team) = form_team(&mut leader, &mut mate);
    // The node noted the team in the tick that announced it to them.
    let refused = ask(&mut mate, queue_command("arena"));
    assert_eq!(refused.reason, "only the team leader can queue the team");

    let zone = ready(&node)["zones"]["starter"].as_u64().unwrap();
    mate.welcome = None;
    let (status, reply) = crash(&node, zone, Some(CHAOS_KEY));
    assert_eq!(status, 202, "{reply}");
    welcomed_to(&mut mate, "starter");
    assert_told_team_ended(&mut leader, &mut leading, team);
    assert_told_team_ended(&mut mate, &mut following, team);
    let queued = ask(&mut mate, queue_command("arena"));
    assert!(ok(&queued), "{queued:?}");
}
