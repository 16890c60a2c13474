//! Cost of building a room world: what the arena does on the net thread
//! each time matchmaking forms a match or a player opens a room (a bevy
//! app with the game's and replication's systems, the tables installed).
//! Every millisecond here is a millisecond no client's datagrams are read.

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use tessera_net::replication::ReplicationPlugin;
use tessera_sim::SimWorld;

fn room_build(c: &mut Criterion) {
    let tables = Arc::new(tessera_tables::generate::default_tables());
    let zone = tables
        .zones
        .iter()
        .find(|z| z.id.0 == "arena")
        .expect("the default tables have an arena");
    let mut seed = 0;
    c.bench_function("room_build/arena", |b| {
        b.iter(|| {
            seed += 1;
            let spec = tessera::zones::spec_for(zone, seed).expect("a valid zone");
            let mut sim = SimWorld::build(spec, |app| {
                app.add_plugins(ReplicationPlugin::default());
            })
            .expect("a valid spec");
            sim.set_tables(tables.clone());
            sim
        })
    });
}

criterion_group!(benches, room_build);
criterion_main!(benches);
