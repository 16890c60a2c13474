//! Node configuration: built-in defaults (`assets/config/tessera.toml`),
//! overridden by a file, then by environment variables and flags (in `cli`).

use std::{net::SocketAddr, path::PathBuf};

use serde::Deserialize;
use tessera_sim::WorldSpec;

/// The defaults, compiled in so a bare `cargo run --release` needs no file.
pub const DEFAULT_CONFIG: &str = include_str!("../assets/config/tessera.toml");

/// Everything a node needs to start.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// HTTP listen address.
    pub http: SocketAddr,
    /// Worker threads (0: one per core).
    pub workers: usize,
    /// Where to record replays (empty: nowhere).
    #[serde(default)]
    pub record_dir: PathBuf,
    /// Worlds started with the node.
    #[serde(default)]
    pub worlds: Vec<WorldConfig>,
}

/// One world the node runs from start.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorldConfig {
    /// World kind.
    pub kind: String,
    /// RNG seed.
    pub seed: u64,
    /// Ticks per second.
    pub tick_hz: u16,
    /// Width in millimetres.
    pub width: i32,
    /// Height in millimetres.
    pub height: i32,
    /// Player capacity.
    pub capacity: u32,
    /// In-process synthetic players.
    #[serde(default)]
    pub bots: u64,
}

impl WorldConfig {
    /// The simulation spec for this world.
    pub fn spec(&self) -> WorldSpec {
        WorldSpec {
            kind: self.kind.clone(),
            seed: self.seed,
            tick_hz: self.tick_hz,
            width: self.width,
            height: self.height,
            capacity: self.capacity,
            tables_hash: 0,
        }
    }
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
    /// A world cannot be run.
    #[error("world {index} ({kind}) in {origin}: {source}")]
    World {
        /// Where it came from.
        origin: String,
        /// Its position in `[[worlds]]`.
        index: usize,
        /// Its kind.
        kind: String,
        /// What is wrong.
        source: tessera_sim::SpecError,
    },
}

impl NodeConfig {
    /// Parses TOML text and validates every world.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let config: NodeConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.into(),
            source: Box::new(e),
        })?;
        for (index, world) in config.worlds.iter().enumerate() {
            world
                .spec()
                .validate()
                .map_err(|source| ConfigError::World {
                    origin: origin.into(),
                    index,
                    kind: world.kind.clone(),
                    source,
                })?;
        }
        Ok(config)
    }

    /// The built-in defaults.
    pub fn defaults() -> Self {
        Self::parse(DEFAULT_CONFIG, "built-in defaults")
            .expect("the shipped default config is valid")
    }

    /// Reads a config file (a complete config, like the shipped one).
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_defaults_parse_and_run_worlds() {
        let config = NodeConfig::defaults();
        assert!(!config.worlds.is_empty());
        assert_eq!(config.http.ip().to_string(), "127.0.0.1");
    }

    #[test]
    fn unknown_keys_and_bad_worlds_are_named() {
        let error = NodeConfig::parse(
            "http = \"127.0.0.1:0\"\nworkers = 1\nwrokers = 2\n",
            "t.toml",
        )
        .unwrap_err();
        assert!(error.to_string().contains("wrokers"), "{error}");
        let bad = "http = \"127.0.0.1:0\"\nworkers = 1\n[[worlds]]\nkind = \"z\"\nseed = 1\ntick_hz = 0\nwidth = 10\nheight = 10\ncapacity = 1\n";
        let error = NodeConfig::parse(bad, "t.toml").unwrap_err();
        assert!(
            error.to_string().contains("world 0 (z)") && error.to_string().contains("tick rate 0"),
            "{error}"
        );
    }
}
