//! The load tool against a live node: every bot gets in, pings come back,
//! snapshots arrive at the tick rate, and fighting bots land hits.

mod support;

use std::time::Duration;

use support::*;
use tessera_bot::loadtest::{LoadConfig, Scenario, run};

fn config(node: &Node, scenario: Scenario) -> LoadConfig {
    LoadConfig {
        server: node.http.clone(),
        bots: 30,
        ramp: 100.0,
        scenario,
        duration: Duration::from_secs(4),
        seed: 9,
        threads: 1,
    }
}

#[test]
fn roaming_bots_all_connect_and_measure_what_players_feel() {
    let node = start(&[]);
    let report = run(&config(&node, Scenario::Roam), |_, _| {});
    assert_eq!(
        report.failed.values().sum::<u64>(),
        0,
        "{:?}",
        report.failed
    );
    assert_eq!(report.connected, 30);
    // Measured, not judged: speed belongs to benches and load runs, not tests.
    assert!(
        report.rtt_ms.iter().all(|ms| *ms > 0.0),
        "pings came back: {:?}",
        report.rtt_ms
    );
    assert!(
        report.snapshot_interval_ms[0] > 0.0,
        "snapshots kept coming: {:?}",
        report.snapshot_interval_ms
    );
    assert!(report.bytes_per_bot_sec[0] > 0.0 && report.bytes_per_bot_sec[1] > 0.0);
}

#[test]
fn fighting_bots_find_npcs_and_hit_them() {
    let dir = tempfile::tempdir().unwrap();
    // Spawn next to the wolves at (50, 50) m.
    write_tables_spawning_at(dir.path(), "55:50");
    let node = start(&["--tables", dir.path().to_str().unwrap()]);
    let report = run(&config(&node, Scenario::Fight), |_, _| {});
    assert_eq!(report.connected, 30, "{:?}", report.failed);
    assert!(
        report.events > 30,
        "hits and deaths arrive as events: {}",
        report.events
    );
}
