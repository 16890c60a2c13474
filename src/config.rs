//! Node configuration: built-in defaults (`assets/config/tessera.toml`), or
//! a complete file, with flags and environment variables on top (in `main`).

use std::{net::SocketAddr, path::PathBuf};

use serde::Deserialize;

/// The defaults, compiled in so a bare `cargo run --release` needs no file.
pub const DEFAULT_CONFIG: &str = include_str!("../assets/config/tessera.toml");

fn default_view_entities() -> usize {
    64
}

fn default_snapshot_bytes_per_sec() -> u64 {
    6_000
}

fn default_max_snapshot_interval_ticks() -> u32 {
    4
}

fn default_udp_receive_buffer_bytes() -> usize {
    tessera_net::transport::BufferSizes::DEFAULT.receive
}

fn default_udp_send_buffer_bytes() -> usize {
    tessera_net::transport::BufferSizes::DEFAULT.send
}

/// Everything a node needs to start.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// HTTP listen address.
    pub http: SocketAddr,
    /// Worker threads (0: one per core).
    pub workers: usize,
    /// First UDP socket address.
    pub udp: SocketAddr,
    /// The IP clients reach the UDP sockets at, when not the bound one
    /// (bound to 0.0.0.0, or behind NAT); tokens name it.
    #[serde(default)]
    pub udp_public_ip: Option<std::net::IpAddr>,
    /// Netcode sockets (consecutive ports from `udp`; all random when port 0).
    pub udp_sockets: usize,
    /// Kernel receive buffer asked for each UDP socket, bytes: what queues
    /// while the node is busy before the kernel drops datagrams (Linux caps
    /// it at `net.core.rmem_max` unless the node has `CAP_NET_ADMIN`).
    #[serde(default = "default_udp_receive_buffer_bytes")]
    pub udp_receive_buffer_bytes: usize,
    /// Kernel send buffer asked for each UDP socket, bytes (capped at
    /// `net.core.wmem_max` likewise).
    #[serde(default = "default_udp_send_buffer_bytes")]
    pub udp_send_buffer_bytes: usize,
    /// Most entities in one player's view (the nearest within 60 m).
    #[serde(default = "default_view_entities")]
    pub view_entities: usize,
    /// Snapshot bytes per second per player (near and changed first); one
    /// snapshot is at most one datagram (1,296 bytes), whatever this says.
    #[serde(default = "default_snapshot_bytes_per_sec")]
    pub snapshot_bytes_per_sec: u64,
    /// When a worker's ticks keep starting late, its players get a
    /// snapshot every second tick, then down to one every this many
    /// (rounded down to a power of two, at most 16; 1: never thinned, the
    /// world slows down instead).
    #[serde(default = "default_max_snapshot_interval_ticks")]
    pub max_snapshot_interval_ticks: u32,
    /// Netcode protocol id.
    pub protocol_id: u64,
    /// Connect token lifetime, seconds.
    pub connect_token_secs: u64,
    /// How long a dropped player's avatar waits for them, ms.
    pub reconnect_grace_ms: u64,
    /// Directory of `.xlsx` game tables.
    pub tables_dir: PathBuf,
    /// Poll interval for table changes, ms (0: reload on SIGHUP only).
    pub tables_poll_ms: u64,
    /// Seed of the first world.
    pub seed: u64,
    /// In-process synthetic players per zone world.
    pub bots: u64,
    /// `embedded` or `mongodb`.
    pub store: StoreKind,
    /// The embedded store's file.
    pub store_path: PathBuf,
    /// MongoDB connection string.
    pub mongodb_uri: String,
    /// MongoDB database.
    pub mongodb_database: String,
    /// Flush interval, ms.
    pub flush_interval_ms: u64,
    /// Pending players beyond which logins are refused.
    pub max_pending_players: usize,
    /// Redis URL for sessions, presence, routing, the node registry and the
    /// write-behind cache (empty: none).
    pub redis_url: String,
    /// Prefix of every key this node writes in Redis (nodes of one cluster
    /// share it; separate clusters or tests on one server use their own).
    pub redis_prefix: String,
    /// This node's id among others sharing the Redis (empty: random).
    pub node_id: String,
    /// How long a login session can fetch fresh connect tokens, seconds.
    pub session_ttl_secs: u64,
    /// Where to record replays (empty: nowhere).
    #[serde(default)]
    pub record_dir: PathBuf,
}

