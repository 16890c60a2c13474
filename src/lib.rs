//! # tessera (the node)
//!
//! Composition only: configuration, the scheduler that ticks worlds on worker
//! threads, replay recording, the HTTP API and the CLI commands. Gameplay
//! lives in `tessera-sim`, networking in `tessera-net`, storage in
//! `tessera-persistence`, game data in `tessera-tables`.

pub mod accounts;
pub mod arena;
pub mod chaos;
pub mod cluster;
pub mod config;
pub mod crashes;
pub mod http;
pub mod lobby;
pub mod logging;
pub mod login;
pub mod metrics;
pub mod node;
pub mod persist;
pub mod play;
pub mod profiles;
pub mod replay_cmd;
pub mod replays;
pub mod rooms;
pub mod scheduler;
pub mod sessions;
pub mod signals;
pub mod tables_cmd;
pub mod zone_worlds;
pub mod zones;
