//! The stores and the bridge against real servers: the MongoDB wire server
//! and the embedded store, with what the world's dirty tracking produces.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use serde_json::json;
use tessera_persistence::{
    dirty::{self, Dirty, PersistencePlugin},
    embedded::EmbeddedStore,
    error::StoreError,
    flush::{Backend, FlushSettings, Flusher},
    mongo::MongoStore,
    record::{Patch, SaveReport},
    services,
};
use tessera_sim::{Input, PlayerId, SimWorld, WorldSpec};
use tessera_tables::generate::default_tables;

async fn mongo(test: &str) -> MongoStore {
    let uri = services::mongodb_uri().unwrap_or_else(|e| panic!("{e}"));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    MongoStore::connect(
        &uri,
        &format!("tessera_{test}_{}_{nanos}", std::process::id()),
    )
    .await
    .unwrap()
}

fn embedded() -> (tempfile::TempDir, EmbeddedStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("players.redb")).unwrap();
    (dir, store)
}

/// A world with dirty tracking and one player who has just joined.
fn world_with_player() -> SimWorld {
    let spec = WorldSpec {
        kind: "starter".into(),
        seed: 1,
        tick_hz: 20,
        width: 200_000,
        height: 200_000,
        capacity: 10,
    };
    let mut world = SimWorld::build(spec, |app| {
        app.add_plugins(PersistencePlugin);
    })
    .unwrap();
    world.set_tables(Arc::new(default_tables()));
    world.push_input(
        PlayerId(7),
        Input::Join {
            class: "mage".into(),
        },
    );
    world.step();
    world
}

fn drain(world: &mut SimWorld) -> BTreeMap<PlayerId, BTreeMap<String, serde_json::Value>> {
    dirty::take_all(world.world_mut())
}

#[tokio::test]
async fn every_persisted_component_round_trips_in_both_stores() {
    let mut world = world_with_player();
    let parts = drain(&mut world)
        .remove(&PlayerId(7))
        .expect("a new player is dirty");
    let keys: Vec<&str> = parts.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        vec![
            "allegiance",
            "class",
            "experience",
            "health",
            "position",
            "stats"
        ]
    );
    let patch = Patch {
        player: 7,
        version: 10,
        parts: parts.clone(),
    };

    let (_dir, local) = embedded();
    assert_eq!(
        local.save(std::slice::from_ref(&patch)).unwrap(),
        SaveReport {
            applied: 1,
            stale: 0
        }
    );
    let stored = local.load(7).unwrap().unwrap();
    assert_eq!((stored.version, &stored.parts), (10, &parts));

    let remote = mongo("round_trip").await;
    assert_eq!(
        remote.save(std::slice::from_ref(&patch)).await.unwrap(),
        SaveReport {
            applied: 1,
            stale: 0
        }
    );
    let stored = remote.load(7).await.unwrap().unwrap();
    assert_eq!((stored.version, &stored.parts), (10, &parts));
}

#[tokio::test]
async fn a_stale_version_never_overwrites_a_newer_one() {
    let patch = |version: u64, xp: u64| Patch {
        player: 3,
        version,
        parts: BTreeMap::from([("xp".to_string(), json!(xp))]),
    };
    let (_dir, local) = embedded();
    let remote = mongo("stale").await;
    for (version, xp, expected) in [
        (10, 500, (1, 0)),
        (7, 100, (0, 1)),
        (10, 999, (0, 1)),
        (11, 600, (1, 0)),
    ] {
        let local_report = local.save(&[patch(version, xp)]).unwrap();
        let remote_report = remote.save(&[patch(version, xp)]).await.unwrap();
        assert_eq!(
            (local_report.applied, local_report.stale),
            expected,
            "embedded, v{version}"
        );
        assert_eq!(
            (remote_report.applied, remote_report.stale),
            expected,
            "mongodb, v{version}"
        );
    }
    assert_eq!(local.load(3).unwrap().unwrap().parts["xp"], json!(600));
    let stored = remote.load(3).await.unwrap().unwrap();
    assert_eq!((stored.version, &stored.parts["xp"]), (11, &json!(600)));
}

#[test]
fn only_changed_components_are_marked() {
    let mut world = world_with_player();
    drain(&mut world);
    let marked = world.world().resource::<Dirty>().marked;
    world.step();
    assert!(
        drain(&mut world).is_empty(),
        "nothing changed, nothing to write"
    );
    world.push_input(
        PlayerId(7),
        Input::Move {
            seq: 1,
            dir_x: 1,
            dir_y: 0,
        },
    );
    world.step();
    let dirty = drain(&mut world);
    let keys: Vec<&str> = dirty[&PlayerId(7)].keys().map(String::as_str).collect();
    assert_eq!(keys, vec!["position"]);
    assert_eq!(
        world.world().resource::<Dirty>().marked,
        marked + 1,
        "one part written, counted"
    );
}

