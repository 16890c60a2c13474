//! Many bots against one node, from a few threads: login, connect, join,
//! play a scenario, and measure what players would feel.
//!
//! Each worker thread owns a share of the bots and steps them all in one
//! loop (no thread per bot). Bots start at `ramp` per second.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use hdrhistogram::Histogram;
use serde::Serialize;
use tessera_net::proto::{self, client_message::Body};

use crate::{
    behave::{Behaviour, Rosters},
    session::{Login, Session, SessionError, login},
};

/// What the bots do once in the world.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
pub enum Scenario {
    /// Walk between random waypoints; one move every 50 ms, a ping a second.
    Roam,
    /// Walk to the nearest NPC in view and hit it; respawn and go again.
    Fight,
    /// Queue for the `arena` room kind, fight the match, report its result.
    Arena,
    /// Play the `duel_lockstep` frame-sync room, running the same `sim`.
    Lockstep,
    /// The standard comparison workload (node on `tessera tables init
    /// --roam100 GROUPS` tables): groups of 100 around one spawn point each,
    /// all seeing each other; a move every 50 ms, a ping a second, and each
    /// bot's HP changes once a second (`sting` / `mend` on itself).
    Roam100,
    /// Teams of five form in the zone (the leader invites, the others
    /// follow it), the leader queues the team for `arena`, the team fights
    /// there on one side, and after the result all go back and start again.
    Team,
}

impl Scenario {
    /// The `zones` row the bots join ("" = the node's default zone).
    fn world(self) -> &'static str {
        match self {
            Scenario::Roam | Scenario::Fight | Scenario::Roam100 | Scenario::Team => "",
            Scenario::Arena => "arena",
            Scenario::Lockstep => "duel_lockstep",
        }
    }
}

/// A load test.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The node's HTTP address (`host:port`).
    pub server: String,
    /// Bots to run.
    pub bots: usize,
    /// Bots started per second.
    pub ramp: f64,
    /// What they do.
    pub scenario: Scenario,
    /// How long to run after the first bot starts.
    pub duration: Duration,
    /// Seed for the bots' choices (device ids and roaming).
    pub seed: u64,
    /// Worker threads.
    pub threads: usize,
    /// The game tables (the lockstep scenario runs the room's `sim` on them).
    pub tables: Option<Arc<tessera_tables::Tables>>,
}

/// Counters shared by the workers, read by the progress display.
#[derive(Debug, Default)]
pub struct Live {
    /// Bots connected now.
    pub connected: AtomicU64,
    /// Bots that failed.
    pub failed: AtomicU64,
}

/// The result of a run.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The scenario.
    pub scenario: Scenario,
    /// Bots asked for.
    pub bots: usize,
    /// Bots that got into the world.
    pub connected: u64,
    /// Bots that failed, by reason.
    pub failed: BTreeMap<String, u64>,
    /// Disconnects after being connected.
    pub disconnects: u64,
    /// Login latency, ms: p50, p95, p99.
    pub login_ms: [f64; 3],
    /// Connect (handshake to welcome) latency, ms: p50, p95, p99.
    pub connect_ms: [f64; 3],
    /// Round trip time of pings, ms: p50, p95, p99: from the ping's send
    /// to its pong's datagram arriving at the bot's socket (the kernel's
    /// receive stamp, where there is one).
    pub rtt_ms: [f64; 3],
    /// The same round trips measured to when the bot's loop got to the
    /// pong (`rtt_ms` plus the wait for the bot's turn), ms: p50, p95, p99.
    pub rtt_loop_ms: [f64; 3],
    /// Time between snapshots, ms: p50, p99 (jitter shows as the spread).
    pub snapshot_interval_ms: [f64; 2],
    /// Message bytes per second per connected bot: in, out.
    pub bytes_per_bot_sec: [f64; 2],
    /// Events received (hits, deaths, ...).
    pub events: u64,
    /// Wall time of the run, s.
    pub seconds: f64,
    /// CPU time of this bot process per bot-second, µs (how cheap the tool is).
    pub bot_cpu_us_per_bot_sec: f64,
    /// Arena: rooms whose result reached a bot (counted once per bot).
    pub room_results: u64,
    /// Lockstep: frames the bots simulated, and state-hash mismatches
    /// (seen by a bot against a bundle's hash, or reported by the server).
    pub frames: u64,
    /// Lockstep: see `frames`.
    pub desyncs: u64,
    /// Entities in each connected bot's view at the end (itself included):
    /// fewest, mean.
    pub view_entities: [f64; 2],
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

