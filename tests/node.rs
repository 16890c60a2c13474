//! The node process: starts from the tables, says where it listens, answers
//! health checks, ticks its zone worlds, follows table changes (watcher and
//! SIGHUP), and exits 0 on SIGTERM and SIGINT.

mod support;

use std::{path::Path, process::Command, time::Duration};

use support::*;
use tessera_net::proto::{self, event};

#[test]
fn the_node_ticks_its_zone_worlds_and_stops_on_sigterm() {
    let mut node = start(&["--bots", "10"]);
    assert_eq!(get(&node.http, "/healthz"), (200, "ok\n".to_string()));
    let first = ready(&node);
    assert_eq!(
        first["worlds"], 1,
        "one world per zone of kind zone (starter): {first}"
    );
    let shipped = tessera_tables::load_dir(Path::new(SHIPPED_TABLES))
        .unwrap()
        .hash();
    assert_eq!(first["tables"]["hash"], shipped.to_string());
    assert!(first["tables"]["last_reload_error"].is_null());
    std::thread::sleep(Duration::from_millis(300));
    let second = ready(&node);
    assert!(
        second["ticks"].as_u64() > first["ticks"].as_u64(),
        "ticks advance: {first} then {second}"
    );
    // Each worker's snapshot pace (1 unless this machine is so busy that
    // the worker thins: then 2 or 4, the default limit).
    let paces = second["snapshot_every"].as_array().unwrap();
    assert_eq!(paces.len(), 2, "one per worker: {second}");
    assert!(
        paces
            .iter()
            .all(|p| [1, 2, 4].contains(&p.as_u64().unwrap())),
        "{second}"
    );
    let (status, metrics) = get(&node.http, "/metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains("tessera_ticks_total "), "{metrics}");
    for worker in 0..2 {
        let gauge = format!("tessera_snapshot_interval_ticks{{worker=\"{worker}\"}} ");
        assert!(metrics.contains(&gauge), "no {gauge}in {metrics}");
    }
    let dropped = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tessera_net_udp_receive_dropped_total "))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(dropped.is_some(), "no udp drop counter in {metrics}");
    // Every starter-zone tick so far is in its kind's histogram.
    let count = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tessera_tick_duration_seconds_count{kind=\"starter\"} "))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no starter tick histogram in {metrics}"));
    assert!(count > 0, "{metrics}");
    assert!(
        metrics.contains("tessera_tick_duration_seconds_bucket{kind=\"starter\",le=\"+Inf\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("# TYPE tessera_flush_latency_seconds histogram"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tessera_flush_batch_players_count "),
        "{metrics}"
    );

    signal(&node, "TERM");
    assert_eq!(wait_exit(&mut node), 0);
    let logs: Vec<String> = node.lines.try_iter().collect();
    assert!(
        logs.iter().any(|l| l.contains("SIGTERM received")),
        "{logs:#?}"
    );
    assert!(logs.iter().any(|l| l.contains("node stopped")), "{logs:#?}");
}

#[test]
fn the_node_stops_cleanly_on_sigint_and_saves_its_replays() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = start(&["--record", dir.path().to_str().unwrap(), "--bots", "3"]);
    std::thread::sleep(Duration::from_millis(300));
    signal(&node, "INT");
    assert_eq!(wait_exit(&mut node), 0);
    let replays: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(replays.len(), 1, "one replay per zone world: {replays:?}");
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("replay")
        .arg(&replays[0])
        .args(["--tables", SHIPPED_TABLES])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("tick hashes match"), "{stdout}");
}

/// A node that fails after its worlds started (here: its HTTP address is
/// taken) exits 1 with the reason, recording too: nothing started before
/// the failure (worlds, the tables follower, replay writers) holds up its
/// shutdown.
#[test]
fn a_node_whose_http_address_is_taken_exits_with_the_reason() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let http = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["--http", &http, "--udp", "127.0.0.1:0", "--tables"])
        .arg(SHIPPED_TABLES)
        .arg("--store-path")
        .arg(dir.path().join("p.redb"))
        .arg("--record")
        .arg(dir.path().join("replays"))
        .env("TESSERA_NETCODE_KEY", TEST_KEY)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the node did not exit within 30 s of failing to listen");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen for HTTP on {http}")),
        "{stderr}"
    );
}

