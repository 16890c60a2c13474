//! `tessera replay FILE`: re-simulate a recording and compare every tick's hash.

use std::{
    fs::File,
    path::Path,
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};

use tessera_sim::replay::{ReplayReader, verify};
use tessera_tables::{Tables, load_dir};

/// Runs the replay and prints the outcome. Exit codes: 0 all ticks match,
/// 1 a tick diverged, 2 the file could not be replayed. `tables_dir` is read
/// only when the replay was recorded with tables.
pub fn run(path: &Path, tables_dir: &Path) -> ExitCode {
    let fail = |message: String| {
        eprintln!("error: {message}");
        ExitCode::from(2)
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) => return fail(format!("cannot open {}: {error}", path.display())),
    };
    let reader = match ReplayReader::new(file) {
        Ok(reader) => reader,
        Err(error) => return fail(format!("{}: {error}", path.display())),
    };
    let header = reader.header();
    println!(
        "replay {}: world {:?} seed {} at {} Hz, tables {:016x}, recorded by tessera-sim {}",
        path.display(),
        header.spec.kind,
        header.spec.seed,
        header.spec.tick_hz,
        header.tables_hash,
        header.recorded_by
    );
    let tables = if header.tables_hash == 0 {
        Arc::new(Tables::default())
    } else {
        match load_dir(tables_dir) {
            Ok(tables) => Arc::new(tables),
            Err(report) => {
                return fail(format!(
                    "the tables in {} are invalid:\n{report}",
                    tables_dir.display()
                ));
            }
        }
    };
    let started = Instant::now();
    let mut last_progress = started;
    let result = verify(reader, tables, |ticks| {
        // Long replays show progress about once a second, on stderr.
        if ticks % 256 == 0 && last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            eprintln!("  ... {ticks} ticks replayed");
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(report) => {
            let rate = report.ticks as f64 / seconds.max(1e-9);
            println!(
                "replayed {} ticks in {seconds:.3} s ({rate:.0} ticks/s)",
                report.ticks
            );
            match report.divergence {
                None => {
                    println!("all {} tick hashes match", report.ticks);
                    ExitCode::SUCCESS
                }
                Some(divergence) => {
                    println!("DIVERGED: {divergence}");
                    ExitCode::from(1)
                }
            }
        }
        Err(error) => fail(format!("{}: {error}", path.display())),
    }
}