fn micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// This process's CPU time (user + system), from /proc.
pub fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

#[derive(Default)]
struct Tally {
    failed: BTreeMap<String, u64>,
    disconnects: u64,
    login: Option<Histogram<u64>>,
    connect: Option<Histogram<u64>>,
    rtt: Option<Histogram<u64>>,
    rtt_loop: Option<Histogram<u64>>,
    interval: Option<Histogram<u64>>,
    bytes_in: u64,
    bytes_out: u64,
    events: u64,
    bot_seconds: f64,
    room_results: u64,
    frames: u64,
    desyncs: u64,
    views: Vec<usize>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        for (reason, count) in other.failed {
            *self.failed.entry(reason).or_default() += count;
        }
        self.disconnects += other.disconnects;
        for (mine, theirs) in [
            (&mut self.login, other.login),
            (&mut self.connect, other.connect),
            (&mut self.rtt, other.rtt),
            (&mut self.rtt_loop, other.rtt_loop),
            (&mut self.interval, other.interval),
        ] {
            if let Some(theirs) = theirs {
                mine.get_or_insert_with(histogram)
                    .add(theirs)
                    .expect("same bounds");
            }
        }
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.events += other.events;
        self.bot_seconds += other.bot_seconds;
        self.room_results += other.room_results;
        self.frames += other.frames;
        self.desyncs += other.desyncs;
        self.views.extend(other.views);
    }
}

struct Bot {
    session: Option<Session>,
    started: Instant,
    joined: bool,
    welcomed_at: Option<Instant>,
    last_snapshot: Option<(u64, Instant)>,
    next_move: Instant,
    next_ping: Instant,
    behaviour: Behaviour,
    lockstep: Option<crate::lockstep::Lockstep>,
    sent_frame: u64,
    done: bool,
}

fn percentiles(h: &Option<Histogram<u64>>, qs: &[f64]) -> Vec<f64> {
    qs.iter()
        .map(|q| {
            h.as_ref()
                .map_or(0.0, |h| h.value_at_quantile(*q) as f64 / 1000.0)
        })
        .collect()
}

/// A login done off the bots' loop: the bot's index, how long it took, and
/// the login.
type LoggedIn = (usize, Duration, Result<Login, SessionError>);

/// Logs `mine` in at the ramp's pace on a thread of its own, so that slow
/// HTTP answers never stall the loop that steps the bots.
fn logins(
    config: &LoadConfig,
    mine: Vec<usize>,
    t0: Instant,
    stop: Arc<AtomicBool>,
) -> std::sync::mpsc::Receiver<LoggedIn> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (server, seed, ramp) = (config.server.clone(), config.seed, config.ramp.max(0.001));
    std::thread::spawn(move || {
        for index in mine {
            let due = t0 + Duration::from_secs_f64(index as f64 / ramp);
            while Instant::now() < due {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep((due - Instant::now()).min(Duration::from_millis(20)));
            }
            let began = Instant::now();
            let result = login(&server, &format!("bot-{seed}-{index}"));
            if tx.send((index, began.elapsed(), result)).is_err() {
                return;
            }
        }
    });
    rx
}

