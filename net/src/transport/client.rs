//! The client side of the transport (bots, tests, tools): renet channels
//! over a netcode client that this module drives itself, so that it packs
//! datagrams as the server does ([`super::packing`]) and can lose
//! datagrams on purpose ([`Loss`]) to test and load-test bad networks.

use std::{
    collections::VecDeque,
    net::{SocketAddr, UdpSocket},
    time::{Instant, SystemTime},
};

use renet::{ConnectionConfig, RenetClient};
use renet_netcode::{ClientAuthentication, ConnectToken};
use renetcode::{NETCODE_MAX_PACKET_BYTES, NetcodeClient};

use super::{
    TransportError, UNRELIABLE, arrival,
    packing::{AckGate, Entry, MAX_DIRECT, Packer, unpack},
    unix_now,
};

/// Unreliable messages kept either way between calls; the oldest go first.
const MAX_QUEUED: usize = 256;

/// Datagrams lost on purpose, in both directions, once connected (the
/// handshake is left alone so that connecting stays quick). Seeded, so a
/// test loses the same share every run.
#[derive(Debug, Clone, Default)]
pub struct Loss {
    /// Share of datagrams dropped, per mille.
    pub per_mille: u32,
    state: u64,
    /// Incoming datagrams dropped so far.
    pub dropped_in: u64,
    /// Outgoing datagrams dropped so far.
    pub dropped_out: u64,
}

impl Loss {
    /// Drops `per_mille` of datagrams, chosen by a generator seeded with `seed`.
    pub fn new(per_mille: u32, seed: u64) -> Self {
        Self {
            per_mille,
            state: seed | 1,
            ..Self::default()
        }
    }

    fn drop_next(&mut self) -> bool {
        if self.per_mille == 0 {
            return false;
        }
        // xorshift64: cheap, and plenty for choosing victims.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        (self.state % 1_000) < u64::from(self.per_mille)
    }
}

/// A client connection.
pub struct ClientSocket {
    client: RenetClient,
    netcode: NetcodeClient,
    socket: UdpSocket,
    buffer: Box<[u8; NETCODE_MAX_PACKET_BYTES]>,
    last_update: Instant,
    /// When renet's clocks were last advanced (see [`RENET_UPDATE_EVERY`]).
    last_renet_update: Instant,
    /// Per channel: renet may hold messages (a renet packet came in since
    /// the channel was last found empty). Asking renet costs a walk of
    /// its channel state, for every connection a load tool drives.
    renet_pending: [bool; 3],
    loss: Loss,
    gate: AckGate,
    packer: Packer,
    /// Small unreliable messages waiting for the next flush.
    outgoing: Vec<Vec<u8>>,
    /// Unreliable messages that came in packs, not through renet, with
    /// when their datagram arrived.
    incoming: VecDeque<(bytes::Bytes, SystemTime)>,
    /// When the datagram of the message last received arrived, if known.
    last_arrival: Option<SystemTime>,
    /// Messages given to renet since its packets were last taken.
    renet_queued: bool,
    /// When renet's packets were last considered whatever was queued.
    last_full: Instant,
    /// Each reliable channel and its memory ([`super::reliable_memory`]).
    reliable_memory: Vec<(u8, usize)>,
}

/// How often renet's clocks (resends, slice expiry) are advanced: a load
/// tool pumps each of its connections every few milliseconds.
const RENET_UPDATE_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

/// How often renet is asked for its packets with nothing new for it, when
/// it may have resends or the periodic acknowledgement is due.
const FULL_FLUSH: std::time::Duration = std::time::Duration::from_millis(100);