fn walk_east(world: &mut SimWorld, ticks: u64) {
    for seq in 1..=ticks {
        world.push_input(
            PlayerId(7),
            Input::Move {
                seq: seq as u32,
                dir_x: 1,
                dir_y: 0,
            },
        );
        world.step();
    }
}

fn position_x(parts: &BTreeMap<String, serde_json::Value>) -> i64 {
    parts["position"]["x"]
        .as_i64()
        .expect("a position has an x")
}

#[test]
fn changes_between_captures_are_read_once_with_their_newest_value() {
    let mut world = world_with_player();
    let joined_x = position_x(&drain(&mut world)[&PlayerId(7)]);
    walk_east(&mut world, 5);
    let dirty = world.world().resource::<Dirty>();
    assert!(
        dirty.players.is_empty() && dirty.has_stale(),
        "a change marks its part; nothing is read before the capture"
    );
    let avatar = world
        .world()
        .resource::<tessera_sim::players::PlayerIndex>()
        .get(PlayerId(7))
        .unwrap();
    let now = world
        .world()
        .get::<tessera_sim::movement::Position>(avatar)
        .unwrap()
        .x;
    let parts = drain(&mut world).remove(&PlayerId(7)).unwrap();
    assert_eq!(parts.keys().collect::<Vec<_>>(), vec!["position"]);
    assert_eq!(position_x(&parts), i64::from(now), "the value at capture");
    assert!(position_x(&parts) > joined_x, "the walk is in it");
    assert!(drain(&mut world).is_empty(), "captured once");
}

#[test]
fn an_avatar_that_goes_between_captures_is_captured_as_it_goes() {
    let mut world = world_with_player();
    let joined_x = position_x(&drain(&mut world)[&PlayerId(7)]);
    walk_east(&mut world, 5);
    world.push_input(PlayerId(7), Input::Leave);
    world.step();
    let dirty = world.world().resource::<Dirty>();
    assert!(!dirty.has_stale(), "nothing of the leaver is left to read");
    assert_eq!(dirty.leaving, vec![PlayerId(7)]);
    let captured = &dirty.players[&PlayerId(7)];
    assert!(
        position_x(captured) > joined_x,
        "the position walked to before leaving was read as the avatar went: {captured:?}"
    );
}

#[tokio::test]
async fn a_batch_is_one_round_trip_and_many_players_land() {
    let remote = mongo("batch").await;
    let batch: Vec<Patch> = (1..=500)
        .map(|p| Patch {
            player: p,
            version: 1,
            parts: BTreeMap::from([("xp".to_string(), json!(p * 2))]),
        })
        .collect();
    assert_eq!(
        remote.save(&batch).await.unwrap(),
        SaveReport {
            applied: 500,
            stale: 0
        }
    );
    assert_eq!(
        remote
            .collection()
            .count_documents(mongodb::bson::doc! {})
            .await
            .unwrap(),
        500
    );
    assert_eq!(
        remote.load(250).await.unwrap().unwrap().parts["xp"],
        json!(500)
    );
}

