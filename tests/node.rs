//! The node process: starts from the tables, says where it listens, answers
//! health checks, ticks its zone worlds, follows table changes (watcher and
//! SIGHUP), and exits 0 on SIGTERM and SIGINT.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use tessera_tables::generate::{CellValue, default_game, write_workbook};

const SHIPPED_TABLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/tables");

struct Node {
    child: Child,
    http: String,
    lines: mpsc::Receiver<String>,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a node on a free HTTP port; the shipped tables unless `extra` says otherwise.
fn start(extra: &[&str]) -> Node {
    let own_tables = extra.iter().any(|a| *a == "--tables" || *a == "--config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["--http", "127.0.0.1:0", "--workers", "2"])
        .args(if own_tables {
            vec![]
        } else {
            vec!["--tables", SHIPPED_TABLES]
        })
        .args(extra)
        .current_dir(std::env::temp_dir())
        .env("TESSERA_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start tessera");
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // From here on `Drop` kills the child whatever happens.
    let mut node = Node {
        child,
        http: String::new(),
        lines,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while node.http.is_empty() {
        let line = node
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the node logs its HTTP address at start");
        if let Some(rest) = line.split("http listening on http://").nth(1) {
            node.http = rest.split_whitespace().next().unwrap().to_string();
        }
    }
    node
}

fn get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

fn ready(node: &Node) -> serde_json::Value {
    let (status, body) = get(&node.http, "/readyz");
    assert_eq!(status, 200);
    serde_json::from_str(&body).unwrap()
}

fn wait_ready(
    node: &Node,
    what: &str,
    condition: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let value = ready(node);
        if condition(&value) {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last /readyz: {value}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn signal(node: &Node, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &node.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn wait_exit(node: &mut Node) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = node.child.try_wait().unwrap() {
            return status.code().expect("exited, not killed by a signal");
        }
        assert!(Instant::now() < deadline, "node did not stop within 20 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes the default game into `dir` with the wolf's hp cell set to `hp`.
fn write_tables(dir: &Path, hp: CellValue) {
    for (file, mut sheets) in default_game() {
        if let Some(npcs) = sheets.iter_mut().find(|s| s.name == "npcs") {
            npcs.rows[1][2] = hp.clone();
        }
        write_workbook(&dir.join(file), &sheets).unwrap();
    }
}

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
    let (status, metrics) = get(&node.http, "/metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains("tessera_ticks_total "), "{metrics}");

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
