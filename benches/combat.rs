//! Tick cost of one zone full of fighting entities: half players on random
//! inputs (moving, using skills at random targets, every check exercised),
//! half NPCs (aggro through the spatial grid, chasing, casting), at the
//! starter zone's density (one entity per ~133 m²).

use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tessera_sim::{SimWorld, WorldSpec, driver::RandomInputs};
use tessera_tables::{
    Tables,
    generate::{CellValue, default_game, tables_from},
};

/// The default game plus a square zone `bench` sized for `entities`.
fn bench_tables(entities: u64) -> (Tables, i32) {
    let side_m = ((entities as f64) * 133.0).sqrt().ceil() as i64;
    let npcs = entities / 2;
    let grid = 10;
    let kinds = ["wolf", "boar", "bandit"];
    let mut spawns = Vec::new();
    for i in 0..grid * grid {
        let count = npcs / (grid * grid) + u64::from(i < npcs % (grid * grid));
        if count > 0 {
            let (x, y) = (
                (i % grid) * side_m as u64 / grid + 5,
                (i / grid) * side_m as u64 / grid + 5,
            );
            spawns.push(format!("{}*{count}@{x}:{y}", kinds[i as usize % 3]));
        }
    }
    let points: Vec<String> = (0..grid * grid)
        .map(|i| {
            format!(
                "{}:{}",
                (i % grid) * side_m as u64 / grid + 3,
                (i / grid) * side_m as u64 / grid + 3
            )
        })
        .collect();
    let mut workbooks = default_game();
    for (_, sheets) in &mut workbooks {
        if let Some(zones) = sheets.iter_mut().find(|s| s.name == "zones") {
            zones.rows.push(vec![
                "bench".into(),
                "zone".into(),
                "state".into(),
                CellValue::Number(20.0),
                CellValue::Number(side_m as f64),
                CellValue::Number(side_m as f64),
                CellValue::Number(100_000.0),
                CellValue::Text(points.join("; ")),
                CellValue::Text(spawns.join("; ")),
            ]);
        }
    }
    (
        tables_from(workbooks).expect("bench tables are valid"),
        (side_m * 1_000) as i32,
    )
}

fn combat(c: &mut Criterion) {
    let mut group = c.benchmark_group("combat_tick");
    group.sample_size(10);
    for entities in [1_000u64, 10_000, 50_000] {
        let (tables, side) = bench_tables(entities);
        let tables = Arc::new(tables);
        let skills: Vec<String> = tables.skills.iter().map(|s| s.id.0.clone()).collect();
        let skills: Vec<&str> = skills.iter().map(String::as_str).collect();
        let spec = WorldSpec {
            kind: "bench".into(),
            seed: 5,
            tick_hz: 20,
            width: side,
            height: side,
            capacity: 100_000,
        };
        let mut world = SimWorld::new(spec).expect("valid spec");
        world.set_tables(tables.clone());
        let mut driver = RandomInputs::new(1, entities / 2).fighting(&skills, entities);
        // Warm up: everyone joins, NPCs find their first targets.
        for _ in 0..40 {
            let next = world.tick() + 1;
            world.push_envelopes(driver.inputs_for(next));
            world.step();
            world.drain_events();
        }
        group.bench_function(BenchmarkId::new("fighting_entities", entities), |b| {
            b.iter(|| {
                let next = world.tick() + 1;
                world.push_envelopes(driver.inputs_for(next));
                let report = world.step();
                world.drain_events();
                report
            });
        });
    }
    group.finish();
}

criterion_group!(benches, combat);
criterion_main!(benches);
