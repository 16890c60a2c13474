//! Starts real node processes for whole-node tests and talks to them.

#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use tessera_tables::generate::{CellValue, default_game, write_workbook};

/// A fixed netcode key for test nodes, so tests can forge and expire tokens.
pub const TEST_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

pub const SHIPPED_TABLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/tables");

pub struct Node {
    /// The node's embedded store lives here (one per test node).
    pub data: tempfile::TempDir,
    pub child: Child,
    pub http: String,
    pub udp: String,
    pub lines: mpsc::Receiver<String>,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a node on a free HTTP port; the shipped tables unless `extra` says otherwise.
pub fn start(extra: &[&str]) -> Node {
    start_with_env(extra, &[])
}

/// [`start`], with `env` set for the node besides the test defaults.
pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Node {
    let own_tables = extra.iter().any(|a| *a == "--tables" || *a == "--config");
    let data = tempfile::tempdir().unwrap();
    let store = data.path().join("tessera.redb");
    let own_store = extra.contains(&"--store-path");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(if own_store {
            vec![]
        } else {
            vec!["--store-path".into(), store.into_os_string()]
        })
        .args(if extra.contains(&"--http") {
            vec!["--workers", "2"]
        } else {
            vec!["--http", "127.0.0.1:0", "--workers", "2"]
        })
        .args(if extra.contains(&"--udp") {
            vec![]
        } else {
            vec!["--udp", "127.0.0.1:0"]
        })
        .args(if own_tables {
            vec![]
        } else {
            vec!["--tables", SHIPPED_TABLES]
        })
        .args(extra)
        .current_dir(std::env::temp_dir())
        .env("TESSERA_LOG", "info")
        .env("TESSERA_NETCODE_KEY", TEST_KEY)
        .envs(env.iter().copied())
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
        data,
        child,
        http: String::new(),
        udp: String::new(),
        lines,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while node.http.is_empty() {
        let line = node
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the node logs its HTTP address at start");
        if let Some(rest) = line.split("udp listening on ").nth(1) {
            node.udp = rest.split_whitespace().next().unwrap().to_string();
        }
        if let Some(rest) = line.split("http listening on http://").nth(1) {
            node.http = rest.split_whitespace().next().unwrap().to_string();
        }
    }
    node
}

pub fn get(addr: &str, path: &str) -> (u16, String) {
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

pub fn ready(node: &Node) -> serde_json::Value {
    let (status, body) = get(&node.http, "/readyz");
    assert_eq!(status, 200);
    serde_json::from_str(&body).unwrap()
}

pub fn wait_ready(
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

pub fn signal(node: &Node, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &node.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

pub fn wait_exit(node: &mut Node) -> i32 {
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
pub fn write_tables(dir: &Path, hp: CellValue) {
    for (file, mut sheets) in default_game() {
        if let Some(npcs) = sheets.iter_mut().find(|s| s.name == "npcs") {
            npcs.rows[1][2] = hp.clone();
        }
        write_workbook(&dir.join(file), &sheets).unwrap();
    }
}

/// Columns of a `zones` row the tests change.
pub const ZONE_TICK_HZ: usize = 3;
/// See [`ZONE_TICK_HZ`].
pub const ZONE_CAPACITY: usize = 6;
/// See [`ZONE_TICK_HZ`].
pub const ZONE_SPAWNS: usize = 7;

/// Writes the default game into `dir`, setting cells of `zones` rows:
/// `(zone id, column, value)`.
pub fn write_tables_with_zones(dir: &Path, edits: &[(&str, usize, CellValue)]) {
    let edits: Vec<_> = edits
        .iter()
        .map(|(zone, column, value)| ("zones", *zone, *column, value.clone()))
        .collect();
    write_tables_with(dir, &edits);
}

/// Writes the default game into `dir`, setting cells of rows of any sheet:
/// `(sheet, row id, column, value)`.
pub fn write_tables_with(dir: &Path, edits: &[(&str, &str, usize, CellValue)]) {
    for (file, mut sheets) in default_game() {
        for sheet in sheets.iter_mut() {
            for row in sheet.rows.iter_mut() {
                for (name, id, column, value) in edits {
                    if sheet.name == *name && row[0] == CellValue::from(*id) {
                        row[*column] = value.clone();
                    }
                }
            }
        }
        write_workbook(&dir.join(file), &sheets).unwrap();
    }
}

/// Columns of a `skills` row the tests change.
pub const SKILL_RANGE: usize = 4;
/// See [`SKILL_RANGE`].
pub const SKILL_COOLDOWN_TICKS: usize = 5;

/// The default game with the starter zone's spawn points set to `spawn`
/// (e.g. "100:100"), so test players meet.
pub fn write_tables_spawning_at(dir: &Path, spawn: &str) {
    write_tables_with_zones(dir, &[("starter", ZONE_SPAWNS, spawn.into())]);
}

/// Like [`write_tables_spawning_at`], with the starter zone's capacity too.
pub fn write_tables_with_capacity(dir: &Path, spawn: &str, capacity: i64) {
    write_tables_with_zones(
        dir,
        &[
            ("starter", ZONE_SPAWNS, spawn.into()),
            ("starter", ZONE_CAPACITY, capacity.into()),
        ],
    );
}

/// The default game with room kind `kind` holding `size` players.
pub fn write_tables_with_room_size(dir: &Path, kind: &str, size: i64) {
    write_tables_with_zones(dir, &[(kind, ZONE_CAPACITY, size.into())]);
}

/// The MongoDB the tests share (fails loudly without it).
pub fn test_mongodb_uri() -> String {
    tessera_persistence::services::mongodb_uri().unwrap_or_else(|e| panic!("{e}"))
}

/// A config file in `dir` for a node storing players in MongoDB at `uri`
/// (`database`), flushing every `flush_ms`, on the shipped tables.
pub fn mongo_config(dir: &Path, uri: &str, database: &str, flush_ms: u64) -> std::path::PathBuf {
    let path = dir.join("node.toml");
    let text = tessera::config::DEFAULT_CONFIG
        .replace("store = \"embedded\"", "store = \"mongodb\"")
        .replace(
            "mongodb_uri = \"mongodb://127.0.0.1:27017\"",
            &format!("mongodb_uri = {uri:?}"),
        )
        .replace(
            "mongodb_database = \"tessera\"",
            &format!("mongodb_database = {database:?}"),
        )
        .replace(
            "flush_interval_ms = 1000",
            &format!("flush_interval_ms = {flush_ms}"),
        )
        .replace(
            "tables_dir = \"assets/tables\"",
            &format!("tables_dir = {SHIPPED_TABLES:?}"),
        );
    std::fs::write(&path, text).unwrap();
    path
}

/// Everyone in `sessions` walks in direction `(dir_x, dir_y)` for `time`,
/// one move per session every 20 ms, pumping all of them.
pub fn walk(
    sessions: &mut [tessera_bot::session::Session],
    seq: &mut u32,
    dir: (i32, i32),
    time: Duration,
) {
    use tessera_net::proto::{self, client_message::Body};
    let until = Instant::now() + time;
    while Instant::now() < until {
        *seq += 1;
        for session in sessions.iter_mut() {
            session.send(Body::Move(proto::MoveInput {
                seq: *seq,
                dir_x: dir.0,
                dir_y: dir.1,
            }));
            session.pump().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Walks one session for `moves` inputs, then stops, and waits for a
/// snapshot of the tick that applied the stop: the avatar stands where
/// that snapshot shows it (a move's direction holds until the next input,
/// so without the stop it would walk on while a slow test reads it).
pub fn walk_and_settle(session: &mut tessera_bot::session::Session, dir: (i32, i32), moves: u32) {
    use tessera_net::proto::{self, client_message::Body};
    let mut seq = 0;
    walk(
        std::slice::from_mut(session),
        &mut seq,
        dir,
        Duration::from_millis(u64::from(moves) * 20),
    );
    let stop = seq + 1;
    session.send(Body::Move(proto::MoveInput {
        seq: stop,
        dir_x: 0,
        dir_y: 0,
    }));
    let settled = session
        .pump_until(Duration::from_secs(20), |s| {
            s.snapshot
                .as_ref()
                .is_some_and(|s| s.last_input_seq >= stop)
        })
        .unwrap();
    assert!(settled, "the server applied the moves and the stop");
}

/// POSTs raw JSON; returns the status and the parsed body.
pub fn post_json(http: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let (status, _, reply) = post_json_with_head(http, path, body);
    (status, reply)
}

/// [`post_json`], with the response's status line and headers.
pub fn post_json_with_head(http: &str, path: &str, body: &str) -> (u16, String, serde_json::Value) {
    post_json_with_headers(http, path, body, &[])
}

/// [`post_json_with_head`], sending `headers` too.
pub fn post_json_with_headers(
    http: &str,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> (u16, String, serde_json::Value) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(http).unwrap();
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (
        status,
        head.to_string(),
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

/// Logs `device` in, connects, joins `world` ("" for the default zone) as
/// `class`, and waits for the welcome and a first snapshot.
pub fn join_world(
    node: &Node,
    device: &str,
    class: &str,
    world: &str,
) -> tessera_bot::session::Session {
    let login = tessera_bot::session::login(&node.http, device).expect("login");
    enter_world(&login, class, world)
}

/// Connects with `login`, joins `world` ("" for the default zone) as
/// `class`, and waits for the welcome and a first snapshot.
pub fn enter_world(
    login: &tessera_bot::session::Login,
    class: &str,
    world: &str,
) -> tessera_bot::session::Session {
    use tessera_net::proto::{self, client_message::Body};
    let wait = Duration::from_secs(30);
    let mut session = tessera_bot::session::Session::connect(login, wait).expect("connect");
    session.send(Body::Join(proto::JoinWorld {
        class: class.into(),
        world: world.into(),
    }));
    assert!(
        session
            .pump_until(wait, |s| s.welcome.is_some() && s.snapshot.is_some())
            .unwrap(),
        "player {} was not welcomed into {world:?}",
        login.player_id
    );
    session
}

/// Sends a room command and waits for its response.
pub fn ask(
    session: &mut tessera_bot::session::Session,
    kind: tessera_net::proto::room_command::Kind,
) -> tessera_net::proto::Response {
    let request = session.room(kind);
    assert!(
        session
            .pump_until(Duration::from_secs(30), |s| s
                .response_to(request)
                .is_some())
            .unwrap(),
        "no response to request {request}"
    );
    session.response_to(request).unwrap().clone()
}

/// Whether `response` says the command was carried out.
pub fn ok(response: &tessera_net::proto::Response) -> bool {
    response.code == tessera_net::proto::ResultCode::Ok as i32
}

/// Waits for a welcome into `world` and a snapshot after it.
pub fn welcomed_to(session: &mut tessera_bot::session::Session, world: &str) {
    assert!(
        session
            .pump_until(Duration::from_secs(30), |s| s
                .welcome
                .as_ref()
                .is_some_and(|w| w.world == world)
                && s.snapshot.is_some())
            .unwrap(),
        "no welcome to {world}: {:?}",
        session.welcome
    );
}

/// Opens a room of `kind` (no password, the class last played) for
/// `session`'s player, which the node moves into it; the response.
pub fn open_room(
    session: &mut tessera_bot::session::Session,
    kind: &str,
) -> tessera_net::proto::Response {
    use tessera_net::proto::{RoomCreate, room_command::Kind};
    ask(
        session,
        Kind::Create(RoomCreate {
            kind: kind.into(),
            password: String::new(),
            class: String::new(),
        }),
    )
}

/// Pumps `session` and steps its team behaviour over the new events.
pub fn step_team(
    session: &mut tessera_bot::session::Session,
    team: &mut tessera_bot::team::Team,
    seen: &mut usize,
) {
    session.pump().unwrap();
    let events = session.events[*seen..].to_vec();
    *seen = session.events.len();
    for body in team.step(&events, session.snapshot.as_ref()) {
        session.send(body);
    }
}

/// Steps the team behaviours of two players together until `done` says
/// so of them, failing after 30 s with `what` did not happen.
pub fn step_teams_until(
    (first, first_team): (
        &mut tessera_bot::session::Session,
        &mut tessera_bot::team::Team,
    ),
    (second, second_team): (
        &mut tessera_bot::session::Session,
        &mut tessera_bot::team::Team,
    ),
    what: &str,
    done: impl Fn(&tessera_bot::team::Team, &tessera_bot::team::Team) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut seen_first, mut seen_second) = (0, 0);
    while !done(first_team, second_team) {
        assert!(Instant::now() < deadline, "{what}");
        step_team(first, first_team, &mut seen_first);
        step_team(second, second_team, &mut seen_second);
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether `team`'s view has `members` members.
pub fn team_of(team: &tessera_bot::team::Team, members: usize) -> bool {
    team.view
        .as_ref()
        .is_some_and(|v| v.members.len() == members)
}

/// A matchmaking queue command for `kind`, with the class last played.
pub fn queue_command(kind: &str) -> tessera_net::proto::room_command::Kind {
    tessera_net::proto::room_command::Kind::Queue(tessera_net::proto::RoomQueue {
        kind: kind.into(),
        class: String::new(),
    })
}

/// The fault injection key the test nodes are started with.
pub const CHAOS_KEY: &str = "crash-test-chaos-key";

/// Asks the node to crash `world`; the status and the body.
pub fn crash(node: &Node, world: u64, key: Option<&str>) -> (u16, serde_json::Value) {
    let bearer = key.map(|key| format!("Bearer {key}"));
    let headers: Vec<(&str, &str)> = bearer
        .iter()
        .map(|value| ("Authorization", value.as_str()))
        .collect();
    let body = format!(r#"{{"world": {world}}}"#);
    let (status, _, reply) =
        post_json_with_headers(&node.http, "/v1/chaos/crash-world", &body, &headers);
    (status, reply)
}

/// A node on tables whose `starter` zone spawns at (100, 100) m and whose
/// arena takes two, with fault injection on.
pub fn chaos_node(dir: &std::path::Path) -> Node {
    write_tables_with_zones(
        dir,
        &[
            ("starter", ZONE_SPAWNS, "100:100".into()),
            ("arena", ZONE_CAPACITY, 2i64.into()),
        ],
    );
    start_with_env(
        &["--tables", dir.to_str().unwrap()],
        &[("TESSERA_CHAOS_KEY", CHAOS_KEY)],
    )
}
