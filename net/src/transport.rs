//! The transport boundary: UDP with renet channels over netcode secure
//! connections. Bytes in, bytes out, connection events; nothing above this
//! module knows about renet, so it can be tuned or replaced (STACK_NOTES:
//! what UDP costs here).

use std::{
    net::SocketAddr,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use renet_netcode::{ConnectToken, NETCODE_KEY_BYTES, NETCODE_USER_DATA_BYTES};
use tessera_sim::PlayerId;

mod arrival;
mod batch;
mod buffers;
mod client;
pub mod packing;
mod poll;
mod server;
mod shards;
mod worker;

pub use buffers::{BufferSizes, Dropped, MAX_BUFFER_BYTES};
pub use client::{ClientSocket, Loss};
pub use poll::Poller;
pub use server::ServerSocket;
pub use worker::SocketWorker;

/// Inputs, snapshots, pings: latest wins, loss is fine.
pub const UNRELIABLE: u8 = 0;
/// Events and chat: must arrive, order does not matter.
pub const RELIABLE: u8 = 1;
/// Commands and their responses: must arrive, in order.
pub const ORDERED: u8 = 2;

/// A connection, numbered by its transport.
pub type ClientId = u64;

/// Netcode's limit per server (and socket).
pub const MAX_CLIENTS_PER_SOCKET: usize = 1_024;

/// Why the transport failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The socket failed.
    #[error("udp socket: {0}")]
    Io(#[from] std::io::Error),
    /// netcode refused (bad token, bad address...).
    #[error("netcode: {0}")]
    Netcode(String),
}

/// renet's reliable channels among `channels`, each with its memory: a
/// channel with less available holds unacknowledged messages, which renet
/// may have to resend (so only then is it worth asking renet for packets
/// with nothing new queued).
fn reliable_memory(channels: &[renet::ChannelConfig]) -> Vec<(u8, usize)> {
    channels
        .iter()
        .filter(|c| c.channel_id == RELIABLE || c.channel_id == ORDERED)
        .map(|c| (c.channel_id, c.max_memory_usage_bytes))
        .collect()
}

/// 32 bytes from a cryptographic RNG (keys, session ids, client ids).
pub fn random_bytes() -> [u8; 32] {
    renet_netcode::generate_random_bytes()
}

/// Seconds since the Unix epoch: netcode tokens expire on wall-clock time.
pub fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// What the secure connection needs.
#[derive(Clone)]
pub struct NetcodeKeys {
    /// Distinguishes games and protocol versions: others cannot connect.
    pub protocol_id: u64,
    /// Signs connect tokens; from config or environment, never the repo.
    pub private_key: [u8; NETCODE_KEY_BYTES],
}

impl std::fmt::Debug for NetcodeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetcodeKeys")
            .field("protocol_id", &self.protocol_id)
            .finish_non_exhaustive()
    }
}

impl NetcodeKeys {
    /// A key for this process only (tokens die with it).
    pub fn random(protocol_id: u64) -> Self {
        Self {
            protocol_id,
            private_key: renet_netcode::generate_random_bytes(),
        }
    }

    /// Parses a 64-hex-digit key.
    pub fn from_hex(protocol_id: u64, hex: &str) -> Result<Self, TransportError> {
        let hex = hex.trim();
        let bad = || TransportError::Netcode("the netcode key must be 64 hex digits".into());
        if hex.len() != 2 * NETCODE_KEY_BYTES {
            return Err(bad());
        }
        let mut private_key = [0u8; NETCODE_KEY_BYTES];
        for (i, byte) in private_key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
                .map_err(|_| bad())?;
        }
        Ok(Self {
            protocol_id,
            private_key,
        })
    }

    /// A connect token for `player` on `server`, valid for `expire_secs`,
    /// serialised. The player id travels in the token's encrypted user data.
    pub fn connect_token(
        &self,
        client_id: ClientId,
        player: PlayerId,
        server: SocketAddr,
        expire_secs: u64,
    ) -> Result<Vec<u8>, TransportError> {
        let mut user_data = [0u8; NETCODE_USER_DATA_BYTES];
        user_data[..8].copy_from_slice(&player.0.to_le_bytes());
        let token = ConnectToken::generate(
            unix_now(),
            self.protocol_id,
            expire_secs,
            client_id,
            15,
            vec![server],
            Some(&user_data),
            &self.private_key,
        )
        .map_err(|e| TransportError::Netcode(e.to_string()))?;
        let mut bytes = Vec::new();
        token.write(&mut bytes)?;
        Ok(bytes)
    }
}

/// The player a connection's user data names.
pub fn player_of(user_data: &[u8; NETCODE_USER_DATA_BYTES]) -> PlayerId {
    PlayerId(u64::from_le_bytes(
        user_data[..8].try_into().expect("8 bytes"),
    ))
}

/// Something that happened on a server socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportEvent {
    /// A client completed the secure handshake as `player`.
    Connected {
        /// The connection.
        client: ClientId,
        /// Who its token says it is.
        player: PlayerId,
    },
    /// A client went away.
    Disconnected {
        /// The connection.
        client: ClientId,
        /// Why, as renet puts it.
        reason: String,
    },
    /// The socket answered a message of `bytes` bytes from `client`
    /// itself ([`ServerSocket::answer_with`]): it is not among the
    /// messages, but counts against the client's limits all the same.
    Answered {
        /// The connection.
        client: ClientId,
        /// The message's length.
        bytes: usize,
    },
}