impl ClientSocket {
    /// Starts connecting with a serialised connect token.
    pub fn connect(token: &[u8]) -> Result<Self, TransportError> {
        let connect_token = ConnectToken::read(&mut std::io::Cursor::new(token))
            .map_err(|e| TransportError::Netcode(e.to_string()))?;
        // Any interface: the server may be on another machine.
        let socket = UdpSocket::bind("0.0.0.0:0".parse::<SocketAddr>().expect("address"))?;
        socket.set_nonblocking(true)?;
        if let Err(error) = arrival::enable(&socket) {
            tracing::debug!(%error, "no kernel receive timestamps");
        }
        let netcode =
            NetcodeClient::new(unix_now(), ClientAuthentication::Secure { connect_token })
                .map_err(|e| TransportError::Netcode(e.to_string()))?;
        let channels = ConnectionConfig::default();
        let reliable_memory = super::reliable_memory(&channels.client_channels_config);
        Ok(Self {
            client: RenetClient::new(channels),
            netcode,
            socket,
            buffer: Box::new([0; NETCODE_MAX_PACKET_BYTES]),
            last_update: Instant::now(),
            last_renet_update: Instant::now(),
            renet_pending: [false; 3],
            loss: Loss::default(),
            gate: AckGate::default(),
            packer: Packer::default(),
            outgoing: Vec::new(),
            incoming: VecDeque::new(),
            last_arrival: None,
            renet_queued: false,
            last_full: Instant::now(),
            reliable_memory,
        })
    }

    /// The socket, for readiness ([`super::Poller`]).
    pub(super) fn socket_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.socket.as_fd()
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Loses datagrams on purpose from now on.
    pub fn simulate_loss(&mut self, loss: Loss) {
        self.loss = loss;
    }

    /// What was lost on purpose so far.
    pub fn loss(&self) -> &Loss {
        &self.loss
    }

    /// Whether the handshake completed.
    pub fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    /// Whether the connection is gone (refused, timed out, kicked).
    pub fn is_disconnected(&self) -> bool {
        self.client.is_disconnected() || self.netcode.disconnect_reason().is_some()
    }

    /// Why it is gone.
    pub fn disconnect_reason(&self) -> Option<String> {
        self.netcode
            .disconnect_reason()
            .map(|r| r.to_string())
            .or_else(|| self.client.disconnect_reason().map(|r| r.to_string()))
    }

