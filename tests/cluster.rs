//! Two nodes sharing a real Redis and a real MongoDB wire server: the node
//! registry, presence and routing, sessions valid on either node, and a
//! player who logs in on the second node while playing on the first being
//! handed over with their progress (the first node kicks them, writes them
//! and lets go; the second waits for that before loading).

mod support;

use std::time::Duration;

use support::*;
use tessera_bot::session::{Session, login};
use tessera_net::proto::{self, client_message::Body};
use tessera_persistence::redis_state::RedisState;

const WAIT: Duration = Duration::from_secs(20);

fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{what}_{}_{nanos}", std::process::id())
}

/// Nodes of one cluster: MongoDB for players (a flush interval of a minute,
/// so nothing below relies on the periodic flush) and Redis for the rest.
struct Cluster {
    _dir: tempfile::TempDir,
    config: std::path::PathBuf,
    redis_url: String,
    prefix: String,
    /// The test's own view of Redis (its connection lives in this runtime).
    runtime: tokio::runtime::Runtime,
    redis: RedisState,
}

impl Cluster {
    fn new() -> Self {
        let uri = test_mongodb_uri();
        let redis_url =
            tessera_persistence::services::redis_url().unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().unwrap();
        let config = mongo_config(dir.path(), &uri, &unique("cluster"), 60_000);
        let prefix = format!("{}:", unique("t"));
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let redis = runtime
            .block_on(RedisState::connect(&redis_url, &prefix))
            .unwrap();
        Self {
            _dir: dir,
            config,
            redis_url,
            prefix,
            runtime,
            redis,
        }
    }

    fn node(&self, id: &str) -> Node {
        start(&[
            "--config",
            self.config.to_str().unwrap(),
            "--redis-url",
            &self.redis_url,
            "--redis-prefix",
            &self.prefix,
            "--node-id",
            id,
        ])
    }

    fn block_on<T>(&self, future: impl std::future::Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }
}

fn join(login: &tessera_bot::session::Login) -> Session {
    enter_world(login, "warrior", "")
}

fn own_x(session: &Session) -> i32 {
    session.entity(session.avatar().unwrap()).unwrap().x_dm
}

#[test]
fn a_player_moving_to_another_node_is_handed_over_with_their_progress() {
    let cluster = Cluster::new();
    let mut a = cluster.node("node-a");
    let b = cluster.node("node-b");

    // Both nodes are in the registry.
    let nodes = wait_for(|| {
        let nodes = cluster.block_on(cluster.redis.nodes()).unwrap();
        (nodes.len() == 2).then_some(nodes)
    });
    let mut ids: Vec<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["node-a", "node-b"]);
    assert!(
        nodes
            .iter()
            .any(|n| n.http == a.http && n.udp == [a.udp.clone()]),
        "node-a logged http {} and udp {}; the registry has {nodes:?}",
        a.http,
        a.udp
    );

    // Play on A: presence and route say A.
    let first = login(&a.http, "traveller").unwrap();
    let player = first.player_id;
    let mut on_a = join(&first);
    walk_and_settle(&mut on_a, (1, 0), 40);
    on_a.send(Body::Move(proto::MoveInput {
        seq: 1_000,
        dir_x: 0,
        dir_y: 0,
    }));
    // The last moves may still be arriving: wait until the avatar stands still.
    let mut walked_to = own_x(&on_a);
    loop {
        on_a.pump_until(Duration::from_millis(300), |_| false)
            .unwrap();
        let now = own_x(&on_a);
        if now == walked_to {
            break;
        }
        walked_to = now;
    }
    let (online, route) = wait_for(|| {
        let redis = &cluster.redis;
        let found = cluster.block_on(async {
            (
                redis.is_online(player).await.unwrap(),
                redis.route(player).await.unwrap(),
            )
        });
        (found.0.is_some() && found.1.is_some()).then_some(found)
    });
    assert_eq!(online.as_deref(), Some("node-a"));
    assert_eq!(route.unwrap().node, "node-a");

    // The same player logs in on B: A kicks them, B restores where they were.
    // (The old connection keeps reading meanwhile, as a real client would.)
    let started = std::time::Instant::now();
    let b_http = b.http.clone();
    let logging_in = std::thread::spawn(move || login(&b_http, "traveller"));
    assert!(
        on_a.pump_until(WAIT, |s| s.kicked.is_some()).unwrap(),
        "node A kicked the old connection"
    );
    let second = logging_in.join().unwrap().unwrap();
    eprintln!("hand-over login took {:?}", started.elapsed());
    assert_eq!(second.player_id, player);
    assert_eq!(
        on_a.kicked.as_ref().unwrap().reason,
        proto::KickReason::LoggedInElsewhere as i32
    );
    let on_b = join(&second);
    assert_eq!(
        own_x(&on_b),
        walked_to,
        "node B loaded the position node A last had (written on leave, not by the minute-long interval)"
    );
    let route = wait_for(|| {
        let route = cluster.block_on(cluster.redis.route(player)).unwrap();
        route.filter(|r| r.node == "node-b")
    });
    assert_eq!(route.node, "node-b");

    // A session from A's login gets a fresh token from B.
    let (status, body) = post_json(
        &b.http,
        "/v1/token",
        &format!(
            r#"{{"session":"{}","protocol":{}}}"#,
            first.session,
            tessera_net::PROTOCOL_VERSION
        ),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["player_id"].as_u64(), Some(player));
    let forged = format!(
        r#"{{"session":"forged","protocol":{}}}"#,
        tessera_net::PROTOCOL_VERSION
    );
    let (status, body) = post_json(&b.http, "/v1/token", &forged);
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_session"))
    );

    // A stopping leaves the registry.
    signal(&a, "TERM");
    assert_eq!(wait_exit(&mut a), 0);
    let nodes = cluster.block_on(cluster.redis.nodes()).unwrap();
    assert_eq!(
        nodes.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(),
        ["node-b"]
    );
}

