//! Playing over the network: login over HTTP, connect over UDP with the
//! netcode token, move and be seen, hit and be told, and the ways in that
//! must stay shut (forged and expired tokens, garbage, floods).

mod support;

use std::{net::UdpSocket, time::Duration};

use support::*;
use tessera_bot::session::{Session, login, refresh};
use tessera_net::{
    proto::{self, client_message::Body, event},
    transport::{NetcodeKeys, ORDERED},
};
use tessera_sim::PlayerId;

const WAIT: Duration = Duration::from_secs(20);

/// A node whose zones spawn everyone at (100, 100) m.
fn meeting_node() -> (tempfile::TempDir, Node) {
    let dir = tempfile::tempdir().unwrap();
    write_tables_spawning_at(dir.path(), "100:100");
    let node = start(&["--tables", dir.path().to_str().unwrap()]);
    (dir, node)
}

fn join(node: &Node, device: &str, class: &str) -> Session {
    join_world(node, device, class, "")
}

#[test]
fn a_move_shows_up_in_another_players_snapshot() {
    let (_dir, node) = meeting_node();
    let token = login(&node.http, "token-check").expect("login");
    assert_eq!(token.udp, node.udp, "the token is for the node's socket");
    let mut a = join(&node, "device-a", "warrior");
    let mut b = join(&node, "device-b", "warrior");
    let a_id = a.avatar().unwrap();
    assert_eq!(a.welcome.as_ref().unwrap().world, "starter");
    assert!(
        b.pump_until(WAIT, |s| s.entity(a_id).is_some()).unwrap(),
        "b sees a"
    );
    let start_x = b.entity(a_id).unwrap().x_dm;
    let mut seq = 0;
    let seen = loop {
        seq += 1;
        a.send(Body::Move(proto::MoveInput {
            seq,
            dir_x: 1,
            dir_y: 0,
        }));
        a.pump().unwrap();
        b.pump().unwrap();
        if b.entity(a_id).is_some_and(|e| e.x_dm >= start_x + 20) {
            break true;
        }
        if seq > 2_000 {
            break false;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(seen, "b saw a move 2 m east");
    assert!(
        a.snapshot.as_ref().unwrap().last_input_seq > 0,
        "a's inputs are acknowledged in its snapshots"
    );
}

#[test]
fn the_welcome_lists_the_avatars_skills_as_the_tables_define_them() {
    let dir = tempfile::tempdir().unwrap();
    write_tables_with(
        dir.path(),
        &[
            ("skills", "slash", SKILL_COOLDOWN_TICKS, 45i64.into()),
            ("skills", "slash", SKILL_RANGE, 3.2.into()),
        ],
    );
    let node = start(&["--tables", dir.path().to_str().unwrap()]);
    let warrior = join(&node, "skills-warrior", "warrior");
    let welcome = warrior.welcome.as_ref().unwrap();
    let ids: Vec<&str> = welcome.skills.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["slash", "war_cry"], "the warrior's, in class order");
    assert_eq!(
        welcome.skills[0],
        proto::SkillInfo {
            id: "slash".into(),
            cooldown_ticks: 45,
            range_mm: 3_200,
            cast_ticks: 0,
        }
    );
    let mage = join(&node, "skills-mage", "mage");
    let ids: Vec<&str> = mage
        .welcome
        .as_ref()
        .unwrap()
        .skills
        .iter()
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(ids, ["firebolt", "frost_nova", "heal"]);
}

#[test]
fn a_heal_arrives_as_an_event_on_both_sides() {
    let (_dir, node) = meeting_node();
    let mut cleric = join(&node, "cleric", "cleric");
    let mut friend = join(&node, "friend", "warrior");
    let friend_id = friend.avatar().unwrap();
    cleric.send(Body::UseSkill(proto::UseSkill {
        skill: "heal".into(),
        target: Some(proto::SkillTarget {
            kind: Some(proto::skill_target::Kind::Entity(friend_id)),
        }),
    }));
    let is_heal = |e: &proto::Event| matches!(&e.kind, Some(event::Kind::Hit(hit)) if hit.skill == "heal" && hit.target == friend_id);
    assert!(
        cleric
            .pump_until(WAIT, |s| s.events.iter().any(is_heal))
            .unwrap(),
        "the caster is told"
    );
    assert!(
        friend
            .pump_until(WAIT, |s| s.events.iter().any(is_heal))
            .unwrap(),
        "the target is told"
    );

    // A refused command comes back as a typed response, not silence.
    cleric.send(Body::UseSkill(proto::UseSkill {
        skill: "slash".into(),
        target: Some(proto::SkillTarget {
            kind: Some(proto::skill_target::Kind::Entity(friend_id)),
        }),
    }));
    assert!(
        cleric
            .pump_until(WAIT, |s| s
                .responses
                .iter()
                .any(|r| r.reason == "SkillNotKnown"))
            .unwrap()
    );
}

#[test]
fn forged_and_expired_tokens_are_refused() {
    let (_dir, node) = meeting_node();
    let udp = node.udp.parse().unwrap();
    let forger = NetcodeKeys::from_hex(1, &"ab".repeat(32)).unwrap();
    let forged = forger.connect_token(99, PlayerId(1), udp, 30).unwrap();
    assert!(
        Session::connect_with_token(&forged, 1, Duration::from_secs(3)).is_err(),
        "a token signed with another key"
    );

    let real = NetcodeKeys::from_hex(1, TEST_KEY).unwrap();
    let expired = real.connect_token(98, PlayerId(2), udp, 0).unwrap();
    std::thread::sleep(Duration::from_millis(1_100));
    assert!(
        Session::connect_with_token(&expired, 2, Duration::from_secs(3)).is_err(),
        "an expired token"
    );

    let fresh = real.connect_token(97, PlayerId(3), udp, 30).unwrap();
    assert!(
        Session::connect_with_token(&fresh, 3, WAIT).is_ok(),
        "the same key, in date, works"
    );
}

#[test]
fn garbage_and_floods_are_refused_while_others_keep_playing() {
    let (_dir, node) = meeting_node();
    let mut player = join(&node, "steady", "warrior");

    // Raw garbage datagrams at the socket.
    let attacker = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..5_000u32 {
        let junk = [i.to_le_bytes().as_slice(), &[0xAB; 60]].concat();
        let _ = attacker.send_to(&junk, &node.udp);
    }
    // A connected client sending undecodable messages is kicked with a reason.
    let mut noisy = join(&node, "noisy", "warrior");
    for _ in 0..40 {
        noisy.send_raw(ORDERED, vec![0xFF; 32]);
    }
    assert!(
        noisy.pump_until(WAIT, |s| s.kicked.is_some()).unwrap(),
        "kicked"
    );
    assert_eq!(
        noisy.kicked.as_ref().unwrap().reason,
        proto::KickReason::Malformed as i32
    );

    // A connected client flooding valid messages is kicked too.
    let mut flood = join(&node, "flood", "warrior");
    for seq in 0..1_000 {
        flood.send(Body::Ping(proto::Ping {
            client_time_us: seq,
        }));
        if seq % 100 == 0 {
            flood.pump().unwrap();
        }
    }
    assert!(
        flood.pump_until(WAIT, |s| s.kicked.is_some()).unwrap(),
        "kicked"
    );
    assert_eq!(
        flood.kicked.as_ref().unwrap().reason,
        proto::KickReason::Flooding as i32
    );

    let before = player.snapshots;
    assert!(
        player
            .pump_until(WAIT, |s| s.snapshots > before + 20)
            .unwrap(),
        "the steady player kept getting snapshots"
    );
    assert_eq!(get(&node.http, "/healthz").0, 200);
    let (_, metrics) = get(&node.http, "/metrics");
    for reason in ["malformed", "rate_limited"] {
        let line = format!("tessera_rejected_messages_total{{reason=\"{reason}\"}} ");
        assert!(metrics.contains(&line), "no {line} in {metrics}");
    }
}

#[test]
fn a_second_login_kicks_the_first_connection() {
    let (_dir, node) = meeting_node();
    let mut first = join(&node, "twice", "warrior");
    let mut second = join(&node, "twice", "warrior");
    assert!(first.pump_until(WAIT, |s| s.kicked.is_some()).unwrap());
    assert_eq!(
        first.kicked.as_ref().unwrap().reason,
        proto::KickReason::LoggedInElsewhere as i32
    );
    assert_eq!(first.player, second.player);
    let before = second.snapshots;
    assert!(
        second
            .pump_until(WAIT, |s| s.snapshots > before + 5)
            .unwrap()
    );
}

#[test]
fn a_dropped_player_reconnects_into_the_same_entity() {
    let (_dir, node) = meeting_node();
    let mut a = join(&node, "roamer", "warrior");
    let mut b = join(&node, "watcher", "warrior");
    let avatar = a.avatar().unwrap();
    a.disconnect();
    // The avatar waits in the world for its player.
    std::thread::sleep(Duration::from_millis(300));
    let tick = b.snapshot.as_ref().unwrap().tick;
    assert!(
        b.pump_until(WAIT, |s| s.snapshot.as_ref().unwrap().tick > tick + 5)
            .unwrap()
    );
    assert!(
        b.entity(avatar).is_some(),
        "still there during the grace period"
    );
    let back = join(&node, "roamer", "warrior");
    assert_eq!(back.avatar(), Some(avatar), "the same entity");
}

/// The bot library's way back after a drop: a fresh connect token for
/// the login's session (`POST /v1/token`), without credentials, into the
/// same avatar while it waits out the grace period. A session the node
/// does not know is refused.
#[test]
fn a_dropped_player_comes_back_with_a_fresh_token_for_their_session() {
    let (_dir, node) = meeting_node();
    let first = login(&node.http, "comeback").expect("login");
    let enter = |login| enter_world(login, "warrior", "");
    let mut a = enter(&first);
    let avatar = a.avatar().unwrap();
    a.disconnect();
    let again = refresh(&node.http, &first).expect("a fresh token");
    assert_eq!(again.player_id, first.player_id);
    assert_eq!(again.session, first.session, "the same session goes on");
    assert_ne!(again.connect_token, first.connect_token);
    let back = enter(&again);
    assert_eq!(back.avatar(), Some(avatar), "the same entity");

    let mut forged = first.clone();
    forged.session = "not-a-session".into();
    let refused = refresh(&node.http, &forged);
    assert!(
        matches!(
            refused,
            Err(tessera_bot::session::SessionError::UnknownSession)
        ),
        "{refused:?}"
    );
}

#[test]
fn after_the_grace_period_the_avatar_leaves() {
    let dir = tempfile::tempdir().unwrap();
    write_tables_spawning_at(dir.path(), "100:100");
    let config = dir.path().join("node.toml");
    let text = tessera::config::DEFAULT_CONFIG
        .replace("reconnect_grace_ms = 10000", "reconnect_grace_ms = 300")
        .replace(
            "tables_dir = \"assets/tables\"",
            &format!("tables_dir = {:?}", dir.path().display().to_string()),
        );
    std::fs::write(&config, text).unwrap();
    let node = start(&["--config", config.to_str().unwrap()]);
    let mut a = join(&node, "leaver", "warrior");
    let mut b = join(&node, "stayer", "warrior");
    let avatar = a.avatar().unwrap();
    assert!(b.pump_until(WAIT, |s| s.entity(avatar).is_some()).unwrap());
    a.disconnect();
    assert!(
        b.pump_until(WAIT, |s| s.entity(avatar).is_none()).unwrap(),
        "the avatar left the world"
    );
}

#[test]
fn progress_is_saved_when_the_node_stops() {
    let (_dir, mut node) = meeting_node();
    let mut a = join(&node, "saver", "mage");
    walk_and_settle(&mut a, (0, 1), 40);
    let y_dm = a.entity(a.avatar().unwrap()).unwrap().y_dm;
    signal(&node, "TERM");
    assert_eq!(wait_exit(&mut node), 0);

    let store =
        tessera_persistence::embedded::EmbeddedStore::open(&node.data.path().join("tessera.redb"))
            .unwrap();
    let record = store.load(a.player).unwrap().expect("the player was saved");
    assert_eq!(record.parts["class"], serde_json::json!("mage"));
    let saved_y = record.parts["position"]["y"].as_i64().unwrap();
    assert!(
        saved_y / 100 >= i64::from(y_dm) - 1,
        "saved {saved_y} mm, last seen {y_dm} dm"
    );
}

#[test]
fn a_restarted_node_gives_a_returning_player_their_progress() {
    let (dir, mut node) = meeting_node();
    let store = node.data.path().join("tessera.redb");
    let mut a = join(&node, "returning", "cleric");
    walk_and_settle(&mut a, (1, 0), 60);
    let before = a.entity(a.avatar().unwrap()).unwrap().x_dm;
    assert!(before > 1_005, "moved east of the spawn point");
    signal(&node, "TERM");
    assert_eq!(wait_exit(&mut node), 0);

    let node = start(&[
        "--tables",
        dir.path().to_str().unwrap(),
        "--store-path",
        store.to_str().unwrap(),
    ]);
    let again = join(&node, "returning", "warrior");
    let me = again.entity(again.avatar().unwrap()).unwrap();
    assert!(
        (me.x_dm - before).abs() <= 2,
        "back where they were: {} vs {before}",
        me.x_dm
    );
    assert_eq!(again.player, a.player);
    assert_eq!(
        me.max_hp, 950,
        "the saved class (cleric), not the one asked for"
    );
}

#[test]
fn a_refused_join_keeps_the_saved_progress_for_the_next_try() {
    // Regression: the loaded progress was taken on the first Join even when
    // the world refused it, and the retry spawned a fresh avatar that
    // overwrote the player's record.
    let dir = tempfile::tempdir().unwrap();
    write_tables_with_capacity(dir.path(), "100:100", 1);
    let mut node = start(&["--tables", dir.path().to_str().unwrap()]);
    let store = node.data.path().join("tessera.redb");
    let mut saver = join(&node, "full-house", "cleric");
    walk_and_settle(&mut saver, (1, 0), 40);
    let saved_x = saver.entity(saver.avatar().unwrap()).unwrap().x_dm;
    signal(&node, "TERM");
    assert_eq!(wait_exit(&mut node), 0);

    let node = start(&[
        "--tables",
        dir.path().to_str().unwrap(),
        "--store-path",
        store.to_str().unwrap(),
    ]);
    let mut occupant = join(&node, "occupant", "warrior");
    let login = login(&node.http, "full-house").unwrap();
    let mut returning = Session::connect(&login, WAIT).unwrap();
    returning.send(Body::Join(proto::JoinWorld {
        class: "warrior".into(),
        world: String::new(),
    }));
    assert!(
        returning
            .pump_until(WAIT, |s| s
                .responses
                .iter()
                .any(|r| r.reason == "WorldFull"))
            .unwrap()
    );

    occupant.send(Body::Leave(proto::Empty {}));
    occupant.pump().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    returning.send(Body::Join(proto::JoinWorld {
        class: "warrior".into(),
        world: String::new(),
    }));
    assert!(
        returning
            .pump_until(WAIT, |s| s.welcome.is_some() && s.snapshot.is_some())
            .unwrap()
    );
    let me = returning.entity(returning.avatar().unwrap()).unwrap();
    assert!(
        (me.x_dm - saved_x).abs() <= 2,
        "restored at {}, saved {saved_x}",
        me.x_dm
    );
    assert_eq!(me.max_hp, 950, "still a cleric");
}

#[test]
fn progress_loaded_at_login_waits_for_a_connected_player_but_not_for_one_who_never_came() {
    let dir = tempfile::tempdir().unwrap();
    write_tables_spawning_at(dir.path(), "100:100");
    let node = start(&[
        "--tables",
        dir.path().to_str().unwrap(),
        // Token timestamps are whole seconds, so a 1 s token can expire
        // on the node a moment after it is issued: 2 s leaves at least one.
        "--connect-token-secs",
        "2",
    ]);
    let mut first = join(&node, "lingering", "cleric");
    walk_and_settle(&mut first, (1, 0), 40);
    let saved_x = first.entity(first.avatar().unwrap()).unwrap().x_dm;
    first.send(Body::Leave(proto::Empty {}));
    first.pump().unwrap();
    first.disconnect();
    wait_ready(&node, "the first connection to go", |r| r["clients"] == 0);

    // A login whose client never connects: its progress is loaded, then
    // forgotten once the token (2 s) cannot bring anyone any more.
    login(&node.http, "lingering").unwrap();
    assert_eq!(ready(&node)["joins_waiting"], 1);
    wait_ready(&node, "the unused progress to go", |r| {
        r["joins_waiting"] == 0
    });

    // A client that connects and takes its time to join keeps it, however
    // long: without it their join would start them afresh.
    let again = login(&node.http, "lingering").unwrap();
    let mut slow = Session::connect(&again, WAIT).unwrap();
    std::thread::sleep(Duration::from_secs(6));
    slow.pump().unwrap();
    assert_eq!(ready(&node)["joins_waiting"], 1);
    slow.send(Body::Join(proto::JoinWorld {
        class: "warrior".into(),
        world: String::new(),
    }));
    assert!(
        slow.pump_until(WAIT, |s| s.welcome.is_some() && s.snapshot.is_some())
            .unwrap()
    );
    let me = slow.entity(slow.avatar().unwrap()).unwrap();
    assert!(
        (me.x_dm - saved_x).abs() <= 2,
        "restored at {}, saved {saved_x}",
        me.x_dm
    );
    assert_eq!(me.max_hp, 950, "still a cleric");
    wait_ready(&node, "the used progress to go", |r| {
        r["joins_waiting"] == 0
    });
}

#[test]
fn rejoining_after_leaving_needs_a_new_login() {
    let (_dir, node) = meeting_node();
    let mut player = join(&node, "in-and-out", "warrior");
    player.send(Body::Leave(proto::Empty {}));
    player.send(Body::Join(proto::JoinWorld {
        class: "warrior".into(),
        world: String::new(),
    }));
    let request = player.last_request();
    assert!(
        player
            .pump_until(WAIT, |s| s
                .responses
                .iter()
                .any(|r| r.reason == "log in again to rejoin"))
            .unwrap()
    );
    let refusal = player
        .responses
        .iter()
        .find(|r| r.reason == "log in again to rejoin")
        .unwrap();
    assert_eq!(refusal.request, request, "the refusal names the request");
    let again = join(&node, "in-and-out", "warrior");
    assert!(again.welcome.is_some());
}

#[test]
fn a_command_the_world_refuses_names_its_request() {
    let (_dir, node) = meeting_node();
    let mut player = join(&node, "refused-skill", "warrior");
    player.send(Body::UseSkill(proto::UseSkill {
        skill: "no_such_skill".into(),
        target: Some(proto::SkillTarget {
            kind: Some(proto::skill_target::Kind::Caster(proto::Empty {})),
        }),
    }));
    let request = player.last_request();
    assert!(
        player
            .pump_until(WAIT, |s| s.response_to(request).is_some())
            .unwrap(),
        "responses: {:?}",
        player.responses
    );
    let refusal = player.response_to(request).unwrap();
    assert_eq!(refusal.code, proto::ResultCode::Rejected as i32);
    assert!(!refusal.reason.is_empty());
}

#[test]
fn a_node_bound_to_every_interface_hands_out_its_public_address() {
    let node = start(&["--udp", "0.0.0.0:0", "--udp-public-ip", "127.0.0.1"]);
    let login = login(&node.http, "from-afar").expect("login");
    assert!(
        login.udp.starts_with("127.0.0.1:"),
        "token names {}",
        login.udp
    );
    assert_eq!(login.udp, node.udp, "the logged address is the public one");
    let mut session = Session::connect(&login, WAIT).expect("connect through the public address");
    session.send(Body::Join(proto::JoinWorld {
        class: "warrior".into(),
        world: String::new(),
    }));
    assert!(session.pump_until(WAIT, |s| s.welcome.is_some()).unwrap());
}

#[test]
fn a_team_forms_over_the_network_and_its_member_follows_the_leader() {
    use tessera_bot::team::{Role, Team};
    let (_dir, node) = meeting_node();
    let mut leader = join(&node, "team-leader", "warrior");
    let mut member = join(&node, "team-member", "warrior");
    let mut leading = Team::new(
        Role::Leader {
            invite: vec![member.player],
        },
        30,
    );
    let mut following = Team::new(Role::Member, 30);
    let (mut seen_leader, mut seen_member) = (0, 0);
    let step = |session: &mut Session, team: &mut Team, seen: &mut usize| {
        session.pump().unwrap();
        let events = session.events[*seen..].to_vec();
        *seen = session.events.len();
        for body in team.step(&events, session.snapshot.as_ref()) {
            session.send(body);
        }
    };
    let deadline = std::time::Instant::now() + WAIT;
    while following.view.as_ref().is_none_or(|v| v.members.len() < 2)
        || leading.view.as_ref().is_none_or(|v| v.members.len() < 2)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the team did not form"
        );
        step(&mut leader, &mut leading, &mut seen_leader);
        step(&mut member, &mut following, &mut seen_member);
        std::thread::sleep(Duration::from_millis(10));
    }
    let view = following.view.clone().unwrap();
    assert_eq!(view.leader, leader.player);
    assert_eq!(view.members, vec![leader.player, member.player]);

    // Team chat reaches the other member on the team channel.
    member.send(Body::Chat(proto::ChatSend {
        channel: proto::ChatChannel::Team as i32,
        text: "on my way".into(),
    }));
    member.pump().unwrap();
    assert!(
        leader
            .pump_until(WAIT, |s| s.events.iter().any(|e| matches!(
                &e.kind,
                Some(event::Kind::Chat(c)) if c.text == "on my way"
                    && c.channel == proto::ChatChannel::Team as i32
            )))
            .unwrap(),
        "team chat arrived"
    );

    // The leader walks east for a while; the member keeps up.
    let distance = |leader: &Session, member: &Session| {
        let me = member.entity(member.avatar()?)?;
        let them = leader.entity(leader.avatar()?)?;
        Some((me.x_dm - them.x_dm).abs().max((me.y_dm - them.y_dm).abs()))
    };
    let mut seq = 0;
    let until = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < until {
        seq += 1;
        leader.send(Body::Move(proto::MoveInput {
            seq,
            dir_x: 1,
            dir_y: 0,
        }));
        step(&mut leader, &mut leading, &mut seen_leader);
        step(&mut member, &mut following, &mut seen_member);
        std::thread::sleep(Duration::from_millis(20));
    }
    leader.send(Body::Move(proto::MoveInput {
        seq: seq + 1,
        dir_x: 0,
        dir_y: 0,
    }));
    let start_x = 1_000; // both spawned at (100, 100) m
    let walked = leader.entity(leader.avatar().unwrap()).unwrap().x_dm - start_x;
    assert!(walked > 50, "the leader walked {walked} dm");
    let until = std::time::Instant::now() + Duration::from_secs(3);
    while distance(&leader, &member).is_none_or(|d| d > 60) {
        assert!(
            std::time::Instant::now() < until,
            "the member did not catch up: {:?} dm apart",
            distance(&leader, &member)
        );
        step(&mut leader, &mut leading, &mut seen_leader);
        step(&mut member, &mut following, &mut seen_member);
        std::thread::sleep(Duration::from_millis(20));
    }
}
