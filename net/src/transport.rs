//! The transport boundary: UDP with renet channels over netcode secure
//! connections. Bytes in, bytes out, connection events; nothing above this
//! module knows about renet, so it can be tuned or replaced (STACK_NOTES:
//! what UDP costs here).

use std::{
    net::{SocketAddr, UdpSocket},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use renet::{ConnectionConfig, RenetServer, ServerEvent};
use renet_netcode::{
    ConnectToken, NETCODE_KEY_BYTES, NETCODE_USER_DATA_BYTES, ServerAuthentication, ServerConfig,
};
use renetcode::{NETCODE_MAX_PACKET_BYTES, NetcodeServer, ServerResult};
use tessera_sim::PlayerId;

mod client;
mod worker;

pub use client::{ClientSocket, Loss};
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
}

/// One netcode server on one UDP socket.
///
/// renetcode is driven directly (not through renet_netcode's transport) so
/// packets can be sent to one client at a time: renet adds an
/// acknowledgement packet to every send while anything is unacknowledged,
/// so sending to everyone whenever anyone needs a reply would flood every
/// client with acknowledgements.
pub struct ServerSocket {
    server: RenetServer,
    netcode: NetcodeServer,
    bound: SocketAddr,
    socket: UdpSocket,
    buffer: Box<[u8; NETCODE_MAX_PACKET_BYTES]>,
    last_update: Instant,
}

/// Does what a netcode result asks for: replies, payloads to renet,
/// connections and disconnections.
fn handle(result: ServerResult<'_, '_>, socket: &UdpSocket, server: &mut RenetServer) {
    let send = |payload: &[u8], addr: SocketAddr| {
        if let Err(error) = socket.send_to(payload, addr) {
            tracing::debug!(%addr, %error, "udp send failed");
        }
    };
    match result {
        ServerResult::None => {}
        ServerResult::PacketToSend { payload, addr } => send(payload, addr),
        ServerResult::Payload { client_id, payload } => {
            if let Err(error) = server.process_packet_from(payload, client_id) {
                tracing::debug!(client = client_id, %error, "bad renet packet");
            }
        }
        ServerResult::ClientConnected {
            client_id,
            addr,
            payload,
            ..
        } => {
            server.add_connection(client_id);
            send(payload, addr);
        }
        ServerResult::ClientDisconnected {
            client_id,
            addr,
            payload,
        } => {
            server.remove_connection(client_id);
            if let Some(payload) = payload {
                send(payload, addr);
            }
        }
    }
}

impl ServerSocket {
    /// Binds `addr` and accepts clients holding tokens signed with `keys`.
    ///
    /// Clients are given `public_ip` with the bound port when set (a node
    /// bound to 0.0.0.0, or behind NAT), else the bound address: netcode
    /// only accepts tokens naming an address the server calls its own.
    pub fn bind(
        addr: SocketAddr,
        public_ip: Option<std::net::IpAddr>,
        keys: &NetcodeKeys,
        max_clients: usize,
    ) -> Result<Self, TransportError> {
        let socket = UdpSocket::bind(addr)?;
        let bound = socket.local_addr()?;
        let local = public_ip.map_or(bound, |ip| SocketAddr::new(ip, bound.port()));
        let config = ServerConfig {
            current_time: unix_now(),
            max_clients: max_clients.clamp(1, MAX_CLIENTS_PER_SOCKET),
            protocol_id: keys.protocol_id,
            public_addresses: vec![local],
            authentication: ServerAuthentication::Secure {
                private_key: keys.private_key,
            },
        };
        socket.set_nonblocking(true)?;
        Ok(Self {
            server: RenetServer::new(ConnectionConfig::default()),
            netcode: NetcodeServer::new(config),
            bound,
            socket,
            buffer: Box::new([0; NETCODE_MAX_PACKET_BYTES]),
            last_update: Instant::now(),
        })
    }

