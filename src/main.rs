//! The `tessera` binary: `tessera [serve]` runs a node, `tessera replay FILE`
//! checks a recording.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand};
use tessera::{config::NodeConfig, logging, node, replay_cmd, signals, tables_cmd};

// Snapshots are encoded on world threads and freed on socket threads,
// thousands a second: glibc's allocator spent ~15 % of a node's CPU on it
// (README: where the time goes); mimalloc frees across threads cheaply.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    Serve(Box<ServeArgs>),
    /// Re-simulate a replay file and compare every tick's state hash.
    Replay {
        /// The replay file.
        file: PathBuf,
        /// The tables it was recorded with (read only if it used tables).
        #[arg(long, default_value = tables_cmd::DEFAULT_TABLES_DIR)]
        tables: PathBuf,
    },
    /// Check, dump or create the game's Excel tables.
    #[command(subcommand)]
    Tables(TablesCommand),
}

#[derive(Subcommand, Debug)]
enum TablesCommand {
    /// Load and validate; print every problem. Exit 0 valid, 1 invalid.
    Check {
        /// Directory of .xlsx workbooks.
        #[arg(default_value = tables_cmd::DEFAULT_TABLES_DIR)]
        dir: PathBuf,
    },
    /// Print every sheet as CSV (to review a change to a binary workbook).
    Dump {
        /// Directory of .xlsx workbooks.
        #[arg(default_value = tables_cmd::DEFAULT_TABLES_DIR)]
        dir: PathBuf,
    },
    /// Write the default game's workbooks.
    Init {
        /// Directory to write into.
        #[arg(default_value = tables_cmd::DEFAULT_TABLES_DIR)]
        dir: PathBuf,
        /// Overwrite existing workbooks.
        #[arg(long)]
        force: bool,
        /// Write the roam100 benchmark game instead, for this many groups
        /// of 100 players.
        #[arg(long, value_name = "GROUPS")]
        roam100: Option<usize>,
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
    /// First UDP socket (port 0: pick free ports and print them).
    #[arg(long, env = "TESSERA_UDP")]
    udp: Option<SocketAddr>,
    /// The IP clients reach the UDP sockets at, if not the bound one.
    #[arg(long, env = "TESSERA_UDP_PUBLIC_IP")]
    udp_public_ip: Option<std::net::IpAddr>,
    /// Netcode sockets, on consecutive ports from --udp (1,024 clients each).
    #[arg(long, env = "TESSERA_UDP_SOCKETS")]
    udp_sockets: Option<usize>,
    /// Seconds a connect token from /v1/login stays valid.
    #[arg(long, env = "TESSERA_CONNECT_TOKEN_SECS")]
    connect_token_secs: Option<u64>,
    /// Most entities in one player's view.
    #[arg(long, env = "TESSERA_VIEW_ENTITIES")]
    view_entities: Option<usize>,
    /// Under overload, a snapshot to each player at least every this many
    /// ticks (1: never thinned).
    #[arg(long, env = "TESSERA_MAX_SNAPSHOT_INTERVAL_TICKS")]
    max_snapshot_interval_ticks: Option<u32>,
    /// World worker threads (0: one per core).
    #[arg(long, env = "TESSERA_WORKERS")]
    workers: Option<usize>,
    /// The embedded store's file (store = "embedded").
    #[arg(long, env = "TESSERA_STORE_PATH")]
    store_path: Option<PathBuf>,
    /// Record every world's replay into this directory.
    #[arg(long, env = "TESSERA_RECORD_DIR")]
    record: Option<PathBuf>,
    /// Directory of .xlsx game tables.
    #[arg(long, env = "TESSERA_TABLES")]
    tables: Option<PathBuf>,
    /// Seed of the first world's RNG.
    #[arg(long, env = "TESSERA_SEED")]
    seed: Option<u64>,
    /// Synthetic in-process players per zone world.
    #[arg(long, env = "TESSERA_BOTS")]
    bots: Option<u64>,
    /// Redis for sessions, presence, routing, the node registry and the
    /// write-behind cache ("" = none: a single node on its own).
    #[arg(long, env = "TESSERA_REDIS_URL")]
    redis_url: Option<String>,
    /// Prefix of this cluster's Redis keys.
    #[arg(long, env = "TESSERA_REDIS_PREFIX")]
    redis_prefix: Option<String>,
    /// This node's id in the cluster ("" = a random one).
    #[arg(long, env = "TESSERA_NODE_ID")]
    node_id: Option<String>,
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => NodeConfig::load(path)?,
        None => NodeConfig::defaults()?,
    };
    if let Some(http) = args.http {
        config.http = http;
    }
    if let Some(udp) = args.udp {
        config.udp = udp;
    }
    if let Some(ip) = args.udp_public_ip {
        config.udp_public_ip = Some(ip);
    }
    if let Some(sockets) = args.udp_sockets {
        config.udp_sockets = sockets;
    }
    if let Some(secs) = args.connect_token_secs {
        config.connect_token_secs = secs;
    }
    if let Some(view) = args.view_entities {
        config.view_entities = view;
    }
    if let Some(ticks) = args.max_snapshot_interval_ticks {
        config.max_snapshot_interval_ticks = ticks;
    }
    if let Some(workers) = args.workers {
        config.workers = workers;
    }
    if let Some(path) = args.store_path {
        config.store_path = path;
    }
    if let Some(dir) = args.record {
        config.record_dir = dir;
    }
    if let Some(tables) = args.tables {
        config.tables_dir = tables;
    }
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    if let Some(bots) = args.bots {
        config.bots = bots;
    }
    if let Some(url) = args.redis_url {
        config.redis_url = url;
    }
    if let Some(prefix) = args.redis_prefix {
        config.redis_prefix = prefix;
    }
    if let Some(id) = args.node_id {
        config.node_id = id;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("tessera-io")
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let signals = signals::Signals::install()?;
        node::serve(config, signals).await
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Replay { file, tables }) => {
            logging::init("warn");
            replay_cmd::run(&file, &tables)
        }
        Some(Command::Tables(command)) => {
            logging::init("warn");
            match command {
                TablesCommand::Check { dir } => tables_cmd::check(&dir),
                TablesCommand::Dump { dir } => tables_cmd::dump(&dir),
                TablesCommand::Init {
                    dir,
                    force,
                    roam100,
                } => tables_cmd::init(&dir, force, roam100),
            }
        }
        Some(Command::Serve(args)) => run_serve(*args),
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
