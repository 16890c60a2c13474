//! `POST /v1/login`: a device id in, a player id and a netcode connect token
//! out. The token is short-lived and carries the player id in its encrypted
//! user data; the UDP socket is chosen round-robin over the node's sockets.
//!
//! Accounts live in memory until the persistence issue lands a store: a
//! device id maps to the same player for the life of the process.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
};

use base64::Engine;
use serde::{Deserialize, Serialize};
use tessera_net::transport::NetcodeKeys;
use tessera_sim::PlayerId;

/// A login request.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LoginRequest {
    /// A stable id of the device or install (1 to 128 printable characters).
    pub device_id: String,
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
    next_player: AtomicU64,
    accounts: Mutex<BTreeMap<String, PlayerId>>,
    store: std::sync::Arc<tessera_persistence::flush::FlushStats>,
    max_pending: usize,
}

fn random_u64() -> u64 {
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
            next_player: AtomicU64::new(1),
            accounts: Mutex::new(BTreeMap::new()),
            store,
            max_pending,
        }
    }

    /// Logs a device in.
    pub fn login(&self, request: &LoginRequest) -> Result<LoginReply, LoginError> {
        let device = request.device_id.trim();
        if device.is_empty() || device.chars().count() > 128 || device.chars().any(char::is_control)
        {
            return Err(LoginError::BadDeviceId);
        }
        if self.store.pending.load(Ordering::Relaxed) as usize >= self.max_pending {
            return Err(LoginError::Busy);
        }
        let player = *self
            .accounts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(device.to_string())
            .or_insert_with(|| PlayerId(self.next_player.fetch_add(1, Ordering::Relaxed)));
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
