//! No data lost: 200 players walking east (their x only grows) on a node
//! storing to MongoDB. The node is killed with SIGKILL; what the store holds
//! is at least what each player had one flush interval before the kill, and
//! after a restart (progress restored at login) no record goes backwards.

mod support;

use std::{collections::BTreeMap, time::Duration};

use mongodb::bson::{Document, doc};
use support::*;
use tessera_bot::session::{Session, login};
use tessera_net::proto::{self, client_message::Body};

const PLAYERS: usize = 200;
const FLUSH_MS: u64 = 500;

fn config(dir: &std::path::Path, database: &str) -> std::path::PathBuf {
    mongo_config(dir, &test_mongodb_uri(), database, FLUSH_MS)
}

fn players(node: &Node, offset: usize) -> Vec<Session> {
    (0..PLAYERS)
        .map(|i| {
            let login = login(&node.http, &format!("walker-{}", i + offset)).expect("login");
            let mut session = Session::connect(&login, Duration::from_secs(30)).expect("connect");
            session.send(Body::Join(proto::JoinWorld {
                class: "warrior".into(),
                world: String::new(),
            }));
            session
        })
        .collect()
}

/// Each player's x as their own latest snapshot shows it, mm.
fn seen_x(sessions: &[Session]) -> BTreeMap<u64, i64> {
    sessions
        .iter()
        .filter_map(|s| Some((s.player, i64::from(s.entity(s.avatar()?)?.x_dm) * 100)))
        .collect()
}

/// (version, x) of every stored player.
async fn stored(collection: &mongodb::Collection<Document>) -> BTreeMap<u64, (i64, i64)> {
    use futures_util::TryStreamExt;
    let documents: Vec<Document> = collection
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    documents
        .into_iter()
        .filter_map(|d| {
            let id = d.get_i64("_id").ok()? as u64;
            let version = d.get_i64("version").ok()?;
            let x = d
                .get_document("parts")
                .ok()?
                .get_document("position")
                .ok()?;
            let x = x
                .get_i64("x")
                .or_else(|_| x.get_i32("x").map(i64::from))
                .ok()?;
            Some((id, (version, x)))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_loses_at_most_one_flush_interval_and_nothing_goes_backwards() {
    let uri = tessera_persistence::services::mongodb_uri().unwrap_or_else(|e| panic!("{e}"));
    let database = format!("tessera_crash_{}", std::process::id());
    let collection = mongodb::Client::with_uri_str(&uri)
        .await
        .unwrap()
        .database(&database)
        .collection::<Document>("players");
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &database);

    let mut node = start(&["--config", config.to_str().unwrap()]);
    let mut sessions = tokio::task::block_in_place(|| players(&node, 0));
    let mut seq = 0;
    tokio::task::block_in_place(|| walk(&mut sessions, &mut seq, (1, 0), Duration::from_secs(3)));
    let before_kill = tokio::task::block_in_place(|| {
        walk(&mut sessions, &mut seq, (1, 0), Duration::from_millis(200));
        seen_x(&sessions)
    });
    let missing: Vec<String> = sessions
        .iter()
        .filter(|s| !before_kill.contains_key(&s.player))
        .map(|s| {
            format!(
                "connected {} welcome {} snapshot {} kicked {:?} gone {:?} responses {:?}",
                s.is_connected(),
                s.welcome.is_some(),
                s.snapshot.is_some(),
                s.kicked,
                s.disconnected,
                s.responses
            )
        })
        .take(3)
        .collect();
    assert_eq!(
        before_kill.len(),
        PLAYERS,
        "every player is in the world; e.g. {missing:#?}"
    );
    // Two flush intervals after that observation, the node dies.
    tokio::task::block_in_place(|| {
        walk(
            &mut sessions,
            &mut seq,
            (1, 0),
            Duration::from_millis(2 * FLUSH_MS),
        )
    });
    signal(&node, "KILL");
    let _ = node.child.wait();

    let after_kill = stored(&collection).await;
    assert_eq!(after_kill.len(), PLAYERS, "every player has a record");
    for (player, x) in &before_kill {
        let (_, saved) = after_kill[player];
        assert!(
            saved >= x - 100,
            "player {player}: stored x {saved} mm, but was at {x} mm a flush interval before the kill"
        );
    }

    // Restart on the same store: logins restore progress; walking on, no
    // record may go backwards.
    drop(sessions);
    let mut node = start(&["--config", config.to_str().unwrap()]);
    let mut sessions = tokio::task::block_in_place(|| players(&node, 0));
    tokio::task::block_in_place(|| walk(&mut sessions, &mut seq, (1, 0), Duration::from_secs(2)));
    let restored = seen_x(&sessions);
    for (player, x) in &restored {
        assert!(
            *x >= after_kill[player].1 - 100,
            "player {player} restarted behind their saved position"
        );
    }
    signal(&node, "TERM");
    assert_eq!(wait_exit(&mut node), 0);
    let after_restart = stored(&collection).await;
    for (player, (version, x)) in &after_kill {
        let (new_version, new_x) = after_restart[player];
        assert!(
            new_version > *version,
            "player {player}: the restart wrote a newer version"
        );
        assert!(
            new_x >= *x,
            "player {player}: x went backwards from {x} to {new_x}"
        );
    }
    collection.drop().await.unwrap();
}
