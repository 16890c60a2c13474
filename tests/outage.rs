//! The MongoDB server goes away for 10 s under load and comes back: the
//! node keeps ticking and serving, reports the outage, keeps the changes,
//! and writes every acknowledged bit of progress once the store returns.

mod support;

use std::{
    net::TcpStream,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use mongodb::bson::{Document, doc};
use support::*;
use tessera_bot::session::{Session, login};
use tessera_net::proto::{self, client_message::Body};

const PLAYERS: usize = 40;

/// A MongoDB wire server of our own, on disk, so it can stop and come back.
struct Mongo {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Mongo {
    fn start(port: u16, dir: tempfile::TempDir) -> Self {
        let bin = std::env::var("TESSERA_TEST_MONGODB_BIN").unwrap_or_else(|_| {
            panic!("TESSERA_TEST_MONGODB_BIN is not set: run the tests with scripts/test.sh")
        });
        let config = dir.path().join("secantusd.toml");
        std::fs::write(&config, "").unwrap();
        let child = Command::new(bin)
            .args([
                "--config",
                config.to_str().unwrap(),
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .args([
                "--storage-path",
                dir.path().join("db").to_str().unwrap(),
                "--log-level",
                "WARNING",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start secantusd-py");
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the MongoDB server did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            child: Some(child),
            port,
            dir,
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    fn restart(mut self) -> Self {
        self.stop();
        let (port, dir) = (
            self.port,
            std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap()),
        );
        Mongo::start(port, dir)
    }
}

impl Drop for Mongo {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn a_ten_second_store_outage_loses_nothing_and_never_stops_the_node() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut store = Mongo::start(port, tempfile::tempdir().unwrap());
    let uri = format!("mongodb://127.0.0.1:{port}/?directConnection=true");
    let dir = tempfile::tempdir().unwrap();
    let config = mongo_config(dir.path(), &uri, "tessera", 500);
    let mut node = start(&["--config", config.to_str().unwrap()]);

    let mut sessions: Vec<Session> = (0..PLAYERS)
        .map(|i| {
            let login = login(&node.http, &format!("outage-{i}")).expect("login");
            let mut session = Session::connect(&login, Duration::from_secs(30)).expect("connect");
            session.send(Body::Join(proto::JoinWorld {
                class: "warrior".into(),
                world: String::new(),
            }));
            session
        })
        .collect();
    let mut seq = 0;
    walk(&mut sessions, &mut seq, (1, 0), Duration::from_secs(2));
    assert!(
        wait_ready(&node, "the first flush", |r| r["store"]["written"].as_u64()
            >= Some(PLAYERS as u64))["store"]["outage"]
            == false
    );

    store.stop();
    let ticks_before = ready(&node)["ticks"].as_u64().unwrap();
    let snapshots_before: u64 = sessions.iter().map(|s| s.snapshots).sum();
    walk(&mut sessions, &mut seq, (1, 0), Duration::from_secs(10));
    let during = ready(&node);
    assert_eq!(during["store"]["outage"], true, "{during}");
    assert!(
        during["store"]["pending_players"].as_u64().unwrap() > 0,
        "{during}"
    );
    assert!(
        during["ticks"].as_u64().unwrap() > ticks_before + 150,
        "the node kept ticking: {during}"
    );
    assert!(
        sessions.iter().map(|s| s.snapshots).sum::<u64>() > snapshots_before + 1_000,
        "players kept playing"
    );

    let store = store.restart();
    walk(&mut sessions, &mut seq, (1, 0), Duration::from_secs(1));
    // Stand still, and let the node write everything.
    for _ in 0..50 {
        for session in sessions.iter_mut() {
            session.pump().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_ready(&node, "the backlog to drain", |r| {
        r["store"]["outage"] == false && r["store"]["pending_players"] == 0
    });
    let seen: Vec<(u64, i64)> = sessions
        .iter()
        .map(|s| {
            (
                s.player,
                i64::from(s.entity(s.avatar().unwrap()).unwrap().x_dm) * 100,
            )
        })
        .collect();
    signal(&node, "TERM");
    assert_eq!(wait_exit(&mut node), 0);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let documents: Vec<Document> = runtime.block_on(async {
        use futures_util::TryStreamExt;
        let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
        client
            .database("tessera")
            .collection::<Document>("players")
            .find(doc! {})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap()
    });
    assert_eq!(documents.len(), PLAYERS);
    for (player, x) in seen {
        let document = documents
            .iter()
            .find(|d| d.get_i64("_id").ok() == Some(player as i64))
            .expect("stored");
        let position = document
            .get_document("parts")
            .unwrap()
            .get_document("position")
            .unwrap();
        let stored = position
            .get_i64("x")
            .or_else(|_| position.get_i32("x").map(i64::from))
            .unwrap();
        assert!(
            stored >= x - 100,
            "player {player}: stored {stored} mm, acknowledged {x} mm"
        );
    }
    drop(store);
}