#[test]
fn bad_config_or_tables_refuse_to_start_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "http = \"127.0.0.1:0\"\nworkers = \"two\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.toml") && stderr.contains("workers"),
        "{stderr}"
    );

    // Parses, but cannot work: refused before anything starts.
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["--http", "127.0.0.1:0", "--view-entities", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid config: view_entities = 0"),
        "{stderr}"
    );

    write_tables(dir.path(), "plenty".into());
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["--http", "127.0.0.1:0", "--tables"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("game.xlsx [npcs] C2 (column \"hp\"): found text \"plenty\""),
        "{stderr}"
    );
}

#[test]
fn a_running_node_picks_up_changed_tables_and_keeps_them_when_a_file_breaks() {
    let dir = tempfile::tempdir().unwrap();
    write_tables(dir.path(), 400i64.into());
    let mut node = start(&["--tables", dir.path().to_str().unwrap()]);
    let first = ready(&node)["tables"]["hash"].as_str().unwrap().to_string();

    // The watcher (1 s poll by default) notices the edit.
    write_tables(dir.path(), 450i64.into());
    let changed = wait_ready(&node, "the new tables", |r| {
        r["tables"]["hash"] != first.as_str()
    });
    assert_eq!(changed["tables"]["version"], 2);
    let second = changed["tables"]["hash"].as_str().unwrap().to_string();

    write_tables(dir.path(), "lots".into());
    let refused = wait_ready(&node, "the reload error", |r| {
        !r["tables"]["last_reload_error"].is_null()
    });
    assert_eq!(
        refused["tables"]["hash"],
        second.as_str(),
        "the old tables stay"
    );
    let error = refused["tables"]["last_reload_error"].as_str().unwrap();
    assert!(error.contains("game.xlsx [npcs] C2"), "{error}");
    let (_, metrics) = get(&node.http, "/metrics");
    assert!(
        metrics.contains("tessera_tables_reload_failing 1"),
        "{metrics}"
    );

    signal(&node, "TERM");
    assert_eq!(wait_exit(&mut node), 0);
}

#[test]
fn sighup_reloads_the_tables() {
    let dir = tempfile::tempdir().unwrap();
    write_tables(dir.path(), 400i64.into());
    let config = dir.path().join("node.toml");
    let text = tessera::config::DEFAULT_CONFIG
        .replace("tables_poll_ms = 1000", "tables_poll_ms = 0")
        .replace(
            "tables_dir = \"assets/tables\"",
            &format!("tables_dir = {:?}", dir.path().display().to_string()),
        );
    std::fs::write(&config, text).unwrap();
    let mut node = start(&["--config", config.to_str().unwrap()]);
    let first = ready(&node)["tables"]["hash"].as_str().unwrap().to_string();
    write_tables(dir.path(), 999i64.into());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        ready(&node)["tables"]["hash"],
        first.as_str(),
        "no watcher: nothing changes by itself"
    );
    signal(&node, "HUP");
    let changed = wait_ready(&node, "the reload", |r| {
        r["tables"]["hash"] != first.as_str()
    });
    assert_eq!(changed["tables"]["version"], 2);
    signal(&node, "TERM");
    assert_eq!(wait_exit(&mut node), 0);
}

/// The default game with a second zone, `frontier`, after `starter`.
fn write_tables_with_frontier(dir: &Path) {
    use tessera_tables::generate::{CellValue, default_game, write_workbook};
    for (file, mut sheets) in default_game() {
        if let Some(zones) = sheets.iter_mut().find(|s| s.name == "zones") {
            let starter = zones
                .rows
                .iter()
                .find(|row| row[0] == CellValue::from("starter"))
                .cloned()
                .unwrap();
            let mut frontier = starter;
            frontier[0] = "frontier".into();
            zones.rows.push(frontier);
        }
        write_workbook(&dir.join(file), &sheets).unwrap();
    }
}