fn worker(
    config: &LoadConfig,
    mine: Vec<usize>,
    live: &Live,
    stop: &Arc<AtomicBool>,
    t0: Instant,
    rosters: &Rosters,
) -> Tally {
    let mut tally = Tally {
        login: Some(histogram()),
        connect: Some(histogram()),
        rtt: Some(histogram()),
        rtt_loop: Some(histogram()),
        interval: Some(histogram()),
        ..Tally::default()
    };
    let mut bots: Vec<Bot> = Vec::new();
    let logged_in = logins(config, mine, t0, stop.clone());
    let end = t0 + config.duration;
    let fail = |tally: &mut Tally, live: &Live, reason: String| {
        *tally.failed.entry(reason).or_default() += 1;
        live.failed.fetch_add(1, Ordering::Relaxed);
    };
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        // Start the bots whose login is back.
        for (index, took, result) in logged_in.try_iter() {
            match result.and_then(|l| Session::begin(&l)) {
                Ok(session) => {
                    tally
                        .login
                        .as_mut()
                        .expect("set")
                        .record(took.as_micros().max(1) as u64)
                        .ok();
                    bots.push(Bot {
                        session: Some(session),
                        started: Instant::now(),
                        joined: false,
                        welcomed_at: None,
                        last_snapshot: None,
                        next_move: now,
                        next_ping: now,
                        behaviour: Behaviour::new(config.scenario, index, config.seed),
                        lockstep: config.tables.clone().map(|tables| {
                            crate::lockstep::Lockstep::new(tables, config.seed ^ index as u64, 0)
                        }),
                        sent_frame: u64::MAX,
                        done: false,
                    });
                }
                Err(error) => fail(&mut tally, live, format!("login: {error}")),
            }
        }
        for bot in bots.iter_mut().filter(|b| !b.done) {
            let Some(session) = bot.session.as_mut() else {
                continue;
            };
            // A ping leaves with this pump's flush, not the next pass's (a
            // pass over a thousand bots takes milliseconds).
            if bot.welcomed_at.is_some() && now >= bot.next_ping {
                bot.next_ping = now + Duration::from_secs(1);
                session.send(Body::Ping(proto::Ping {
                    client_time_us: micros(),
                }));
            }
            if let Err(error) = session.pump() {
                fail(&mut tally, live, format!("transport: {error}"));
                bot.done = true;
                continue;
            }
            if let Some(reason) = session.disconnected.clone().or_else(|| {
                session
                    .kicked
                    .as_ref()
                    .map(|k| format!("kicked: {}", k.detail))
            }) {
                if bot.welcomed_at.is_some() {
                    tally.disconnects += 1;
                    live.connected.fetch_sub(1, Ordering::Relaxed);
                } else {
                    fail(&mut tally, live, format!("connect: {reason}"));
                }
                bot.done = true;
                continue;
            }
            if !session.is_connected() {
                if bot.started.elapsed() > Duration::from_secs(15) {
                    fail(&mut tally, live, "connect: timed out".into());
                    bot.done = true;
                }
                continue;
            }
            if !bot.joined {
                // Fighters need the warrior's slash; roam100 runners their
                // sting and mend; the others walk.
                let class = match config.scenario {
                    Scenario::Fight | Scenario::Arena | Scenario::Team => "warrior",
                    Scenario::Roam100 => "runner",
                    Scenario::Roam | Scenario::Lockstep => "mage",
                };
                session.send(Body::Join(proto::JoinWorld {
                    class: class.into(),
                    world: config.scenario.world().into(),
                }));
                bot.joined = true;
            }
            if bot.welcomed_at.is_none()
                && let Some(refused) = session
                    .responses
                    .iter()
                    .find(|r| r.code != proto::ResultCode::Ok as i32)
            {
                fail(&mut tally, live, format!("join: {}", refused.reason));
                bot.done = true;
                continue;
            }
            if config.scenario == Scenario::Lockstep
                && let Some(lockstep) = bot.lockstep.as_mut()
            {
                if let Some(welcome) = &session.welcome {
                    lockstep.welcome(welcome);
                }
                for body in std::mem::take(&mut session.frame_messages) {
                    if let Err(error) = lockstep.receive(body) {
                        fail(&mut tally, live, format!("lockstep: {error}"));
                        bot.done = true;
                        break;
                    }
                }
                let frame = lockstep.frame();
                if frame != bot.sent_frame
                    && let Some(uplink) = lockstep.uplink(tessera_sim::PlayerId(session.player))
                {
                    session.send(Body::Frames(uplink.encode()));
                    bot.sent_frame = frame;
                }
            }
            // In the world: a snapshot (state sync) or the room's history
            // (frame sync) has arrived.
            let arrived = match config.scenario {
                Scenario::Lockstep => bot.lockstep.as_ref().is_some_and(|l| l.frame() > 0),
                _ => session.snapshot.is_some(),
            };
            if bot.welcomed_at.is_none() && session.welcome.is_some() && arrived {
                bot.welcomed_at = Some(Instant::now());
                tally
                    .connect
                    .as_mut()
                    .expect("set")
                    .record(bot.started.elapsed().as_micros().max(1) as u64)
                    .ok();
                live.connected.fetch_add(1, Ordering::Relaxed);
            }
            if bot.welcomed_at.is_none() {
                continue;
            }
            if let Some(snapshot) = session.snapshot.as_ref() {
                let tick = snapshot.tick;
                match bot.last_snapshot {
                    Some((last, at)) if tick > last => {
                        tally
                            .interval
                            .as_mut()
                            .expect("set")
                            .record(at.elapsed().as_micros().max(1) as u64)
                            .ok();
                        bot.last_snapshot = Some((tick, Instant::now()));
                    }
                    None => bot.last_snapshot = Some((tick, Instant::now())),
                    _ => {}
                }
            }
            let taken = micros();
            for pong in session.pongs.drain(..) {
                let arrived = pong.arrived_us.unwrap_or(taken).min(taken);
                let record = |histogram: &mut Option<Histogram<u64>>, at: u64| {
                    histogram
                        .as_mut()
                        .expect("set")
                        .record(at.saturating_sub(pong.sent_us).max(1))
                        .ok();
                };
                record(&mut tally.rtt, arrived);
                record(&mut tally.rtt_loop, taken);
            }
            session.responses.clear();
            // At the input rate, not every pass: a skill per pass would be
            // a flood (and get the bot kicked).
            if now >= bot.next_move && config.scenario != Scenario::Lockstep {
                bot.next_move = now + Duration::from_millis(50);
                let stepped = bot.behaviour.step(session, rosters, now);
                tally.events += stepped.events;
                tally.room_results += u64::from(stepped.room_result);
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    for bot in &mut bots {
        if let Some(session) = bot.session.take() {
            tally.bytes_in += session.bytes_in;
            tally.bytes_out += session.bytes_out;
            if let Some(at) = bot.welcomed_at {
                tally.bot_seconds += at.elapsed().as_secs_f64();
                if let Some(snapshot) = &session.snapshot {
                    tally.views.push(snapshot.entities.len());
                }
            }
            if let Some(lockstep) = &bot.lockstep {
                tally.frames += lockstep.frame();
                tally.desyncs += lockstep.desyncs + lockstep.server_desyncs.len() as u64;
            }
            let mut session = session;
            session.disconnect();
        }
    }
    tally
}

/// Runs a load test; `progress` is called about once a second.
pub fn run(config: &LoadConfig, mut progress: impl FnMut(&Live, Duration)) -> Report {
    let live = Arc::new(Live::default());
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let cpu0 = process_cpu();
    let threads = config.threads.clamp(1, config.bots.max(1));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let rosters = Rosters::default();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let mine: Vec<usize> = (0..config.bots).filter(|i| i % threads == t).collect();
            let (config, live, stop, tally, rosters) = (
                config.clone(),
                live.clone(),
                stop.clone(),
                tally.clone(),
                rosters.clone(),
            );
            std::thread::spawn(move || {
                let result = worker(&config, mine, &live, &stop, t0, &rosters);
                tally
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .merge(result);
            })
        })
        .collect();
    while handles.iter().any(|h| !h.is_finished()) {
        std::thread::sleep(Duration::from_millis(250));
        if t0.elapsed().as_millis() % 1_000 < 250 {
            progress(&live, t0.elapsed());
        }
    }
    for handle in handles {
        let _ = handle.join();
    }
    let seconds = t0.elapsed().as_secs_f64();
    let cpu = match (cpu0, process_cpu()) {
        (Some(a), Some(b)) => (b - a).as_secs_f64(),
        _ => 0.0,
    };
    let tally = std::mem::take(&mut *tally.lock().unwrap_or_else(|p| p.into_inner()));
    let bot_seconds = tally.bot_seconds.max(1e-9);
    let p3 = |h: &Option<Histogram<u64>>| {
        let v = percentiles(h, &[0.5, 0.95, 0.99]);
        [v[0], v[1], v[2]]
    };
    let interval = percentiles(&tally.interval, &[0.5, 0.99]);
    Report {
        scenario: config.scenario,
        bots: config.bots,
        connected: tally.connect.as_ref().map_or(0, |h| h.len()),
        failed: tally.failed.clone(),
        disconnects: tally.disconnects,
        login_ms: p3(&tally.login),
        connect_ms: p3(&tally.connect),
        rtt_ms: p3(&tally.rtt),
        rtt_loop_ms: p3(&tally.rtt_loop),
        snapshot_interval_ms: [interval[0], interval[1]],
        bytes_per_bot_sec: [
            tally.bytes_in as f64 / bot_seconds,
            tally.bytes_out as f64 / bot_seconds,
        ],
        events: tally.events,
        seconds,
        bot_cpu_us_per_bot_sec: cpu * 1e6 / bot_seconds,
        room_results: tally.room_results,
        frames: tally.frames,
        desyncs: tally.desyncs,
        view_entities: [
            tally.views.iter().min().map_or(0.0, |v| *v as f64),
            tally.views.iter().sum::<usize>() as f64 / tally.views.len().max(1) as f64,
        ],
    }
}
