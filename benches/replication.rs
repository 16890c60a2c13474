//! Cost of a world tick with replication for the roam100 workload: 1,000
//! players in ten groups of 100 who all see each other, every one moving,
//! each client acknowledging every snapshot (the steady state: deltas
//! against a recent baseline). The snapshots' encoding to bytes is
//! included; sending them is not.

use std::{sync::Arc, time::Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_net::{
    proto::server_message::Body,
    replication::{AckBoard, Outgoing, ReplicationPlugin},
};
use tessera_sim::{Input, PlayerId, SimWorld, WorldSpec};

const GROUPS: usize = 10;

fn roam100_world() -> (SimWorld, AckBoard) {
    let tables = Arc::new(
        tessera_tables::generate::tables_from(tessera_tables::bench::roam100_game(GROUPS))
            .expect("valid benchmark tables"),
    );
    let zone = tables.zones.get("roam100").expect("a roam100 zone");
    let spec = WorldSpec {
        kind: "roam100".into(),
        seed: 1,
        tick_hz: 20,
        width: zone.width.mm as i32,
        height: zone.height.mm as i32,
        capacity: zone.capacity,
    };
    let acks = AckBoard::default();
    let replication = ReplicationPlugin {
        acks: acks.clone(),
        max_entities: 128,
        ..ReplicationPlugin::default()
    };
    let mut world = SimWorld::build(spec, |app| {
        app.add_plugins(replication);
    })
    .expect("valid spec");
    world.set_tables(tables);
    for id in 1..=(GROUPS * 100) as u64 {
        world.push_input(
            PlayerId(id),
            Input::Join {
                class: "runner".into(),
            },
        );
    }
    world.step();
    (world, acks)
}

/// Every player steers (directions turn with the tick, so positions keep
/// changing), then one tick; returns how long the tick took, after which
/// every snapshot is acknowledged.
fn step(world: &mut SimWorld, acks: &AckBoard, seq: &mut u32) -> std::time::Duration {
    *seq += 1;
    let turn = (*seq % 8) as i16;
    for id in 1..=(GROUPS * 100) as u64 {
        let angle = (id as i16 + turn) % 8;
        world.push_input(
            PlayerId(id),
            Input::Move {
                seq: *seq,
                dir_x: [1000, 700, 0, -700, -1000, -700, 0, 700][angle as usize],
                dir_y: [0, 700, 1000, 700, 0, -700, -1000, -700][angle as usize],
            },
        );
    }
    let started = Instant::now();
    world.step();
    let took = started.elapsed();
    // A node's worker drains the tick's events after every tick; left in
    // the outbox, the `Joined` of the first tick would make replication
    // forget every viewer's baselines on every tick (full snapshots only).
    world.drain_events();
    let sent = std::mem::take(&mut world.world_mut().resource_mut::<Outgoing>().0);
    for (player, _, bytes) in sent {
        if let Ok(message) = tessera_net::codec::decode_server(&bytes)
            && let Some(Body::Snapshot(snapshot)) = message.body
        {
            acks.ack(player, snapshot.id);
        }
    }
    took
}

fn replication(c: &mut Criterion) {
    let (mut world, acks) = roam100_world();
    let mut seq = 0;
    // Fill every view first (entering entities are limited by the budget).
    for _ in 0..60 {
        step(&mut world, &acks, &mut seq);
    }
    c.bench_function("roam100_tick/1000_viewers", |b| {
        b.iter_custom(|iterations| {
            (0..iterations)
                .map(|_| step(&mut world, &acks, &mut seq))
                .sum()
        });
    });
}

criterion_group!(benches, replication);
criterion_main!(benches);
