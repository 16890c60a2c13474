//! Dirty players written per second: the embedded store and MongoDB, one
//! batch per flush versus one write per player. MongoDB runs against
//! `TESSERA_TEST_MONGODB_URI` (start one with `source scripts/services.sh &&
//! services_start`); without it, the MongoDB benches say so and are skipped.

use std::collections::BTreeMap;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use tessera_persistence::{embedded::EmbeddedStore, mongo::MongoStore, record::Patch};

const PLAYERS: u64 = 2_000;

/// A typical flush: each player's position, health and experience changed.
fn batch(version: u64) -> Vec<Patch> {
    (1..=PLAYERS)
        .map(|player| Patch {
            player,
            version,
            parts: BTreeMap::from([
                (
                    "position".to_string(),
                    json!({ "x": player * 7 % 200_000, "y": version % 200_000 }),
                ),
                (
                    "health".to_string(),
                    json!({ "hp": 900, "max": 1200, "respawn_at": null, "last_attacker": null }),
                ),
                (
                    "experience".to_string(),
                    json!({ "xp": version * 3, "level": 2 }),
                ),
            ]),
        })
        .collect()
}

fn flush(c: &mut Criterion) {
    let mut group = c.benchmark_group("flush_players");
    group.sample_size(10);
    group.throughput(Throughput::Elements(PLAYERS));

    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("bench.redb")).unwrap();
    let mut version = 0;
    group.bench_function(BenchmarkId::new("embedded", "batch"), |b| {
        b.iter(|| {
            version += 1;
            store.save(&batch(version)).unwrap()
        })
    });
    group.bench_function(BenchmarkId::new("embedded", "one_per_player"), |b| {
        b.iter(|| {
            version += 1;
            for patch in batch(version) {
                store.save(std::slice::from_ref(&patch)).unwrap();
            }
        })
    });

    match std::env::var("TESSERA_TEST_MONGODB_URI") {
        Err(_) => eprintln!(
            "flush_players/mongodb: skipped, TESSERA_TEST_MONGODB_URI is not set (see the bench's header)"
        ),
        Ok(uri) => {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            let mongo = runtime
                .block_on(MongoStore::connect(&uri, "tessera_bench"))
                .unwrap();
            runtime
                .block_on(async { mongo.collection().drop().await })
                .ok();
            group.bench_function(BenchmarkId::new("mongodb", "batch"), |b| {
                b.iter(|| {
                    version += 1;
                    runtime.block_on(mongo.save(&batch(version))).unwrap()
                })
            });
            group.bench_function(BenchmarkId::new("mongodb", "one_per_player"), |b| {
                b.iter(|| {
                    version += 1;
                    runtime
                        .block_on(mongo.save_one_by_one(&batch(version)))
                        .unwrap()
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, flush);
criterion_main!(benches);
