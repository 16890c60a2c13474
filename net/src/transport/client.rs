//! The client side of the transport (bots, tests, tools): renet channels
//! over a netcode client that this module drives itself, so that it can
//! lose datagrams on purpose ([`Loss`]) to test and load-test bad networks.

use std::{
    net::{SocketAddr, UdpSocket},
    time::Instant,
};

use renet::{ConnectionConfig, RenetClient};
use renet_netcode::{ClientAuthentication, ConnectToken};
use renetcode::{NETCODE_MAX_PACKET_BYTES, NetcodeClient};

use super::{TransportError, unix_now};

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
    loss: Loss,
}

impl ClientSocket {
    /// Starts connecting with a serialised connect token.
    pub fn connect(token: &[u8]) -> Result<Self, TransportError> {
        let connect_token = ConnectToken::read(&mut std::io::Cursor::new(token))
            .map_err(|e| TransportError::Netcode(e.to_string()))?;
        // Any interface: the server may be on another machine.
        let socket = UdpSocket::bind("0.0.0.0:0".parse::<SocketAddr>().expect("address"))?;
        socket.set_nonblocking(true)?;
        let netcode =
            NetcodeClient::new(unix_now(), ClientAuthentication::Secure { connect_token })
                .map_err(|e| TransportError::Netcode(e.to_string()))?;
        Ok(Self {
            client: RenetClient::new(ConnectionConfig::default()),
            netcode,
            socket,
            buffer: Box::new([0; NETCODE_MAX_PACKET_BYTES]),
            last_update: Instant::now(),
            loss: Loss::default(),
        })
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
        self.client.update(elapsed);
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
            let len = match self.socket.recv_from(&mut self.buffer[..]) {
                Ok((len, from)) if from == server => len,
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
            if let Some(payload) = self.netcode.process_packet(&mut self.buffer[..len]) {
                self.client.process_packet(payload);
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
        if self.client.is_connected() {
            self.client.send_message(channel, bytes);
        }
    }

    /// The next received message on `channel`.
    pub fn receive(&mut self, channel: u8) -> Option<bytes::Bytes> {
        self.client.receive_message(channel)
    }

    /// Sends everything queued.
    pub fn flush(&mut self) -> Result<(), TransportError> {
        if let Some(reason) = self.netcode.disconnect_reason() {
            return Err(TransportError::Netcode(reason.to_string()));
        }
        for packet in self.client.get_packets_to_send() {
            let (addr, datagram) = self
                .netcode
                .generate_payload_packet(&packet)
                .map_err(|e| TransportError::Netcode(e.to_string()))?;
            if self.loss.drop_next() {
                self.loss.dropped_out += 1;
                continue;
            }
            self.socket.send_to(datagram, addr)?;
        }
        Ok(())
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