    /// Advances the connection and receives packets.
    pub fn update(&mut self) -> Result<(), TransportError> {
        let now = Instant::now();
        let elapsed = now - self.last_update;
        self.last_update = now;
        if now >= self.last_renet_update + RENET_UPDATE_EVERY {
            self.client.update(now - self.last_renet_update);
            self.last_renet_update = now;
        }
        if let Some(reason) = self.netcode.disconnect_reason() {
            self.client.disconnect_due_to_transport();
            return Err(TransportError::Netcode(reason.to_string()));
        }
        if let Some(error) = self.client.disconnect_reason() {
            if let Ok((addr, packet)) = self.netcode.disconnect() {
                let _ = self.socket.send_to(packet, addr);
            }
            return Err(TransportError::Netcode(error.to_string()));
        }
        if self.netcode.is_connected() {
            self.client.set_connected();
        } else if self.netcode.is_connecting() {
            self.client.set_connecting();
        }
        let server = self.netcode.server_addr();
        loop {
            let (len, arrived) = match arrival::recv(&self.socket, &mut self.buffer[..]) {
                Ok((len, from, arrived)) if from == server => (len, arrived),
                Ok(_) => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                    ) =>
                {
                    break;
                }
                Err(e) => return Err(e.into()),
            };
            if self.netcode.is_connected() && self.loss.drop_next() {
                self.loss.dropped_in += 1;
                continue;
            }
            let Some(payload) = self.netcode.process_packet(&mut self.buffer[..len]) else {
                continue;
            };
            let entries = match unpack(payload) {
                Ok(entries) => entries,
                Err(error) => {
                    tracing::debug!(%error, "bad payload from the server dropped");
                    continue;
                }
            };
            for entry in entries {
                match entry {
                    Entry::Renet(packet) => {
                        self.gate.received(packet);
                        self.client.process_packet(packet);
                        self.renet_pending = [true; 3];
                    }
                    Entry::Message(bytes) => {
                        if self.incoming.len() == MAX_QUEUED {
                            self.incoming.pop_front();
                        }
                        self.incoming
                            .push_back((bytes::Bytes::copy_from_slice(bytes), arrived));
                    }
                }
            }
        }
        // Handshake requests and keep-alives.
        if let Some((packet, addr)) = self.netcode.update(elapsed) {
            self.socket.send_to(packet, addr)?;
        }
        Ok(())
    }

    /// Queues a message.
    pub fn send(&mut self, channel: u8, bytes: Vec<u8>) {
        if !self.client.is_connected() {
            return;
        }
        if channel == UNRELIABLE && bytes.len() <= MAX_DIRECT {
            if self.outgoing.len() == MAX_QUEUED {
                self.outgoing.remove(0);
            }
            self.outgoing.push(bytes);
        } else {
            self.renet_queued = true;
            self.client.send_message(channel, bytes);
        }
    }

    /// The next received message on `channel`.
    pub fn receive(&mut self, channel: u8) -> Option<bytes::Bytes> {
        if channel == UNRELIABLE
            && let Some((bytes, arrived)) = self.incoming.pop_front()
        {
            self.last_arrival = Some(arrived);
            return Some(bytes);
        }
        self.last_arrival = None;
        let pending = self.renet_pending.get_mut(usize::from(channel));
        if pending.as_deref() == Some(&false) {
            return None;
        }
        let message = self.client.receive_message(channel);
        if message.is_none()
            && let Some(pending) = pending
        {
            *pending = false;
        }
        message
    }

    /// When the datagram that carried the message [`Self::receive`]
    /// returned last arrived: the kernel's stamp where there is one, so a
    /// reader that gets to its socket late still knows. Only for unreliable
    /// messages that came in packs (renet reassembles the others).
    pub fn last_arrival(&self) -> Option<SystemTime> {
        self.last_arrival
    }

    /// Sends everything queued.
    pub fn flush(&mut self) -> Result<(), TransportError> {
        if let Some(reason) = self.netcode.disconnect_reason() {
            return Err(TransportError::Netcode(reason.to_string()));
        }
        let now = Instant::now();
        let full = now >= self.last_full + FULL_FLUSH;
        if full {
            self.last_full = now;
        }
        let (client, reliable) = (&self.client, &self.reliable_memory);
        let resend = || {
            reliable
                .iter()
                .any(|&(channel, memory)| client.channel_available_memory(channel) < memory)
        };
        // Asking renet builds an acknowledgement every time, thrown away
        // when not due: with a thousand connections that adds up.
        let packets = if self.renet_queued
            || self.gate.owed()
            || (full && (self.gate.wants_ack(now) || resend()))
        {
            self.renet_queued = false;
            self.client.get_packets_to_send()
        } else {
            Vec::new()
        };
        let (netcode, socket, loss) = (&mut self.netcode, &self.socket, &mut self.loss);
        let mut result = Ok(());
        let mut emit = |payload: &[u8]| {
            if result.is_err() {
                return;
            }
            result = match netcode.generate_payload_packet(payload) {
                Ok(_) if loss.drop_next() => {
                    loss.dropped_out += 1;
                    Ok(())
                }
                Ok((addr, datagram)) => {
                    socket.send_to(datagram, addr).map(drop).map_err(Into::into)
                }
                Err(e) => Err(TransportError::Netcode(e.to_string())),
            };
        };
        self.packer.flush(
            &mut self.gate,
            now,
            &packets,
            self.outgoing.drain(..),
            &mut emit,
        );
        result
    }

    /// Tells the server goodbye and closes the connection.
    pub fn disconnect(&mut self) {
        if self.netcode.is_disconnected() {
            return;
        }
        if let Ok((addr, packet)) = self.netcode.disconnect() {
            let _ = self.socket.send_to(packet, addr);
        }
    }
}
