//! Cost of one world tick: empty, and with 10,000 moving players.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tessera_sim::{Input, PlayerId, SimWorld, WorldSpec, driver::RandomInputs};

fn world_with(players: u64) -> (SimWorld, RandomInputs) {
    let spec = WorldSpec {
        width: 2_000_000,
        height: 2_000_000,
        capacity: 100_000,
        ..WorldSpec::default()
    };
    let mut world = SimWorld::new(spec).expect("valid spec");
    for id in 1..=players {
        world.push_input(
            PlayerId(id),
            Input::Join {
                class: "warrior".into(),
            },
        );
    }
    world.step();
    let mut driver = RandomInputs::new(1, players);
    // The driver joins everyone on its first call; consume that here.
    let _ = driver.inputs_for(1);
    (world, driver)
}

fn tick(c: &mut Criterion) {
    let mut group = c.benchmark_group("tick");
    for players in [0u64, 10_000] {
        group.bench_function(BenchmarkId::new("moving_players", players), |b| {
            let (mut world, mut driver) = world_with(players);
            b.iter(|| {
                let next = world.tick() + 1;
                world.push_envelopes(driver.inputs_for(next));
                world.step()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, tick);
criterion_main!(benches);
