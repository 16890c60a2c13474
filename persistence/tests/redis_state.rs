//! The node's Redis layer against a real Redis: sessions, the login lock,
//! routing, the registry, presence and the write-behind record cache. Each
//! test has its own key prefix, so they run in parallel on one server.

use std::{
    collections::BTreeMap,
    future::Future,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tessera_persistence::{
    error::StoreError,
    record::{Patch, PlayerRecord},
    redis_state::{CacheReport, LockOutcome, NodeInfo, RedisState, Route},
    services,
};

const SHORT: Duration = Duration::from_millis(300);
const LONG: Duration = Duration::from_secs(60);

fn url() -> String {
    services::redis_url().unwrap_or_else(|e| panic!("{e}"))
}

fn unique_prefix() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("tessera-test:{}-{nanos}-{n}:", std::process::id())
}

async fn state() -> RedisState {
    RedisState::connect(&url(), &unique_prefix())
        .await
        .expect("redis reachable")
}

/// Polls `check` until it holds; expiry is Redis's business, so tests wait
/// for it rather than guess how long it takes.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(5);
    while !check().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn patch(player: u64, version: u64, parts: &[(&str, Value)]) -> Patch {
    Patch {
        player,
        version,
        parts: parts
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }
}

fn node(id: &str) -> NodeInfo {
    NodeInfo {
        id: id.into(),
        http: format!("127.0.0.1:80{}", id.len()),
        udp: vec!["127.0.0.1:5000".into(), "127.0.0.1:5001".into()],
        players: 12,
        started_unix_ms: 1_700_000_000_000,
    }
}

#[tokio::test]
async fn sessions_round_trip_and_expire() {
    let redis = state().await;
    redis.put_session("kept", 7, LONG).await.unwrap();
    redis.put_session("brief", 8, SHORT).await.unwrap();
    redis.put_session("ended", 9, LONG).await.unwrap();
    assert_eq!(redis.session("kept").await.unwrap(), Some(7));
    assert_eq!(redis.session("brief").await.unwrap(), Some(8));
    assert_eq!(redis.session("unknown").await.unwrap(), None);

    redis.end_session("ended").await.unwrap();
    assert_eq!(redis.session("ended").await.unwrap(), None);
    eventually("the brief session expires", || async {
        redis.session("brief").await.unwrap().is_none()
    })
    .await;
    assert_eq!(redis.session("kept").await.unwrap(), Some(7));
}

#[tokio::test]
async fn the_login_lock_admits_one_owner_and_only_the_owner_can_release_it() {
    let redis = state().await;
    assert_eq!(
        redis.lock_login(1, "node-a", LONG).await.unwrap(),
        LockOutcome::Acquired
    );
    assert_eq!(
        redis.lock_login(1, "node-b", LONG).await.unwrap(),
        LockOutcome::HeldBy("node-a".into())
    );
    assert!(!redis.refresh_login(1, "node-b", LONG).await.unwrap());
    assert!(!redis.unlock_login(1, "node-b").await.unwrap());
    assert!(redis.refresh_login(1, "node-a", LONG).await.unwrap());
    assert_eq!(
        redis.lock_login(1, "node-b", LONG).await.unwrap(),
        LockOutcome::HeldBy("node-a".into()),
        "a refused unlock must leave the holder in place"
    );

    assert_eq!(
        redis.steal_login(1, "node-b", LONG).await.unwrap(),
        Some("node-a".into())
    );
    assert!(!redis.unlock_login(1, "node-a").await.unwrap());
    assert!(redis.unlock_login(1, "node-b").await.unwrap());
    assert_eq!(
        redis.steal_login(1, "node-c", LONG).await.unwrap(),
        None,
        "stealing a free lock takes it from nobody"
    );
    assert_eq!(
        redis.lock_login(1, "node-a", LONG).await.unwrap(),
        LockOutcome::HeldBy("node-c".into())
    );
    assert_eq!(
        redis.lock_login(2, "node-a", LONG).await.unwrap(),
        LockOutcome::Acquired,
        "locks are per player"
    );
}

#[tokio::test]
async fn an_expired_login_lock_is_free_again() {
    let redis = state().await;
    assert_eq!(
        redis.lock_login(3, "crashed-node", SHORT).await.unwrap(),
        LockOutcome::Acquired
    );
    eventually("the lock expires", || async {
        redis.lock_login(3, "node-b", LONG).await.unwrap() == LockOutcome::Acquired
    })
    .await;
    assert!(
        !redis.refresh_login(3, "crashed-node", LONG).await.unwrap(),
        "an owner whose lock expired cannot revive it"
    );
}

