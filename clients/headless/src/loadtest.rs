//! Many bots against one node, from a few threads: login, connect, join,
//! play a scenario, and measure what players would feel.
//!
//! Each worker thread owns a share of the bots and steps them all in one
//! loop (no thread per bot). Bots start at `ramp` per second.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::behave::Rosters;

mod logins;
mod worker;

pub use logins::device_id;

/// What the bots do once in the world.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
pub enum Scenario {
    /// Walk between random waypoints; a move each world tick, a ping a second.
    Roam,
    /// Walk to the nearest NPC in view and hit it; the node respawns a
    /// fallen bot, which goes again.
    Fight,
    /// Queue for the `arena` room kind, fight the match, report its result.
    Arena,
    /// Play the `duel_lockstep` frame-sync room, running the same `sim`.
    Lockstep,
    /// The standard comparison workload (node on `tessera tables init
    /// --roam100 GROUPS` tables): groups of 100 around one spawn point each,
    /// all seeing each other; a move each tick (50 ms), a ping a second, and each
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

impl Scenario {
    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Roam => "roam",
            Scenario::Fight => "fight",
            Scenario::Arena => "arena",
            Scenario::Lockstep => "lockstep",
            Scenario::Roam100 => "roam100",
            Scenario::Team => "team",
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
    /// Server messages the bots received.
    pub messages: AtomicU64,
    /// Round trips (µs, to the pong's arrival) since the display last took
    /// them.
    rtt_recent: Mutex<Vec<u64>>,
}

/// Round trips the live display keeps between two looks.
const LIVE_RTT_KEPT: usize = 100_000;

impl Live {
    fn rtt(&self, micros: u64) {
        let mut recent = self.rtt_recent.lock().unwrap_or_else(|p| p.into_inner());
        // Unread (a caller with no display): a sample is enough.
        if recent.len() < LIVE_RTT_KEPT {
            recent.push(micros);
        }
    }

    /// The p50 and p99 round trip, ms, of the pongs since the last call
    /// (none if no pong came back).
    pub fn take_rtt(&self) -> Option<(f64, f64)> {
        let mut recent =
            std::mem::take(&mut *self.rtt_recent.lock().unwrap_or_else(|p| p.into_inner()));
        if recent.is_empty() {
            return None;
        }
        recent.sort_unstable();
        let at = |q: f64| recent[((recent.len() - 1) as f64 * q).round() as usize] as f64 / 1e3;
        Some((at(0.5), at(0.99)))
    }
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
    /// Bots back in the world after a drop (a fresh token for their
    /// session, or a new login, then connect and join again).
    pub reconnects: u64,
    /// From a drop to being back in the world, ms: p50, p95, p99.
    pub reconnect_ms: [f64; 3],
    /// Login latency, ms: p50, p95, p99.
    pub login_ms: [f64; 3],
    /// Connect latency, ms: p50, p95, p99: from the login's answer to the
    /// first snapshot (frame sync: the first frame) in the world.
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
    /// Deaths the bots' avatars caused (NPCs, in `fight`).
    pub kills: u64,
    /// Bots whose avatar took a skill hit, damage or healing (in `roam100`
    /// each bot stings and mends itself once a second).
    pub bots_hit: u64,
    /// Bots whose avatar was at least a metre from where it entered the
    /// world at some point (checked once a second, and when it left or the
    /// run ended).
    pub bots_moved: u64,
    /// What went wrong without ending a bot, by kind: snapshots that could
    /// not be applied, messages that could not be decoded, commands the
    /// node refused (by its reason).
    pub errors: BTreeMap<String, u64>,
    /// Wall time of the run, s.
    pub seconds: f64,
    /// CPU time of this bot process per bot-second, µs (how cheap the tool is).
    pub bot_cpu_us_per_bot_sec: f64,
    /// Arena: rooms whose result reached a bot (counted once per bot).
    pub room_results: u64,
    /// Lockstep: the frame each bot's simulation reached, summed (a late
    /// joiner's count starts at the room's checkpoint), and state-hash
    /// mismatches
    /// (seen by a bot against a bundle's hash, or reported by the server).
    pub frames: u64,
    /// Lockstep: see `frames`.
    pub desyncs: u64,
    /// Entities in each connected bot's view at the end (itself included):
    /// fewest, mean.
    pub view_entities: [f64; 2],
    /// Share of the entities in view that each snapshot brought news of
    /// (entered, changed or moved), %: in a crowd where everyone moves,
    /// how often a player sees each other player move, against the
    /// snapshot rate (100 % when every snapshot updates everyone).
    pub view_refreshed_pct: f64,
}

impl Report {
    /// Bots that failed, all reasons together.
    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }

    /// Whether at most `max_failed_pct` % of the bots asked for failed
    /// (the CLI's exit status).
    pub fn passes(&self, max_failed_pct: f64) -> bool {
        within(self.failed_total(), self.bots, max_failed_pct)
    }
}

/// Whether `failed` of `bots` is at most `max_failed_pct` %.
fn within(failed: u64, bots: usize, max_failed_pct: f64) -> bool {
    failed as f64 <= max_failed_pct / 100.0 * bots as f64
}

/// `total` per bot-second; 0 when no bot was in the world (nothing to
/// share it over: the run's CPU would otherwise show as ~10^14 µs).
fn per_bot_second(total: f64, bot_seconds: f64) -> f64 {
    if bot_seconds > 0.0 {
        total / bot_seconds
    } else {
        0.0
    }
}

/// Why a load test could not run.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The latency histograms could not be made.
    #[error("cannot make a histogram: {0}")]
    Histogram(#[from] hdrhistogram::CreationError),
}

/// An empty histogram of 1 µs to 60 s at 3 significant digits: every tally
/// clones one, so all have the same bounds.
fn histogram() -> Result<Histogram<u64>, hdrhistogram::CreationError> {
    Histogram::new_with_bounds(1, 60_000_000, 3)
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

/// What workers counted; merged into one at the end.
struct Tally {
    failed: BTreeMap<String, u64>,
    disconnects: u64,
    reconnects: u64,
    reconnect: Histogram<u64>,
    kills: u64,
    bots_hit: u64,
    bots_moved: u64,
    errors: BTreeMap<String, u64>,
    login: Histogram<u64>,
    connect: Histogram<u64>,
    rtt: Histogram<u64>,
    rtt_loop: Histogram<u64>,
    interval: Histogram<u64>,
    bytes_in: u64,
    bytes_out: u64,
    view_updates: u64,
    view_entries: u64,
    events: u64,
    bot_seconds: f64,
    room_results: u64,
    frames: u64,
    desyncs: u64,
    views: Vec<usize>,
}

impl Tally {
    /// An empty tally whose histograms are copies of `empty`.
    fn new(empty: &Histogram<u64>) -> Self {
        Self {
            failed: BTreeMap::new(),
            disconnects: 0,
            reconnects: 0,
            reconnect: empty.clone(),
            kills: 0,
            bots_hit: 0,
            bots_moved: 0,
            errors: BTreeMap::new(),
            login: empty.clone(),
            connect: empty.clone(),
            rtt: empty.clone(),
            rtt_loop: empty.clone(),
            interval: empty.clone(),
            bytes_in: 0,
            bytes_out: 0,
            view_updates: 0,
            view_entries: 0,
            events: 0,
            bot_seconds: 0.0,
            room_results: 0,
            frames: 0,
            desyncs: 0,
            views: Vec::new(),
        }
    }
}

impl Tally {
    /// Counts `n` errors of `kind`.
    fn error(&mut self, kind: &str, n: u64) {
        if n > 0 {
            *self.errors.entry(kind.to_string()).or_default() += n;
        }
    }

    fn merge(&mut self, other: Tally) {
        for (reason, count) in other.failed {
            *self.failed.entry(reason).or_default() += count;
        }
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
        self.kills += other.kills;
        self.bots_hit += other.bots_hit;
        self.bots_moved += other.bots_moved;
        self.disconnects += other.disconnects;
        self.reconnects += other.reconnects;
        for (mine, theirs) in [
            (&mut self.reconnect, other.reconnect),
            (&mut self.login, other.login),
            (&mut self.connect, other.connect),
            (&mut self.rtt, other.rtt),
            (&mut self.rtt_loop, other.rtt_loop),
            (&mut self.interval, other.interval),
        ] {
            // Value by value, saturating: nothing to fail on (every
            // tally's histograms have the same bounds, so nothing saturates).
            for value in theirs.iter_recorded() {
                mine.saturating_record_n(value.value_iterated_to(), value.count_at_value());
            }
        }
        self.bytes_in += other.bytes_in;
        self.view_updates += other.view_updates;
        self.view_entries += other.view_entries;
        self.bytes_out += other.bytes_out;
        self.events += other.events;
        self.bot_seconds += other.bot_seconds;
        self.room_results += other.room_results;
        self.frames += other.frames;
        self.desyncs += other.desyncs;
        self.views.extend(other.views);
    }
}

fn percentiles(h: &Histogram<u64>, qs: &[f64]) -> Vec<f64> {
    // An empty histogram gives 0 for every quantile.
    qs.iter()
        .map(|q| h.value_at_quantile(*q) as f64 / 1000.0)
        .collect()
}

/// Runs a load test; `progress` is called about once a second.
pub fn run(
    config: &LoadConfig,
    mut progress: impl FnMut(&Live, Duration),
) -> Result<Report, LoadError> {
    let empty = histogram()?;
    let live = Arc::new(Live::default());
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let cpu0 = process_cpu();
    let threads = config.threads.clamp(1, config.bots.max(1));
    let tally = Arc::new(Mutex::new(Tally::new(&empty)));
    let rosters = Rosters::default();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let mine: Vec<usize> = (0..config.bots).filter(|i| i % threads == t).collect();
            let (config, live, stop, tally, rosters, empty) = (
                config.clone(),
                live.clone(),
                stop.clone(),
                tally.clone(),
                rosters.clone(),
                empty.clone(),
            );
            std::thread::spawn(move || {
                let result = worker::worker(&config, mine, &live, &stop, t0, &rosters, &empty);
                tally
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .merge(result);
            })
        })
        .collect();
    let mut next_progress = Duration::from_secs(1);
    while handles.iter().any(|h| !h.is_finished()) {
        std::thread::sleep(Duration::from_millis(250));
        let elapsed = t0.elapsed();
        if elapsed >= next_progress {
            progress(&live, elapsed);
            next_progress += Duration::from_secs(1);
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
    let tally = std::mem::replace(
        &mut *tally.lock().unwrap_or_else(|p| p.into_inner()),
        Tally::new(&empty),
    );
    let bot_seconds = tally.bot_seconds;
    let p3 = |h: &Histogram<u64>| {
        let v = percentiles(h, &[0.5, 0.95, 0.99]);
        [v[0], v[1], v[2]]
    };
    let interval = percentiles(&tally.interval, &[0.5, 0.99]);
    Ok(Report {
        scenario: config.scenario,
        bots: config.bots,
        connected: tally.connect.len(),
        failed: tally.failed.clone(),
        disconnects: tally.disconnects,
        reconnects: tally.reconnects,
        reconnect_ms: p3(&tally.reconnect),
        kills: tally.kills,
        bots_hit: tally.bots_hit,
        bots_moved: tally.bots_moved,
        errors: tally.errors.clone(),
        login_ms: p3(&tally.login),
        connect_ms: p3(&tally.connect),
        rtt_ms: p3(&tally.rtt),
        rtt_loop_ms: p3(&tally.rtt_loop),
        snapshot_interval_ms: [interval[0], interval[1]],
        bytes_per_bot_sec: [
            per_bot_second(tally.bytes_in as f64, bot_seconds),
            per_bot_second(tally.bytes_out as f64, bot_seconds),
        ],
        events: tally.events,
        seconds,
        bot_cpu_us_per_bot_sec: per_bot_second(cpu * 1e6, bot_seconds),
        room_results: tally.room_results,
        frames: tally.frames,
        desyncs: tally.desyncs,
        view_entities: [
            tally.views.iter().min().map_or(0.0, |v| *v as f64),
            tally.views.iter().sum::<usize>() as f64 / tally.views.len().max(1) as f64,
        ],
        view_refreshed_pct: 100.0 * tally.view_updates as f64 / tally.view_entries.max(1) as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_live_display_takes_the_round_trips_since_it_last_looked() {
        let live = Live::default();
        assert_eq!(live.take_rtt(), None);
        for micros in (1..=100).map(|ms| ms * 1_000) {
            live.rtt(micros);
        }
        assert_eq!(live.take_rtt(), Some((51.0, 99.0)));
        assert_eq!(live.take_rtt(), None, "taken");
    }

    #[test]
    fn a_run_passes_with_at_most_its_share_of_failed_bots() {
        assert!(within(10, 1_000, 1.0));
        assert!(!within(11, 1_000, 1.0));
        assert!(!within(1, 1, 1.0));
        assert!(within(0, 0, 1.0));
        assert!(within(5, 10, 50.0));
    }

    /// Against an address where no node listens: every bot fails, the
    /// ones that tried to log in with the refusal, the ones the run ended
    /// before (a ramp longer than the run) as not logged in, and the run
    /// does not pass.
    #[test]
    fn every_bot_that_never_got_in_counts_as_failed() {
        // A port just freed: nothing answers there.
        let server = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string();
        let config = LoadConfig {
            server,
            bots: 5,
            ramp: 0.5,
            scenario: Scenario::Roam,
            duration: Duration::from_secs(3),
            seed: 1,
            threads: 1,
            tables: None,
        };
        let report = run(&config, |_, _| {}).unwrap();
        assert_eq!(report.connected, 0);
        assert_eq!(report.failed_total(), 5, "{:?}", report.failed);
        let refused: u64 = report
            .failed
            .iter()
            .filter(|(reason, _)| reason.starts_with("login: "))
            .map(|(_, n)| n)
            .sum();
        // Bots 0 and 1 are due at 0 and 2 s; 2 to 4 after the run's end.
        assert_eq!(refused, 2, "{:?}", report.failed);
        assert_eq!(report.bot_cpu_us_per_bot_sec, 0.0, "no bot-seconds");
        assert_eq!(report.bytes_per_bot_sec, [0.0, 0.0]);
        assert_eq!(
            report
                .failed
                .get("not in the world at the end (not logged in)"),
            Some(&3),
            "{:?}",
            report.failed
        );
        assert!(!report.passes(1.0));
    }

    /// Merging workers' tallies keeps every recorded value: counts add up
    /// and percentiles are those of all the values together.
    #[test]
    fn merged_tallies_keep_every_latency() -> Result<(), LoadError> {
        let empty = histogram()?;
        let (mut one, mut two, mut all) =
            (Tally::new(&empty), Tally::new(&empty), Tally::new(&empty));
        for (i, value) in [120u64, 900, 4_500, 31_000, 59_999_000].iter().enumerate() {
            let tally = if i % 2 == 0 { &mut one } else { &mut two };
            tally.rtt.saturating_record(*value);
            all.rtt.saturating_record(*value);
        }
        one.merge(two);
        assert_eq!(one.rtt.len(), 5);
        for quantile in [0.0, 0.5, 0.99, 1.0] {
            assert_eq!(
                one.rtt.value_at_quantile(quantile),
                all.rtt.value_at_quantile(quantile),
                "quantile {quantile}"
            );
        }
        Ok(())
    }
}