#[tokio::test]
async fn the_flusher_merges_changes_and_keeps_them_while_the_store_is_down() {
    let (_dir, local) = embedded();
    let local = Arc::new(local);
    let flusher = Flusher::start(
        Backend::Embedded(local.clone()),
        FlushSettings {
            interval: Duration::from_secs(3600),
            ..Default::default()
        },
    );
    let sender = flusher.sender();
    sender.send(vec![(
        1,
        BTreeMap::from([("xp".into(), json!(1)), ("hp".into(), json!(50))]),
    )]);
    sender.send(vec![(1, BTreeMap::from([("xp".into(), json!(2))]))]);
    assert_eq!(
        flusher.flush_now().await.unwrap().applied,
        1,
        "two changes of one player, one write"
    );
    let first = local.load(1).unwrap().unwrap();
    assert_eq!(
        (&first.parts["xp"], &first.parts["hp"]),
        (&json!(2), &json!(50))
    );
    sender.send(vec![(1, BTreeMap::from([("xp".into(), json!(3))]))]);
    flusher.flush_now().await.unwrap();
    assert!(
        local.load(1).unwrap().unwrap().version > first.version,
        "versions only grow"
    );
    assert_eq!(flusher.shutdown(Duration::from_secs(1)).await, 0);

    // A store that cannot be reached: the change is kept, not dropped.
    let down = MongoStore::connect(
        "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200&connectTimeoutMS=200",
        "x",
    )
    .await
    .unwrap();
    let flusher = Flusher::start(
        Backend::Mongo(down),
        FlushSettings {
            interval: Duration::from_secs(3600),
            ..Default::default()
        },
    );
    flusher
        .sender()
        .send(vec![(5, BTreeMap::from([("xp".into(), json!(9))]))]);
    assert!(flusher.flush_now().await.is_err());
    let stats = flusher.stats();
    assert_eq!(stats.pending.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(stats.outage.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert!(stats.failures.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    assert_eq!(
        flusher.shutdown(Duration::from_millis(300)).await,
        1,
        "shutdown reports what it could not write"
    );
}

#[tokio::test]
async fn a_login_flush_writes_only_that_player() {
    let (_dir, local) = embedded();
    let local = Arc::new(local);
    let flusher = Flusher::start(
        Backend::Embedded(local.clone()),
        FlushSettings {
            interval: Duration::from_secs(3600),
            ..Default::default()
        },
    );
    flusher.sender().send(vec![
        (1, BTreeMap::from([("xp".into(), json!(1))])),
        (2, BTreeMap::from([("xp".into(), json!(2))])),
    ]);
    assert_eq!(flusher.flush_player(2).await.unwrap().applied, 1);
    assert!(local.load(2).unwrap().is_some());
    assert!(
        local.load(1).unwrap().is_none(),
        "the other player waits for the interval"
    );
    assert_eq!(
        flusher
            .stats()
            .pending
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(
        flusher.flush_player(3).await.unwrap().applied,
        0,
        "nothing pending: nothing written"
    );
    assert_eq!(flusher.shutdown(Duration::from_secs(1)).await, 0);
    assert!(local.load(1).unwrap().is_some(), "shutdown wrote the rest");
}

#[tokio::test]
async fn a_player_who_leaves_is_written_without_waiting_for_the_interval() {
    let (_dir, local) = embedded();
    let local = Arc::new(local);
    let flusher = Flusher::start(
        Backend::Embedded(local.clone()),
        FlushSettings {
            interval: Duration::from_secs(3600),
            ..Default::default()
        },
    );
    let mut world = world_with_player();
    // As the node does between captures: only what was captured goes.
    let hand_over = |world: &mut SimWorld| {
        let mut dirty = world.world_mut().resource_mut::<Dirty>();
        let changes = dirty
            .take()
            .into_iter()
            .map(|(p, parts)| (p.0, parts))
            .collect();
        let leaving: Vec<u64> = dirty.take_leaving().into_iter().map(|p| p.0).collect();
        assert!(flusher.sender().send(changes) && flusher.sender().leaving(leaving.clone()));
        leaving
    };
    assert!(hand_over(&mut world).is_empty(), "joining is not leaving");
    world.push_input(PlayerId(7), Input::Leave);
    world.step();
    assert_eq!(hand_over(&mut world), vec![7]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while local.load(7).unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the leaving player's record was not written"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let record = local.load(7).unwrap().unwrap();
    assert_eq!(record.parts["class"], json!("mage"));
    assert_eq!(
        flusher
            .stats()
            .pending
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

/// A node closes its MongoDB client last: what it wrote stays, and a call
/// after the close is a typed error rather than a panic in the driver.
#[tokio::test]
async fn a_closed_mongo_store_refuses_calls_and_keeps_what_it_wrote() {
    let remote = mongo("close").await;
    let patch = Patch {
        player: 1,
        version: 1,
        parts: BTreeMap::from([("xp".to_string(), json!(40))]),
    };
    remote.save(&[patch]).await.unwrap();
    let backend = Backend::Mongo(remote.clone());
    backend.close(Duration::from_secs(5)).await;
    let error = backend.load(1).await.unwrap_err();
    assert!(matches!(error, StoreError::Mongo(_)), "{error:?}");
    let uri = services::mongodb_uri().unwrap();
    let reopened = MongoStore::connect(&uri, &remote.collection().namespace().db)
        .await
        .unwrap();
    assert_eq!(
        reopened.load(1).await.unwrap().unwrap().parts["xp"],
        json!(40)
    );
}

/// Panics in the MongoDB driver's connection pool on this test's own
/// runtime threads (the hook is process-wide).
static POOL_PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
const EXIT_THREADS: &str = "store-exit";

/// A node's last steps: its last store call, then the store dropped, then
/// the runtime. Dropped without a close, the driver ends its server
/// sessions from a task that races the runtime's shutdown and panics in its
/// pool when it loses (in every run of 200 exits here); closed first, nothing is left
/// to race.
#[test]
fn a_store_closed_before_its_runtime_stops_leaves_no_driver_task_to_panic() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some(EXIT_THREADS)
            && info.to_string().contains("connection_requester")
        {
            POOL_PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        previous(info);
    }));
    for _ in 0..200 {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(EXIT_THREADS)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let store = Backend::Mongo(mongo("exit").await);
            store.load(1).await.unwrap();
            store.close(Duration::from_secs(5)).await;
        });
        drop(runtime);
    }
    assert_eq!(POOL_PANICS.load(std::sync::atomic::Ordering::SeqCst), 0);
}