#[tokio::test]
async fn a_route_is_cleared_only_by_the_node_it_points_at() {
    let redis = state().await;
    assert_eq!(redis.route(5).await.unwrap(), None);
    let first = Route {
        node: "node-a".into(),
        world: 3,
    };
    redis.set_route(5, &first, LONG).await.unwrap();
    assert_eq!(redis.route(5).await.unwrap(), Some(first));

    let moved = Route {
        node: "node-b".into(),
        world: u64::MAX,
    };
    redis.set_route(5, &moved, LONG).await.unwrap();
    assert!(!redis.clear_route(5, "node-a").await.unwrap());
    assert_eq!(redis.route(5).await.unwrap(), Some(moved.clone()));
    assert!(redis.clear_route(5, "node-b").await.unwrap());
    assert_eq!(redis.route(5).await.unwrap(), None);

    redis.set_route(6, &moved, SHORT).await.unwrap();
    eventually("the route expires", || async {
        redis.route(6).await.unwrap().is_none()
    })
    .await;
}

#[tokio::test]
async fn the_registry_forgets_a_node_that_stops_heartbeating_or_deregisters() {
    let redis = state().await;
    let (a, b) = (node("node-a"), node("node-bb"));
    redis.heartbeat(&a, SHORT).await.unwrap();
    redis.heartbeat(&b, SHORT).await.unwrap();
    let mut live = redis.nodes().await.unwrap();
    live.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(live, vec![a.clone(), b.clone()]);

    // a keeps beating, b has stopped.
    eventually("node-bb drops out", || async {
        redis.heartbeat(&a, SHORT).await.unwrap();
        redis.nodes().await.unwrap() == vec![a.clone()]
    })
    .await;

    redis.deregister(&a.id).await.unwrap();
    assert_eq!(redis.nodes().await.unwrap(), vec![]);
    redis.heartbeat(&b, LONG).await.unwrap();
    assert_eq!(
        redis.nodes().await.unwrap(),
        vec![b],
        "a pruned node that comes back is listed again"
    );
}

#[tokio::test]
async fn the_online_count_ignores_expired_entries() {
    let redis = state().await;
    redis.set_online(1, "node-a", SHORT).await.unwrap();
    redis.set_online(2, "node-a", SHORT).await.unwrap();
    redis.set_online(3, "node-b", LONG).await.unwrap();
    redis.set_online(4, "node-b", LONG).await.unwrap();
    assert_eq!(redis.online_count().await.unwrap(), 4);
    assert_eq!(redis.is_online(1).await.unwrap(), Some("node-a".into()));

    redis.set_offline(4).await.unwrap();
    assert_eq!(redis.is_online(4).await.unwrap(), None);
    eventually("the short-lived entries expire", || async {
        redis.online_count().await.unwrap() == 1
    })
    .await;
    assert_eq!(redis.is_online(1).await.unwrap(), None);
    assert_eq!(redis.is_online(3).await.unwrap(), Some("node-b".into()));

    redis.set_online(3, "node-c", LONG).await.unwrap();
    assert_eq!(
        (
            redis.online_count().await.unwrap(),
            redis.is_online(3).await.unwrap()
        ),
        (1, Some("node-c".into())),
        "renewing is not a second player"
    );
}

#[tokio::test]
async fn cached_patches_round_trip_every_part_exactly() {
    let redis = state().await;
    let batch = vec![
        patch(
            1,
            10,
            &[
                ("xp", json!(u64::MAX)),
                ("hp", json!(-42)),
                ("speed", json!(1.25)),
                ("class", json!("mage ✨")),
                ("empty", json!("")),
                ("nothing", Value::Null),
            ],
        ),
        patch(
            2,
            1_763_000_000_000_000,
            &[
                (
                    "position",
                    json!({"x": -5, "y": 7, "zone": {"id": 3, "tags": ["a", "b"]}}),
                ),
                (
                    "inventory",
                    json!([{"item": "sword", "count": 1}, null, true, 0.5]),
                ),
                ("flags", json!({})),
            ],
        ),
        patch(3, 1, &[]),
    ];
    let report = redis.cache_patches(&batch, LONG).await.unwrap();
    assert_eq!(
        report,
        CacheReport {
            applied: 3,
            stale: 0
        }
    );
    for patch in &batch {
        assert_eq!(
            redis.cached_record(patch.player).await.unwrap(),
            Some(PlayerRecord {
                player: patch.player,
                version: patch.version,
                parts: patch.parts.clone(),
            })
        );
    }
    assert_eq!(redis.cached_record(99).await.unwrap(), None);
}

#[tokio::test]
async fn a_stale_patch_changes_nothing_and_is_counted() {
    let redis = state().await;
    let fresh = patch(1, 10, &[("xp", json!(100))]);
    redis.cache_patches(&[fresh], LONG).await.unwrap();
    let before = redis.cached_record(1).await.unwrap();

    let report = redis
        .cache_patches(
            &[
                patch(1, 9, &[("xp", json!(1)), ("hp", json!(1))]),
                patch(1, 10, &[("xp", json!(2))]),
            ],
            LONG,
        )
        .await
        .unwrap();
    assert_eq!(
        report,
        CacheReport {
            applied: 0,
            stale: 2
        }
    );
    assert_eq!(redis.cached_record(1).await.unwrap(), before);
}

