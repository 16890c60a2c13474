//! The node process: starts on the built-in defaults, says where it listens,
//! answers health checks, ticks its default worlds, and exits 0 on SIGTERM
//! and SIGINT.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

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

fn start(extra: &[&str]) -> Node {
    let dir = std::env::temp_dir();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["--http", "127.0.0.1:0", "--workers", "2"])
        .args(extra)
        .current_dir(dir)
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

fn ticks(body: &str) -> u64 {
    let value: serde_json::Value = serde_json::from_str(body).unwrap();
    value["ticks"].as_u64().unwrap()
}

#[test]
fn the_node_ticks_its_default_worlds_and_stops_on_sigterm() {
    let mut node = start(&["--bots", "10"]);
    assert_eq!(get(&node.http, "/healthz"), (200, "ok\n".to_string()));
    let (status, body) = get(&node.http, "/readyz");
    assert_eq!(status, 200);
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["worlds"], 2, "the two default worlds run: {body}");
    let first = ticks(&body);
    std::thread::sleep(Duration::from_millis(300));
    let second = ticks(&get(&node.http, "/readyz").1);
    assert!(second > first, "ticks advance: {first} then {second}");
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
    assert_eq!(
        replays.len(),
        2,
        "one replay per default world: {replays:?}"
    );
    for replay in replays {
        let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .arg("replay")
            .arg(&replay)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn a_bad_config_is_refused_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "http = \"127.0.0.1:0\"\nworkers = 1\n[[worlds]]\nkind = \"z\"\nseed = 1\ntick_hz = 5000\nwidth = 1\nheight = 1\ncapacity = 1\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tick rate 5000 Hz is outside 1..=1000"),
        "{stderr}"
    );
}
