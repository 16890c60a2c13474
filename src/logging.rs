//! `tracing` set-up: `RUST_LOG`-style filter (`TESSERA_LOG` wins), plain text
//! when stdout is not a terminal so logs stay greppable.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `default` applies when no filter is set.
pub fn init(default: &str) {
    let filter = std::env::var("TESSERA_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| default.to_string());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|error| {
        eprintln!("warning: bad log filter {filter:?} ({error}); using {default:?}");
        EnvFilter::new(default)
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal())
        .with_target(false)
        .try_init();
}