/// A player who is still walking when they log in on another node arrives
/// there no farther back than the last position the old node showed them:
/// the old node captures the avatar as it goes, not at its next periodic
/// capture (up to 250 ms older), and the new node waits for that write.
#[test]
fn a_player_handed_over_mid_walk_arrives_where_they_were_last_seen() {
    let cluster = Cluster::new();
    let a = cluster.node("node-a");
    let b = cluster.node("node-b");
    wait_for(|| {
        let nodes = cluster.block_on(cluster.redis.nodes()).unwrap();
        (nodes.len() == 2).then_some(())
    });
    let first = login(&a.http, "walker").unwrap();
    let player = first.player_id;
    let mut on_a = join(&first);
    wait_for(|| {
        let route = cluster.block_on(cluster.redis.route(player)).unwrap();
        route.filter(|r| r.node == "node-a")
    });
    let start_x = own_x(&on_a);

    // Walking east the whole time node B takes the player over.
    let b_http = b.http.clone();
    let logging_in = std::thread::spawn(move || login(&b_http, "walker"));
    let deadline = std::time::Instant::now() + WAIT;
    let mut seq = 0;
    while on_a.kicked.is_none() && std::time::Instant::now() < deadline {
        seq += 1;
        on_a.send(Body::Move(proto::MoveInput {
            seq,
            dir_x: 1,
            dir_y: 0,
        }));
        on_a.pump_until(Duration::from_millis(40), |s| s.kicked.is_some())
            .unwrap();
    }
    assert!(on_a.kicked.is_some(), "node A kicked the walking player");
    // Snapshots sent before the kick may still be on their way.
    on_a.pump_until(Duration::from_millis(200), |_| false)
        .unwrap();
    let last_seen = own_x(&on_a);
    assert!(
        last_seen > start_x,
        "the player walked: {start_x} -> {last_seen}"
    );

    let second = logging_in.join().unwrap().unwrap();
    assert_eq!(second.player_id, player);
    let on_b = join(&second);
    assert!(
        own_x(&on_b) >= last_seen,
        "node B loaded x {} dm, behind the {last_seen} dm node A last showed (walked from {start_x})",
        own_x(&on_b)
    );
}

fn wait_for<T>(mut found: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = found() {
            return value;
        }
        assert!(std::time::Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A Redis of this test's own, so it can be stopped without disturbing others.
struct OwnRedis {
    child: std::process::Child,
}

impl OwnRedis {
    fn start(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server on PATH (scripts/test.sh installs it)");
        let redis = Self { child };
        wait_for(|| std::net::TcpStream::connect(("127.0.0.1", port)).ok());
        redis
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn while_redis_is_down_the_node_keeps_ticking_refuses_logins_and_says_so() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redis = OwnRedis::start(port);
    let url = format!("redis://127.0.0.1:{port}");
    let node = start(&["--redis-url", &url, "--node-id", "lonely"]);
    login(&node.http, "before").expect("login with redis up");
    drop(redis);

    let down = wait_for(|| {
        let ready = ready(&node);
        (ready["cluster"]["redis_reachable"] == false).then_some(ready)
    });
    let (_, metrics) = get(&node.http, "/metrics");
    assert!(metrics.contains("tessera_redis_outage 1"), "{metrics}");
    let during = format!(
        r#"{{"device_id":"during","protocol":{}}}"#,
        tessera_net::PROTOCOL_VERSION
    );
    let (status, body) = post_json(&node.http, "/v1/login", &during);
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("store_unavailable")),
        "{body}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        ready(&node)["ticks"].as_u64() > down["ticks"].as_u64(),
        "worlds keep ticking"
    );

    let _redis = OwnRedis::start(port);
    wait_for(|| (ready(&node)["cluster"]["redis_reachable"] == true).then_some(()));
    login(&node.http, "after").expect("login once redis is back");
}
