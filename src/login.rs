//! `POST /v1/login`: a device id, or a username and password, in; a player
//! id and a netcode connect token out. The token is short-lived and carries
//! the player id in its encrypted user data; the UDP socket is chosen
//! round-robin over the node's sockets.
//!
//! A device id maps to its player id by a stable hash: the same device is
//! the same player across restarts (and nodes). Device-id login is guest
//! login: whoever knows the id is the player. Accounts (see
//! [`crate::accounts`]) are the password-protected way in.

use std::{
    net::SocketAddr,
    sync::atomic::{AtomicUsize, Ordering},
};

use base64::Engine;
use serde::{Deserialize, Serialize};
use tessera_net::transport::NetcodeKeys;
use tessera_sim::PlayerId;

/// A login request: either `device_id`, or `username` and `password`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// A stable id of the device or install (1 to 128 printable characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// An account's username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The account's password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The wire protocol the client speaks
    /// ([`tessera_net::PROTOCOL_VERSION`]); a login without it, or with
    /// another, is refused before anything else in it is looked at (see
    /// [`check_protocol_in`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<u32>,
}

impl LoginRequest {
    /// A guest login by device id.
    pub fn device(id: impl Into<String>) -> Self {
        Self {
            device_id: Some(id.into()),
            protocol: Some(tessera_net::PROTOCOL_VERSION),
            ..Self::default()
        }
    }

    /// An account login.
    pub fn account(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: Some(username.into()),
            password: Some(password.into()),
            protocol: Some(tessera_net::PROTOCOL_VERSION),
            ..Self::default()
        }
    }
}

/// A successful login.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct LoginReply {
    /// The player.
    pub player_id: u64,
    /// An opaque session id.
    pub session: String,
    /// The netcode connect token, standard base64.
    pub connect_token: String,
    /// The UDP address the token is for.
    pub udp: String,
    /// Seconds until the token expires.
    pub expires_in_secs: u64,
}

/// Why a login was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// The device id is empty, too long or has control characters.
    #[error("device_id must be 1 to 128 printable characters")]
    BadDeviceId,
    /// Neither or both ways of logging in were given.
    #[error("give either device_id, or username and password")]
    BadRequest,
    /// The client speaks another wire protocol (or is older than protocol
    /// versions, and names none): it would misread what the node sends.
    #[error(
        "this node speaks protocol {server}, the client {}: update the client",
        client.map_or_else(|| "names none (or not as a number)".to_string(), |v| v.to_string())
    )]
    Protocol {
        /// What the client named, if anything.
        client: Option<u32>,
        /// What the node speaks.
        server: u32,
    },
    /// A token could not be made.
    #[error("cannot issue a connect token: {0}")]
    Token(String),
    /// Too much player data is waiting for the store: logging more players
    /// in would risk losing it.
    #[error("the node is saving a backlog of player data; try again shortly")]
    Busy,
}

/// Issues connect tokens.
pub struct LoginService {
    keys: NetcodeKeys,
    sockets: Vec<SocketAddr>,
    token_secs: u64,
    next_socket: AtomicUsize,
    store: std::sync::Arc<tessera_persistence::flush::FlushStats>,
    max_pending: usize,
}

/// Whether a client naming `protocol` can play on this node.
pub fn check_protocol(protocol: Option<u32>) -> Result<(), LoginError> {
    let server = tessera_net::PROTOCOL_VERSION;
    match protocol {
        Some(client) if client == server => Ok(()),
        client => Err(LoginError::Protocol { client, server }),
    }
}

/// [`check_protocol`] on a request body's `protocol` field, read before the
/// rest of the body is: a client in another protocol may send fields this
/// node does not know, and must be told about the protocol, not the fields.
pub fn check_protocol_in(body: &serde_json::Value) -> Result<(), LoginError> {
    check_protocol(
        body.get("protocol")
            .and_then(serde_json::Value::as_u64)
            .and_then(|v| u32::try_from(v).ok()),
    )
}

/// The player a device id logs in as, if the id is acceptable.
pub fn device_player(device: &str) -> Result<PlayerId, LoginError> {
    let device = device.trim();
    if device.is_empty() || device.chars().count() > 128 || device.chars().any(char::is_control) {
        return Err(LoginError::BadDeviceId);
    }
    Ok(player_for_device(device))
}

/// The player a device id logs in as: a stable 63-bit hash (never 0, and
/// small enough for a signed 64-bit document id).
pub fn player_for_device(device: &str) -> PlayerId {
    let mut hasher = tessera_sim::hash::StableHasher::new();
    hasher.write_bytes(device.as_bytes());
    PlayerId((hasher.finish() & 0x7FFF_FFFF_FFFF_FFFF).max(1))
}

/// A random u64 from the OS.
pub fn random_u64() -> u64 {
    let bytes = tessera_net::transport::random_bytes();
    u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"))
}

impl LoginService {
    /// Tokens signed with `keys` for `sockets`, valid `token_secs`.
    pub fn new(
        keys: NetcodeKeys,
        sockets: Vec<SocketAddr>,
        token_secs: u64,
        store: std::sync::Arc<tessera_persistence::flush::FlushStats>,
        max_pending: usize,
    ) -> Self {
        Self {
            keys,
            sockets,
            token_secs,
            next_socket: AtomicUsize::new(0),
            store,
            max_pending,
        }
    }

    /// Issues a connect token (and session) for `player`, who has proven
    /// who they are.
    pub fn issue(&self, player: PlayerId) -> Result<LoginReply, LoginError> {
        if self.store.pending.load(Ordering::Relaxed) as usize >= self.max_pending {
            return Err(LoginError::Busy);
        }
        let socket =
            self.sockets[self.next_socket.fetch_add(1, Ordering::Relaxed) % self.sockets.len()];
        // A fresh client id per login: netcode ids name connections, not players.
        let token = self
            .keys
            .connect_token(random_u64(), player, socket, self.token_secs)
            .map_err(|e| LoginError::Token(e.to_string()))?;
        let session: String = tessera_net::transport::random_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(LoginReply {
            player_id: player.0,
            session,
            connect_token: base64::engine::general_purpose::STANDARD.encode(token),
            udp: socket.to_string(),
            expires_in_secs: self.token_secs,
        })
    }
}