    /// The address clients connect to (what tokens name).
    pub fn local_addr(&self) -> SocketAddr {
        self.netcode.addresses()[0]
    }

    /// The address the socket is bound to.
    pub fn bound_addr(&self) -> SocketAddr {
        self.bound
    }

    /// Connected clients.
    pub fn connected(&self) -> usize {
        self.server.connected_clients()
    }

    /// Receives what arrived: connection events into `events`, messages
    /// (at most `per_client` per client and channel) into `messages`.
    pub fn receive(
        &mut self,
        events: &mut Vec<TransportEvent>,
        messages: &mut Vec<(ClientId, u8, bytes::Bytes)>,
        per_client: usize,
    ) -> Result<(), TransportError> {
        let now = Instant::now();
        let elapsed = now - self.last_update;
        self.last_update = now;
        self.server.update(elapsed);
        self.netcode.update(elapsed);
        loop {
            match self.socket.recv_from(&mut self.buffer[..]) {
                Ok((len, addr)) => {
                    let result = self.netcode.process_packet(addr, &mut self.buffer[..len]);
                    handle(result, &self.socket, &mut self.server);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => break,
                // A client's ICMP "port unreachable" comes back as a reset.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => continue,
                Err(e) => return Err(e.into()),
            }
        }
        for client in self.netcode.clients_id() {
            let result = self.netcode.update_client(client);
            handle(result, &self.socket, &mut self.server);
        }
        for client in self.server.disconnections_id() {
            let result = self.netcode.disconnect(client);
            handle(result, &self.socket, &mut self.server);
        }
        while let Some(event) = self.server.get_event() {
            match event {
                ServerEvent::ClientConnected { client_id } => {
                    let player = self
                        .netcode
                        .user_data(client_id)
                        .map(|d| player_of(&d))
                        .unwrap_or(PlayerId(0));
                    events.push(TransportEvent::Connected {
                        client: client_id,
                        player,
                    });
                }
                ServerEvent::ClientDisconnected { client_id, reason } => {
                    events.push(TransportEvent::Disconnected {
                        client: client_id,
                        reason: reason.to_string(),
                    });
                }
            }
        }
        for client in self.server.clients_id() {
            for channel in [UNRELIABLE, RELIABLE, ORDERED] {
                for _ in 0..per_client {
                    let Some(bytes) = self.server.receive_message(client, channel) else {
                        break;
                    };
                    messages.push((client, channel, bytes));
                }
            }
        }
        Ok(())
    }

    /// Queues `bytes` for `client` on `channel`.
    pub fn send(&mut self, client: ClientId, channel: u8, bytes: Vec<u8>) {
        if self.server.is_connected(client) {
            self.server.send_message(client, channel, bytes);
        }
    }

    /// Disconnects `client` (it is told, then dropped).
    pub fn disconnect(&mut self, client: ClientId) {
        self.server.disconnect(client);
    }

    /// Disconnects everyone at once (shutdown).
    pub fn disconnect_all(&mut self) {
        for client in self.netcode.clients_id() {
            let result = self.netcode.disconnect(client);
            handle(result, &self.socket, &mut self.server);
        }
    }

    /// Sends everything queued.
    pub fn flush(&mut self) {
        for client in self.server.clients_id() {
            self.flush_client(client);
        }
    }

    /// Sends what is queued for one client only.
    pub fn flush_client(&mut self, client: ClientId) {
        let Ok(packets) = self.server.get_packets_to_send(client) else {
            return;
        };
        for packet in packets {
            match self.netcode.generate_payload_packet(client, &packet) {
                Ok((addr, payload)) => {
                    if let Err(error) = self.socket.send_to(payload, addr) {
                        tracing::debug!(client, %addr, %error, "udp send failed");
                        return;
                    }
                }
                Err(error) => {
                    tracing::debug!(client, %error, "cannot encrypt a packet");
                    return;
                }
            }
        }
    }
}
