//! `tessera-bot`: load-test a node with headless bots and report what
//! players would feel.

use std::{
    io::IsTerminal, path::PathBuf, process::ExitCode, sync::atomic::Ordering, time::Duration,
};

use clap::Parser;
use tessera_bot::loadtest::{LoadConfig, Report, Scenario, run};

// A thousand bots decode and drop a snapshot each 20 times a second.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "tessera-bot",
    version,
    about = "Headless bots that load-test a Tessera node"
)]
struct Args {
    /// The node's HTTP address (the bots learn the UDP address from their tokens).
    #[arg(long, default_value = "http://127.0.0.1:7800")]
    server: String,
    /// Bots to run.
    #[arg(long, default_value_t = 100)]
    bots: usize,
    /// Bots started per second.
    #[arg(long, default_value_t = 200.0)]
    ramp: f64,
    /// What the bots do.
    #[arg(long, value_enum, default_value_t = Scenario::Roam)]
    scenario: Scenario,
    /// How long to run, e.g. 60s, 2m, 500ms.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// Seed for device ids and choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Worker threads (bots are spread over them; many bots per thread).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Also write the report here as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The game tables (the lockstep scenario runs the room's sim on them;
    /// they must be the node's).
    #[arg(long, default_value = "assets/tables")]
    tables: PathBuf,
    /// Exit non-zero when more than this percentage of bots failed.
    #[arg(long, default_value_t = 1.0)]
    max_failed_pct: f64,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(text.len()),
    );
    let value: f64 = number
        .parse()
        .map_err(|_| format!("not a duration: {text:?} (use e.g. 60s, 2m, 500ms)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown unit {other:?} (ms, s, m, h)")),
    };
    Ok(Duration::from_secs_f64(seconds))
}

fn print(report: &Report) {
    let failed = report.failed_total();
    println!(
        "scenario {:?}: {} bots, {} connected, {} failed, {} disconnects, {} reconnected, {:.1} s",
        report.scenario,
        report.bots,
        report.connected,
        failed,
        report.disconnects,
        report.reconnects,
        report.seconds
    );
    for (reason, count) in &report.failed {
        println!("  failed: {count} x {reason}");
    }
    if report.reconnects > 0 {
        let [b50, b95, b99] = report.reconnect_ms;
        println!(
            "back in ms    p50 {b50:.2}  p95 {b95:.2}  p99 {b99:.2}  (from a drop to the world)"
        );
    }
    let [l50, l95, l99] = report.login_ms;
    let [c50, c95, c99] = report.connect_ms;
    let [r50, r95, r99] = report.rtt_ms;
    println!("login ms      p50 {l50:.2}  p95 {l95:.2}  p99 {l99:.2}");
    println!("connect ms    p50 {c50:.2}  p95 {c95:.2}  p99 {c99:.2}");
    println!("rtt ms        p50 {r50:.2}  p95 {r95:.2}  p99 {r99:.2}  (to the pong's arrival)");
    let [q50, q95, q99] = report.rtt_loop_ms;
    println!(
        "rtt+loop ms   p50 {q50:.2}  p95 {q95:.2}  p99 {q99:.2}  (to the bot loop reading it)"
    );
    println!(
        "snapshot interval ms  p50 {:.2}  p99 {:.2}",
        report.snapshot_interval_ms[0], report.snapshot_interval_ms[1]
    );
    println!(
        "bytes/s per bot  in {:.0}  out {:.0}",
        report.bytes_per_bot_sec[0], report.bytes_per_bot_sec[1]
    );
    println!(
        "events {}  bot cpu {:.1} us per bot-second",
        report.events, report.bot_cpu_us_per_bot_sec
    );
    println!(
        "entities in view  fewest {:.0}  mean {:.1}  refreshed per snapshot {:.1} %",
        report.view_entities[0], report.view_entities[1], report.view_refreshed_pct
    );
    println!(
        "kills {}  bots hit {}  bots moved {}",
        report.kills, report.bots_hit, report.bots_moved
    );
    for (kind, count) in &report.errors {
        println!("  error: {count} x {kind}");
    }
    match report.scenario {
        Scenario::Arena | Scenario::Team => println!("room results {}", report.room_results),
        Scenario::Lockstep => println!(
            "frames simulated {}  desyncs {}",
            report.frames, report.desyncs
        ),
        _ => {}
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let server = args
        .server
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let config = LoadConfig {
        server,
        bots: args.bots,
        ramp: args.ramp,
        scenario: args.scenario,
        duration: args.duration,
        seed: args.seed,
        threads: args.threads,
        tables: None,
    };
    let mut config = config;
    if args.scenario == Scenario::Lockstep {
        match tessera_tables::load_dir(&args.tables) {
            Ok(tables) => config.tables = Some(std::sync::Arc::new(tables)),
            Err(report) => {
                eprintln!(
                    "error: the lockstep scenario needs the node's tables; {} is not loadable:\n{report}",
                    args.tables.display()
                );
                return ExitCode::from(2);
            }
        }
    }
    let tty = std::io::stdout().is_terminal();
    let bar = tty.then(|| {
        let bar = indicatif::ProgressBar::new(args.bots as u64);
        // A template it cannot read leaves indicatif's default bar.
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} connected {msg}",
        ) {
            bar.set_style(style);
        }
        bar
    });
    // Messages received and when, at the last progress line.
    let mut last = (0u64, std::time::Duration::ZERO);
    let report = match run(&config, |live, elapsed| {
        let connected = live.connected.load(Ordering::Relaxed);
        let failed = live.failed.load(Ordering::Relaxed);
        let messages = live.messages.load(Ordering::Relaxed);
        let per_sec = (messages - last.0) as f64 / (elapsed - last.1).as_secs_f64().max(1e-3);
        last = (messages, elapsed);
        let rtt = live.take_rtt().map_or_else(
            || "rtt -".to_string(),
            |(p50, p99)| format!("rtt p50 {p50:.1} p99 {p99:.1} ms"),
        );
        let status = format!("failed {failed}  {per_sec:.0} msgs/s  {rtt}");
        match &bar {
            Some(bar) => {
                bar.set_position(connected);
                bar.set_message(status);
            }
            None => println!(
                "t={:>4.0}s connected {connected}/{} {status}",
                elapsed.as_secs_f64(),
                args.bots
            ),
        }
    }) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    print(&report);
    if let Some(path) = &args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => {
                if let Err(error) = std::fs::write(path, text) {
                    eprintln!("error: cannot write {}: {error}", path.display());
                    return ExitCode::from(2);
                }
            }
            Err(error) => {
                eprintln!("error: cannot encode the report: {error}");
                return ExitCode::from(2);
            }
        }
    }
    if !report.passes(args.max_failed_pct) {
        eprintln!(
            "{} of {} bots failed (over {}%)",
            report.failed_total(),
            args.bots,
            args.max_failed_pct
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