#[test]
fn a_zone_the_tables_add_while_the_node_runs_takes_players() {
    let dir = tempfile::tempdir().unwrap();
    write_tables(dir.path(), 400i64.into());
    let mut node = start(&["--tables", dir.path().to_str().unwrap()]);
    assert_eq!(ready(&node)["worlds"], 1);
    write_tables_with_frontier(dir.path());
    let added = wait_ready(&node, "the new zone's world", |r| r["worlds"] == 2);
    assert_eq!(added["tables"]["version"], 2);
    let session = join_world(&node, "frontier-settler", "warrior", "frontier");
    assert_eq!(session.welcome.as_ref().unwrap().world, "frontier");
    // Players land where they did before: the first zone stays the default.
    let session = join_world(&node, "starter-settler", "warrior", "");
    assert_eq!(session.welcome.as_ref().unwrap().world, "starter");
    signal(&node, "TERM");
    assert_eq!(wait_exit(&mut node), 0);
}

/// A running zone keeps its tick rate, size and capacity until the node
/// restarts: a reload that changes them, or removes the zone's row, says so
/// instead of pretending to apply it, and the world keeps taking players.
#[test]
fn a_reload_that_changes_or_removes_a_running_zone_says_the_world_keeps_its_spec() {
    let dir = tempfile::tempdir().unwrap();
    write_tables_with_frontier(dir.path());
    let node = start(&["--tables", dir.path().to_str().unwrap()]);
    assert_eq!(ready(&node)["worlds"], 2);
    // The starter zone at 25 Hz, and no frontier.
    write_tables_with_zones(dir.path(), &[("starter", ZONE_TICK_HZ, 25i64.into())]);
    wait_ready(&node, "the new tables", |r| r["tables"]["version"] == 2);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (mut changed, mut removed) = (false, false);
    while !(changed && removed) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = node
            .lines
            .recv_timeout(left)
            .expect("the node says what the reload could not apply");
        changed |= line.contains("starter") && line.contains("keeps the ones it started with");
        removed |= line.contains("frontier") && line.contains("no longer in the tables");
    }
    assert_eq!(ready(&node)["worlds"], 2, "both worlds run on");
    let session = join_world(&node, "still-20-hz", "warrior", "frontier");
    let welcome = session.welcome.as_ref().unwrap();
    assert_eq!(welcome.world, "frontier");
    let session = join_world(&node, "starter-at-20", "warrior", "");
    assert_eq!(session.welcome.as_ref().unwrap().tick_hz, 20);
}

/// A designer's hot reload reaches the players already in a world: each is
/// told the new tables' hash and its skills as the new tables define them,
/// which the bot library folds into its welcome (a client pacing `slash`
/// by the old cooldown would draw `Cooldown` refusals).
#[test]
fn a_reload_tells_the_players_in_a_world_their_skills_as_the_new_tables_define_them() {
    let dir = tempfile::tempdir().unwrap();
    write_tables_with(dir.path(), &[]);
    let node = start(&["--tables", dir.path().to_str().unwrap()]);
    let mut warrior = join_world(&node, "reload-warrior", "warrior", "");
    let before = warrior.welcome.clone().unwrap();
    let slash = |skills: &[proto::SkillInfo]| skills.iter().find(|s| s.id == "slash").cloned();
    assert_eq!(slash(&before.skills).unwrap().cooldown_ticks, 20);
    let told = |s: &tessera_bot::session::Session| {
        s.events
            .iter()
            .any(|e| matches!(e.kind, Some(event::Kind::TablesChanged(_))))
    };
    assert!(
        !warrior
            .pump_until(Duration::from_millis(500), told)
            .unwrap(),
        "nothing to tell before a reload"
    );
    write_tables_with(
        dir.path(),
        &[("skills", "slash", SKILL_COOLDOWN_TICKS, 45i64.into())],
    );
    assert!(
        warrior.pump_until(Duration::from_secs(20), told).unwrap(),
        "the player is told of the reload"
    );
    let welcome = warrior.welcome.as_ref().unwrap();
    assert_eq!(
        slash(&welcome.skills).unwrap().cooldown_ticks,
        45,
        "the new cooldown"
    );
    let now = ready(&node)["tables"]["hash"].as_str().unwrap().to_string();
    assert_ne!(now, before.tables_hash);
    assert_eq!(welcome.tables_hash, now, "the node's tables now");
    // Told exactly what a player joining now is welcomed with.
    let late = join_world(&node, "reload-late", "warrior", "");
    let late = late.welcome.as_ref().unwrap();
    assert_eq!(late.skills, welcome.skills);
    assert_eq!(late.tables_hash, welcome.tables_hash);
}
