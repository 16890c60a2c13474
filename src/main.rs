//! The `tessera` binary: `tessera [serve]` runs a node, `tessera replay FILE`
//! checks a recording.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand};
use tessera::{config::NodeConfig, logging, node, replay_cmd};

#[derive(Parser, Debug)]
#[command(name = "tessera", version, about = "Tessera game simulation server")]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a node (the default).
    Serve(ServeArgs),
    /// Re-simulate a replay file and compare every tick's state hash.
    Replay {
        /// The replay file.
        file: PathBuf,
    },
}

#[derive(Args, Debug, Default)]
struct ServeArgs {
    /// A complete config file (defaults: assets/config/tessera.toml, built in).
    #[arg(long, env = "TESSERA_CONFIG")]
    config: Option<PathBuf>,
    /// HTTP listen address (port 0: pick a free port and print it).
    #[arg(long, env = "TESSERA_HTTP")]
    http: Option<SocketAddr>,
    /// World worker threads (0: one per core).
    #[arg(long, env = "TESSERA_WORKERS")]
    workers: Option<usize>,
    /// Record every world's replay into this directory.
    #[arg(long, env = "TESSERA_RECORD_DIR")]
    record: Option<PathBuf>,
    /// Synthetic in-process players per configured world.
    #[arg(long, env = "TESSERA_BOTS")]
    bots: Option<u64>,
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => NodeConfig::load(path)?,
        None => NodeConfig::defaults(),
    };
    if let Some(http) = args.http {
        config.http = http;
    }
    if let Some(workers) = args.workers {
        config.workers = workers;
    }
    if let Some(dir) = args.record {
        config.record_dir = dir;
    }
    if let Some(bots) = args.bots {
        config.worlds.iter_mut().for_each(|w| w.bots = bots);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tessera-io")
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let signals = node::ShutdownSignals::install()?;
        node::serve(config, signals.wait()).await
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Replay { file }) => {
            logging::init("warn");
            replay_cmd::run(&file)
        }
        Some(Command::Serve(args)) => run_serve(args),
        None => run_serve(cli.serve),
    }
}

fn run_serve(args: ServeArgs) -> ExitCode {
    logging::init("info");
    match serve(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