/// Which store keeps player progress.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// One redb file.
    Embedded,
    /// MongoDB.
    Mongodb,
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown or mistyped keys.
    #[error("invalid config {origin}: {source}")]
    Parse {
        /// The file, or "built-in defaults".
        origin: String,
        /// What the parser said (with line and column).
        source: Box<toml::de::Error>,
    },
    /// A key's value parses but cannot work.
    #[error("invalid config: {key} = {value}: {why}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// Its value.
        value: String,
        /// What it must be.
        why: &'static str,
    },
}

/// Most entities a player's view may hold: however many leave it at once,
/// their ids fit in one snapshot datagram beside the viewer (ids below
/// 2^28 take at most 4 bytes each on the wire).
pub const MAX_VIEW_ENTITIES: usize = 256;

/// Most netcode sockets a node opens (1,024 clients each).
pub const MAX_UDP_SOCKETS: usize = 64;

impl NodeConfig {
    /// Parses TOML text.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.into(),
            source: Box::new(e),
        })
    }

    /// The built-in defaults (the shipped `assets/config/tessera.toml`,
    /// compiled in; a build whose copy does not parse says so at start).
    pub fn defaults() -> Result<Self, ConfigError> {
        Self::parse(DEFAULT_CONFIG, "built-in defaults")
    }

    /// Reads a config file (a complete config, like the shipped one).
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Checks what parsing cannot: values that would start a node which
    /// fails later or quietly does something else (a zero interval, a view
    /// without even the player's own avatar, sockets past the last port).
    pub fn validate(&self) -> Result<(), ConfigError> {
        fn invalid(key: &'static str, value: impl ToString, why: &'static str) -> ConfigError {
            ConfigError::Invalid {
                key,
                value: value.to_string(),
                why,
            }
        }
        if !(1..=MAX_UDP_SOCKETS).contains(&self.udp_sockets) {
            return Err(invalid("udp_sockets", self.udp_sockets, "must be 1 to 64"));
        }
        let port = usize::from(self.udp.port());
        if port != 0 && port + self.udp_sockets - 1 > usize::from(u16::MAX) {
            return Err(invalid(
                "udp_sockets",
                self.udp_sockets,
                "the sockets take consecutive ports from `udp`, past 65535",
            ));
        }
        if !(1..=MAX_VIEW_ENTITIES).contains(&self.view_entities) {
            return Err(invalid(
                "view_entities",
                self.view_entities,
                "must be 1 (the player's own avatar) to 256 (what leaves a view at once must fit one datagram)",
            ));
        }
        let nonzero = [
            ("snapshot_bytes_per_sec", self.snapshot_bytes_per_sec),
            (
                "max_snapshot_interval_ticks",
                u64::from(self.max_snapshot_interval_ticks),
            ),
            ("connect_token_secs", self.connect_token_secs),
            ("session_ttl_secs", self.session_ttl_secs),
            ("flush_interval_ms", self.flush_interval_ms),
            ("max_pending_players", self.max_pending_players as u64),
        ];
        for (key, value) in nonzero {
            if value == 0 {
                return Err(invalid(key, value, "must be at least 1"));
            }
        }
        if self.store == StoreKind::Mongodb && self.mongodb_uri.is_empty() {
            return Err(invalid(
                "mongodb_uri",
                "\"\"",
                "store = \"mongodb\" needs a connection string",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_defaults_parse() {
        let config = NodeConfig::defaults().unwrap();
        assert_eq!(config.http.ip().to_string(), "127.0.0.1");
        assert_eq!(config.tables_dir, PathBuf::from("assets/tables"));
        // The file and the defaults of a file without the keys agree.
        let buffers = tessera_net::transport::BufferSizes::DEFAULT;
        assert_eq!(config.udp_receive_buffer_bytes, buffers.receive);
        assert_eq!(config.udp_send_buffer_bytes, buffers.send);
        assert_eq!(
            config.max_snapshot_interval_ticks,
            default_max_snapshot_interval_ticks()
        );
        let without: String = DEFAULT_CONFIG
            .lines()
            .filter(|line| {
                !line.starts_with("udp_receive_buffer_bytes")
                    && !line.starts_with("udp_send_buffer_bytes")
                    && !line.starts_with("max_snapshot_interval_ticks")
            })
            .map(|line| format!("{line}\n"))
            .collect();
        assert_eq!(NodeConfig::parse(&without, "old.toml").unwrap(), config);
    }

    #[test]
    fn values_that_cannot_work_are_refused_by_name() {
        let defaults = NodeConfig::defaults().unwrap();
        defaults.validate().unwrap();
        let refused = |change: &dyn Fn(&mut NodeConfig)| {
            let mut config = defaults.clone();
            change(&mut config);
            match config.validate() {
                Err(ConfigError::Invalid { key, .. }) => key,
                other => panic!("accepted: {other:?}"),
            }
        };
        assert_eq!(refused(&|c| c.udp_sockets = 0), "udp_sockets");
        assert_eq!(refused(&|c| c.udp_sockets = 65), "udp_sockets");
        assert_eq!(
            refused(&|c| {
                c.udp = "127.0.0.1:65535".parse().unwrap();
                c.udp_sockets = 2;
            }),
            "udp_sockets"
        );
        assert_eq!(refused(&|c| c.view_entities = 0), "view_entities");
        assert_eq!(refused(&|c| c.view_entities = 257), "view_entities");
        assert_eq!(
            refused(&|c| c.snapshot_bytes_per_sec = 0),
            "snapshot_bytes_per_sec"
        );
        assert_eq!(
            refused(&|c| c.max_snapshot_interval_ticks = 0),
            "max_snapshot_interval_ticks"
        );
        assert_eq!(refused(&|c| c.connect_token_secs = 0), "connect_token_secs");
        assert_eq!(refused(&|c| c.session_ttl_secs = 0), "session_ttl_secs");
        assert_eq!(refused(&|c| c.flush_interval_ms = 0), "flush_interval_ms");
        assert_eq!(
            refused(&|c| c.max_pending_players = 0),
            "max_pending_players"
        );
        assert_eq!(
            refused(&|c| {
                c.store = StoreKind::Mongodb;
                c.mongodb_uri.clear();
            }),
            "mongodb_uri"
        );
        // The edges that work.
        let mut edges = defaults.clone();
        edges.udp = "127.0.0.1:65535".parse().unwrap();
        edges.udp_sockets = 1;
        edges.view_entities = MAX_VIEW_ENTITIES;
        edges.reconnect_grace_ms = 0;
        edges.tables_poll_ms = 0;
        edges.validate().unwrap();
        edges.udp = "0.0.0.0:0".parse().unwrap();
        edges.udp_sockets = MAX_UDP_SOCKETS;
        edges.view_entities = 1;
        edges.validate().unwrap();
        let mut config = defaults.clone();
        config.view_entities = 0;
        let error = config.validate().unwrap_err().to_string();
        assert!(
            error.contains("view_entities = 0") && error.contains("1 (the player's own avatar)"),
            "{error}"
        );
    }

    #[test]
    fn unknown_and_mistyped_keys_are_named() {
        let text = DEFAULT_CONFIG.replace("workers = 0", "wrokers = 0");
        let error = NodeConfig::parse(&text, "t.toml").unwrap_err().to_string();
        assert!(
            error.contains("wrokers") && error.contains("t.toml"),
            "{error}"
        );
        let text = DEFAULT_CONFIG.replace("bots = 0", "bots = \"many\"");
        let error = NodeConfig::parse(&text, "t.toml").unwrap_err().to_string();
        assert!(error.contains("bots"), "{error}");
    }
}