#[tokio::test]
async fn versions_compare_as_whole_u64s() {
    // 2^53 + 1 and 2^53 are equal as doubles; a Lua number compare would
    // refuse the newer one.
    let redis = state().await;
    let base = 1u64 << 53;
    let report = redis
        .cache_patches(
            &[
                patch(1, base, &[("xp", json!(1))]),
                patch(1, base + 1, &[("xp", json!(2))]),
                patch(1, 99, &[("xp", json!(3))]),
            ],
            LONG,
        )
        .await
        .unwrap();
    assert_eq!((report.applied, report.stale), (2, 1));
    let record = redis.cached_record(1).await.unwrap().unwrap();
    assert_eq!((record.version, &record.parts["xp"]), (base + 1, &json!(2)));
}

#[tokio::test]
async fn parts_merge_across_versions() {
    let redis = state().await;
    redis
        .cache_patches(
            &[patch(4, 1, &[("xp", json!(10)), ("hp", json!(100))])],
            LONG,
        )
        .await
        .unwrap();
    redis
        .cache_patches(
            &[
                patch(4, 2, &[("xp", json!(20))]),
                patch(4, 3, &[("position", json!({"x": 1, "y": 2}))]),
            ],
            LONG,
        )
        .await
        .unwrap();
    let record = redis.cached_record(4).await.unwrap().unwrap();
    assert_eq!(record.version, 3);
    assert_eq!(
        record.parts,
        BTreeMap::from([
            ("hp".to_string(), json!(100)),
            ("position".to_string(), json!({"x": 1, "y": 2})),
            ("xp".to_string(), json!(20)),
        ])
    );

    redis.evict(4).await.unwrap();
    assert_eq!(redis.cached_record(4).await.unwrap(), None);
}

#[tokio::test]
async fn cached_records_expire() {
    let redis = state().await;
    redis
        .cache_patches(&[patch(8, 1, &[("xp", json!(1))])], SHORT)
        .await
        .unwrap();
    assert!(redis.cached_record(8).await.unwrap().is_some());
    eventually("the cached record expires", || async {
        redis.cached_record(8).await.unwrap().is_none()
    })
    .await;
}

#[tokio::test]
async fn a_batch_of_two_thousand_players_is_cached() {
    let redis = state().await;
    let batch: Vec<Patch> = (0..2_000u64)
        .map(|player| {
            patch(
                player,
                1_000 + player,
                &[
                    ("xp", json!(player * 7)),
                    ("position", json!({"x": player, "y": -(player as i64)})),
                    ("class", json!(format!("class-{}", player % 5))),
                ],
            )
        })
        .collect();
    let report = redis.cache_patches(&batch, LONG).await.unwrap();
    assert_eq!(
        report,
        CacheReport {
            applied: 2_000,
            stale: 0
        }
    );
    for patch in &batch {
        let record = redis.cached_record(patch.player).await.unwrap().unwrap();
        assert_eq!(
            (record.version, &record.parts),
            (patch.version, &patch.parts)
        );
    }
    let again = redis.cache_patches(&batch, LONG).await.unwrap();
    assert_eq!((again.applied, again.stale), (0, 2_000));
}

#[tokio::test]
async fn a_corrupt_cached_part_is_an_error_not_a_panic() {
    let redis = state().await;
    redis
        .cache_patches(&[patch(5, 1, &[("xp", json!(1))])], LONG)
        .await
        .unwrap();
    // Written behind the layer's back, as a bad deploy or a hand edit would.
    let client = redis::Client::open(url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{}record:5", redis.prefix());
    let _: () = redis::cmd("HSET")
        .arg(&key)
        .arg("part:xp")
        .arg(&[0xc1u8][..])
        .query_async(&mut raw)
        .await
        .unwrap();
    match redis.cached_record(5).await {
        Err(StoreError::CorruptCache { player, field, .. }) => {
            assert_eq!((player, field.as_str()), (5, "part:xp"));
        }
        other => panic!("expected a corrupt-cache error, got {other:?}"),
    }

    let _: () = redis::cmd("HSET")
        .arg(&key)
        .arg("version")
        .arg("soon")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(matches!(
        redis.cached_record(5).await,
        Err(StoreError::CorruptCache { field, .. }) if field == "version"
    ));
    redis.evict(5).await.unwrap();
    assert_eq!(redis.cached_record(5).await.unwrap(), None);
}

#[tokio::test]
async fn an_unreachable_server_is_an_error_within_seconds() {
    let attempt = tokio::time::timeout(
        Duration::from_secs(15),
        RedisState::connect("redis://127.0.0.1:1", &unique_prefix()),
    )
    .await
    .expect("connecting to a dead port must fail, not hang");
    assert!(
        matches!(attempt, Err(StoreError::Redis(_))),
        "got {attempt:?}"
    );
}
