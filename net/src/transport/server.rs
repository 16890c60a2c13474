//! A netcode server on one UDP socket (split into shards, [`super::shards`]),
//! with renet's channels inside.
//!
//! renetcode is driven directly (not through renet_netcode's transport) so
//! that datagrams are built per client: renet's packets and small
//! unreliable messages for a client share packs ([`super::packing`]), and
//! only clients with something new are sent to.

use std::{
    collections::HashMap,
    net::{SocketAddr, UdpSocket},
    time::{Duration, Instant},
};

use renet::{ConnectionConfig, RenetServer, ServerEvent};
use renet_netcode::{ServerAuthentication, ServerConfig};
use renetcode::{NetcodeServer, ServerResult};

use tessera_sim::PlayerId;

use super::{
    ClientId, MAX_CLIENTS_PER_SOCKET, NetcodeKeys, ORDERED, RELIABLE, TransportError,
    TransportEvent, UNRELIABLE,
    batch::{RecvBatch, SendBatch},
    buffers::{self, BufferSizes, DropTracker, Dropped},
    packing::{AckGate, Entry, MAX_DIRECT, Packer, unpack},
    player_of,
    shards::{Admission, Refusal, Shard, Shards},
    unix_now,
};

/// How often every connection is walked (netcode timeouts and
/// keep-alives, renet's clocks and resends). Each walk looks every client
/// up by a linear scan in renetcode and advances each renet connection,
/// so it is not done on every read; 50 ms is well inside netcode's 250 ms
/// keep-alive and renet's 300 ms resend times.
const WALK_EVERY: Duration = Duration::from_millis(50);

/// A client sent a datagram this recently needs no keep-alive yet
/// (netcode sends one after 250 ms of nothing).
const SENT_LATELY: Duration = Duration::from_millis(150);

/// A client heard from this recently is far from netcode's timeout
/// (15 s in our tokens).
const HEARD_LATELY: Duration = Duration::from_secs(1);

/// Every this many walks, every connection is walked, however busy: a
/// mistake in the clocks above can delay a keep-alive or a timeout by at
/// most this many walks.
const FULL_WALK_EVERY: u32 = 20;

/// Unreliable messages kept for a client between flushes; the oldest go
/// first (a newer snapshot or input supersedes them).
const MAX_QUEUED: usize = 64;

/// How often, at most, a socket's drops are logged (they are counted for
/// `/metrics` as they are read).
const WARN_DROPS_EVERY: Duration = Duration::from_secs(10);

/// Answers an unreliable message on the socket's own thread, or `None`
/// to pass it on ([`ServerSocket::answer_with`]).
pub type Answerer = fn(&[u8]) -> Option<Vec<u8>>;

/// What the socket keeps per connection besides renet and netcode.
#[derive(Debug, Default)]
struct Peer {
    gate: AckGate,
    /// Small unreliable messages waiting for the next flush.
    queued: Vec<Vec<u8>>,
    /// Answers to its messages ([`Io::answerer`]): sent by the read that
    /// found them, alone, so that a read in the middle of the net loop's
    /// sends does not split a tick's messages over two datagrams.
    replies: Vec<Vec<u8>>,
    /// The net loop is done with the connection (kicked, about to be
    /// disconnected): its messages go to the net loop unanswered, which
    /// drops them, as it did before the socket answered any.
    unanswered: bool,
    /// In [`Io::active`].
    active: bool,
    /// Messages given to renet since its packets were last taken.
    renet_queued: bool,
    /// renet has given up on the connection (a bad packet, a kick, a full
    /// channel): nothing more from or to it counts. Kept here so that the
    /// per-datagram and per-message checks need no lookup in renet's map
    /// of connections (a cache miss each, at thousands of clients).
    dropped: bool,
    /// When a datagram last went to it, and when one last came from it
    /// (clocks read at the start of the flush or read: never later than
    /// the truth).
    last_sent: Option<Instant>,
    last_heard: Option<Instant>,
    /// The netcode server it is connected through.
    shard: Shard,
}

impl Peer {
    /// Whether netcode can have nothing to do for this connection at
    /// `now`: no keep-alive due and no timeout near. renetcode finds a
    /// client by a linear scan over its slots, so walking every one of a
    /// socket's thousand clients twenty times a second costs a million
    /// slot reads a second, nearly all for nothing.
    fn busy(&self, now: Instant) -> bool {
        let lately = |at: Option<Instant>, within: Duration| {
            at.is_some_and(|at| now.saturating_duration_since(at) < within)
        };
        lately(self.last_sent, SENT_LATELY) && lately(self.last_heard, HEARD_LATELY)
    }
}

/// The parts a received packet touches (apart from netcode, which lends
/// the packet).
struct Io {
    socket: UdpSocket,
    /// Datagrams to send at the next [`ServerSocket::transmit`].
    out: SendBatch,
    server: RenetServer,
    peers: HashMap<ClientId, Peer>,
    /// The socket's checks on new connections, across its shards.
    admission: Admission,
    /// When the current read started (the time a datagram read in it is
    /// taken to have come).
    read_at: Instant,
    /// Clients with packets read since their messages were last taken.
    active: Vec<ClientId>,
    /// Each reliable channel and its memory ([`super::reliable_memory`]).
    reliable_memory: Vec<(u8, usize)>,
    /// What the socket answers itself ([`ServerSocket::answer_with`]).
    answerer: Option<Answerer>,
    /// Messages answered since the last read: (client, length).
    answered: Vec<(ClientId, usize)>,
}

impl Io {
    fn send(&mut self, payload: &[u8], addr: SocketAddr) {
        self.out.push(addr, payload);
    }

    /// Does what a netcode result of `shard` asks for: replies, payloads
    /// for renet or the application, connections and disconnections. A
    /// connection the socket refuses is returned, for the caller to
    /// disconnect in its shard.
    fn handle(
        &mut self,
        result: ServerResult<'_, '_>,
        shard: Shard,
        messages: &mut Messages,
    ) -> Option<(ClientId, Refusal)> {
        match result {
            ServerResult::None => {}
            ServerResult::PacketToSend { payload, addr } => self.send(payload, addr),
            ServerResult::Payload { client_id, payload } => {
                self.payload(client_id, payload, messages)
            }
            ServerResult::ClientConnected {
                client_id,
                addr,
                payload,
                ..
            } => {
                let already = self.peers.contains_key(&client_id);
                if let Err(refusal) =
                    self.admission
                        .admit(client_id, addr, self.peers.len(), already)
                {
                    return Some((client_id, refusal));
                }
                self.server.add_connection(client_id);
                self.peers.insert(
                    client_id,
                    Peer {
                        shard,
                        ..Peer::default()
                    },
                );
                self.send(payload, addr);
            }
            ServerResult::ClientDisconnected {
                client_id,
                addr,
                payload,
            } => {
                self.server.remove_connection(client_id);
                self.peers.remove(&client_id);
                if let Some(payload) = payload {
                    self.send(payload, addr);
                }
            }
        }
        None
    }

    fn payload(&mut self, client: ClientId, payload: &[u8], messages: &mut Messages) {
        // renet drops a connection it has given up on before netcode does.
        let Some(peer) = self.peers.get_mut(&client).filter(|peer| !peer.dropped) else {
            return;
        };
        peer.last_heard = Some(self.read_at);
        let entries = match unpack(payload) {
            Ok(entries) => entries,
            Err(error) => {
                tracing::debug!(client, %error, "bad payload dropped");
                return;
            }
        };
        for entry in entries {
            if peer.dropped {
                return;
            }
            match entry {
                Entry::Renet(packet) => {
                    peer.gate.received(packet);
                    if let Err(error) = self.server.process_packet_from(packet, client) {
                        tracing::debug!(client, %error, "bad renet packet");
                    }
                    peer.dropped = !self.server.is_connected(client);
                    // Only renet packets can leave messages in renet (most
                    // datagrams carry inputs and pings in packs alone).
                    if !peer.active {
                        peer.active = true;
                        self.active.push(client);
                    }
                }
                // All of them, however many: the datagram is already read
                // and opened, and the net loop's rate limits (which kick a
                // flooding client) must see every message to count it.
                Entry::Message(bytes) => match self
                    .answerer
                    .filter(|_| !peer.unanswered)
                    .and_then(|answer| answer(bytes))
                {
                    Some(reply) => {
                        bounded_push(&mut peer.replies, reply);
                        self.answered.push((client, bytes.len()));
                    }
                    None => {
                        messages.push((client, UNRELIABLE, bytes::Bytes::copy_from_slice(bytes)))
                    }
                },
            }
        }
    }
}

type Messages = Vec<(ClientId, u8, bytes::Bytes)>;

/// Adds a small unreliable message to those waiting for a flush; the
/// oldest goes when too many wait (a newer snapshot or input supersedes it).
fn bounded_push(waiting: &mut Vec<Vec<u8>>, bytes: Vec<u8>) {
    if waiting.len() == MAX_QUEUED {
        waiting.remove(0);
    }
    waiting.push(bytes);
}

/// Disconnects a connection the socket refused in the shard that accepted
/// it; it was never a peer, so only its goodbye goes out.
fn refuse(netcode: &mut Shards, io: &mut Io, shard: Shard, client: ClientId, why: Refusal) {
    tracing::debug!(client, ?why, "connection refused");
    if let ServerResult::ClientDisconnected {
        addr,
        payload: Some(payload),
        ..
    } = netcode.server(shard).disconnect(client)
    {
        io.send(payload, addr);
    }
}

/// Packs a client's renet packets and messages into datagrams, encrypted
/// in its shard, into the send batch; notes when something went.
fn pack(
    (netcode, out, packer): (&mut Shards, &mut SendBatch, &mut Packer),
    (client, shard, gate, last_sent): (ClientId, Shard, &mut AckGate, &mut Option<Instant>),
    now: Instant,
    packets: &[Vec<u8>],
    messages: impl IntoIterator<Item = Vec<u8>>,
) {
    let mut sent = false;
    let mut emit = emitter(netcode.server(shard), out, client, &mut sent);
    packer.flush(gate, now, packets, messages, &mut emit);
    drop(emit);
    if sent {
        *last_sent = Some(now);
    }
}

/// Encrypts `client`'s payloads into datagrams in `out`; `sent` says
/// whether any was.
fn emitter<'a>(
    netcode: &'a mut NetcodeServer,
    out: &'a mut SendBatch,
    client: ClientId,
    sent: &'a mut bool,
) -> impl FnMut(&[u8]) + 'a {
    move |payload| match netcode.generate_payload_packet(client, payload) {
        Ok((addr, datagram)) => {
            out.push(addr, datagram);
            *sent = true;
        }
        Err(error) => tracing::debug!(client, %error, "cannot encrypt a packet"),
    }
}

/// A netcode server on one UDP socket.
pub struct ServerSocket {
    netcode: Shards,
    io: Io,
    bound: SocketAddr,
    incoming: RecvBatch,
    drops: DropTracker,
    /// Drops not logged yet, and when they last were.
    unlogged_drops: u64,
    last_drop_warning: Option<Instant>,
    packer: Packer,
    last_update: Instant,
    last_walk: Instant,
    /// Walks so far, and the clients the current one visits.
    walks: u32,
    walking: Vec<(Shard, ClientId)>,
    /// Datagrams the last [`ServerSocket::receive`] read.
    last_read: usize,
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
        let max_clients = max_clients.clamp(1, MAX_CLIENTS_PER_SOCKET);
        let config = |capacity| ServerConfig {
            current_time: unix_now(),
            max_clients: capacity,
            protocol_id: keys.protocol_id,
            public_addresses: vec![local],
            authentication: ServerAuthentication::Secure {
                private_key: keys.private_key,
            },
        };
        socket.set_nonblocking(true)?;
        // Only a count for /metrics: a kernel without it still serves.
        if let Err(error) = buffers::count_drops(&socket) {
            tracing::warn!(%error, "this kernel does not count a socket's dropped datagrams (SO_RXQ_OVFL): tessera_net_udp_receive_dropped_total stays 0");
        }
        let now = Instant::now();
        let channels = ConnectionConfig::default();
        let reliable_memory = super::reliable_memory(&channels.server_channels_config);
        Ok(Self {
            netcode: Shards::new(max_clients, config),
            io: Io {
                socket,
                out: SendBatch::default(),
                server: RenetServer::new(channels),
                peers: HashMap::new(),
                admission: Admission::new(max_clients),
                read_at: now,
                active: Vec::new(),
                reliable_memory,
                answerer: None,
                answered: Vec::new(),
            },
            bound,
            incoming: RecvBatch::default(),
            drops: DropTracker::default(),
            unlogged_drops: 0,
            last_drop_warning: None,
            packer: Packer::default(),
            last_update: now,
            last_walk: now,
            walks: 0,
            walking: Vec::new(),
            last_read: 0,
        })
    }

    /// Has the socket's thread answer the unreliable messages `answerer`
    /// answers (a latency probe, say), at once, without handing them on:
    /// the reply does not wait behind the net loop or a tick's sends.
    /// Each shows as [`TransportEvent::Answered`], so the client's limits
    /// still count it.
    pub fn answer_with(&mut self, answerer: Answerer) {
        self.io.answerer = Some(answerer);
    }

    /// The address clients connect to (what tokens name).
    pub fn local_addr(&self) -> SocketAddr {
        self.netcode.addresses()[0]
    }

    /// The address the socket is bound to.
    pub fn bound_addr(&self) -> SocketAddr {
        self.bound
    }

    /// Asks the kernel for buffers of `wanted` sizes; returns what it
    /// granted ([`buffers::resize`]: Linux caps them at `net.core.rmem_max`
    /// and `wmem_max` unless the process has `CAP_NET_ADMIN`).
    pub fn resize_buffers(&self, wanted: BufferSizes) -> std::io::Result<BufferSizes> {
        buffers::resize(&self.io.socket, wanted)
    }

    /// Datagrams the kernel dropped because the receive buffer was full,
    /// as of each read (a handle that stays valid on another thread).
    pub fn dropped(&self) -> Dropped {
        self.drops.total()
    }

    /// Connected clients (counting those being disconnected).
    pub fn connected(&self) -> usize {
        self.io.peers.len()
    }

    /// Nobody is connected and the last read found nothing (not even a
    /// handshake): the socket can be read less often.
    pub fn idle(&self) -> bool {
        self.last_read == 0 && self.io.peers.is_empty()
    }

    /// Receives what arrived: connection events into `events`, messages
    /// (renet's, at most `per_client` per client and channel; unreliable
    /// messages from packs, all of them) into `messages`.
    pub fn receive(
        &mut self,
        events: &mut Vec<TransportEvent>,
        messages: &mut Messages,
        per_client: usize,
    ) -> Result<(), TransportError> {
        let now = Instant::now();
        self.io.read_at = now;
        self.netcode.update(now - self.last_update);
        self.last_update = now;
        if now >= self.last_walk + WALK_EVERY {
            self.walk(now - self.last_walk, now, messages);
            self.last_walk = now;
        }
        self.last_read = 0;
        loop {
            let read = match self.incoming.recv(&self.io.socket) {
                Ok(read) => read,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => break,
                // A client's ICMP "port unreachable" comes back as a reset.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => continue,
                Err(e) => return Err(e.into()),
            };
            self.last_read += read;
            for index in 0..read {
                if let Some((addr, datagram)) = self.incoming.get(index) {
                    let (shard, result) = self.netcode.process_packet(addr, datagram);
                    if let Some((client, why)) = self.io.handle(result, shard, messages) {
                        refuse(&mut self.netcode, &mut self.io, shard, client, why);
                    }
                }
            }
            if let Some(counter) = self.incoming.drops() {
                self.unlogged_drops += self.drops.saw(counter);
            }
            if read == 0 || !self.incoming.filled() {
                break;
            }
        }
        self.warn_of_drops(now);
        while let Some(event) = self.io.server.get_event() {
            match event {
                ServerEvent::ClientConnected { client_id } => {
                    let shard = self.io.peers.get(&client_id).map_or(0, |peer| peer.shard);
                    let player = self
                        .netcode
                        .server(shard)
                        .user_data(client_id)
                        .map(|d| player_of(&d))
                        .unwrap_or(PlayerId(0));
                    events.push(TransportEvent::Connected {
                        client: client_id,
                        player,
                    });
                }
                ServerEvent::ClientDisconnected { client_id, reason } => {
                    self.io.peers.remove(&client_id);
                    events.push(TransportEvent::Disconnected {
                        client: client_id,
                        reason: reason.to_string(),
                    });
                }
            }
        }
        // Only clients that sent something can have new messages in renet;
        // one with more than `per_client` waiting stays for the next read.
        let mut still_active = Vec::new();
        for client in std::mem::take(&mut self.io.active) {
            let Some(peer) = self.io.peers.get_mut(&client) else {
                continue;
            };
            let mut more = false;
            for channel in [UNRELIABLE, RELIABLE, ORDERED] {
                let mut taken = 0;
                while taken < per_client {
                    let Some(bytes) = self.io.server.receive_message(client, channel) else {
                        break;
                    };
                    messages.push((client, channel, bytes));
                    taken += 1;
                }
                more |= taken == per_client;
            }
            peer.active = more;
            if more {
                still_active.push(client);
            }
        }
        self.io.active = still_active;
        // Replies go now; what else waits for their clients goes with the
        // net loop's flush, as it would have.
        let mut answered = std::mem::take(&mut self.io.answered);
        for &(client, bytes) in &answered {
            events.push(TransportEvent::Answered { client, bytes });
        }
        answered.sort_unstable_by_key(|&(client, _)| client);
        answered.dedup_by_key(|(client, _)| *client);
        for &(client, _) in &answered {
            self.flush_replies(client);
        }
        answered.clear();
        self.io.answered = answered;
        self.transmit();
        Ok(())
    }

    /// Says, at most every [`WARN_DROPS_EVERY`], how many datagrams the
    /// kernel dropped since the last time: clients' inputs and pings lost
    /// before the node could read them.
    fn warn_of_drops(&mut self, now: Instant) {
        if self.unlogged_drops == 0
            || self
                .last_drop_warning
                .is_some_and(|last| now < last + WARN_DROPS_EVERY)
        {
            return;
        }
        tracing::warn!(
            socket = %self.bound,
            dropped = self.unlogged_drops,
            "the kernel dropped datagrams for this socket: its receive buffer was full while the node was busy (see udp_receive_buffer_bytes and net.core.rmem_max)"
        );
        self.unlogged_drops = 0;
        self.last_drop_warning = Some(now);
    }

    /// Advances every connection's clocks: renet's (resends) and netcode's
    /// (timeouts, keep-alives) where it may have something to do (see
    /// [`Peer::busy`]), and completes disconnections.
    fn walk(&mut self, elapsed: Duration, now: Instant, messages: &mut Messages) {
        self.io.server.update(elapsed);
        self.walks = self.walks.wrapping_add(1);
        let mut walking = std::mem::take(&mut self.walking);
        walking.clear();
        if self.walks.is_multiple_of(FULL_WALK_EVERY) {
            walking.extend(self.netcode.clients());
        } else {
            walking.extend(
                self.io
                    .peers
                    .iter()
                    .filter(|(_, peer)| !peer.busy(now))
                    .map(|(client, peer)| (peer.shard, *client)),
            );
        }
        for &(shard, client) in &walking {
            let result = self.netcode.server(shard).update_client(client);
            self.io.handle(result, shard, messages);
        }
        self.walking = walking;
        for client in self.io.server.disconnections_id() {
            // renet knows only peers; one gone already has nothing left.
            let Some(shard) = self.io.peers.get(&client).map(|peer| peer.shard) else {
                continue;
            };
            let result = self.netcode.server(shard).disconnect(client);
            self.io.handle(result, shard, messages);
        }
    }

    /// Queues `bytes` for `client` on `channel`.
    pub fn send(&mut self, client: ClientId, channel: u8, bytes: Vec<u8>) {
        match self.io.peers.get_mut(&client).filter(|peer| !peer.dropped) {
            Some(peer) if channel == UNRELIABLE && bytes.len() <= MAX_DIRECT => {
                bounded_push(&mut peer.queued, bytes)
            }
            Some(peer) => {
                peer.renet_queued = true;
                self.io.server.send_message(client, channel, bytes);
                // A channel over its memory limit drops the connection.
                peer.dropped = !self.io.server.is_connected(client);
            }
            None => {}
        }
    }

    /// Disconnects `client` (it is told, then dropped).
    pub fn disconnect(&mut self, client: ClientId) {
        self.io.server.disconnect(client);
        if let Some(peer) = self.io.peers.get_mut(&client) {
            peer.dropped = true;
        }
    }

    /// Stops answering `client`'s messages ([`ServerSocket::answer_with`]):
    /// the net loop has kicked it and counts nothing more from it.
    pub fn stop_answering(&mut self, client: ClientId) {
        if let Some(peer) = self.io.peers.get_mut(&client) {
            peer.unanswered = true;
        }
    }

    /// Disconnects everyone at once (shutdown).
    pub fn disconnect_all(&mut self) {
        let mut ignored = Vec::new();
        for (shard, client) in self.netcode.clients() {
            let result = self.netcode.server(shard).disconnect(client);
            self.io.handle(result, shard, &mut ignored);
        }
        self.transmit();
    }

    /// Sends the datagrams built since the last call (flushes, replies to
    /// handshakes and keep-alives): together, in as few system calls as
    /// the platform allows. [`ServerSocket::receive`] ends with it; the
    /// caller sends after flushing.
    pub fn transmit(&mut self) {
        if !self.io.out.is_empty() {
            self.io.out.send(&self.io.socket);
        }
    }

    /// Builds the datagrams for everything queued, and renet's resends and
    /// acknowledgements (sent by [`ServerSocket::transmit`]).
    pub fn flush(&mut self) {
        for client in self.io.server.clients_id() {
            self.flush_peer(client, true);
        }
    }

    /// Builds the datagrams for what is queued for one client only, as few
    /// as its renet packets and messages fit in (sent by
    /// [`ServerSocket::transmit`]).
    pub fn flush_client(&mut self, client: ClientId) {
        self.flush_peer(client, false);
    }

    /// renet is asked for its packets only when it has something new or an
    /// acknowledgement is owed, or on a full flush (`all`) when it may have
    /// a resend or the periodic acknowledgement is due: asking costs a walk
    /// over its channels and a serialised acknowledgement (thrown away when
    /// not due), and most flushes carry only snapshots.
    fn flush_peer(&mut self, client: ClientId, all: bool) {
        let Some(peer) = self.io.peers.get_mut(&client) else {
            return;
        };
        let now = Instant::now();
        let (server, reliable) = (&self.io.server, &self.io.reliable_memory);
        let resend = || {
            reliable
                .iter()
                .any(|&(channel, memory)| server.channel_available_memory(client, channel) < memory)
        };
        let packets = if peer.renet_queued
            || peer.gate.owed()
            || (all && (peer.gate.wants_ack(now) || resend()))
        {
            peer.renet_queued = false;
            let packets = self
                .io
                .server
                .get_packets_to_send(client)
                .unwrap_or_default();
            // A packet renet cannot write drops the connection.
            peer.dropped = !self.io.server.is_connected(client);
            packets
        } else {
            Vec::new()
        };
        if peer.dropped {
            // The walk tells netcode; nothing more goes to it meanwhile.
            peer.queued.clear();
            peer.replies.clear();
            return;
        }
        pack(
            (&mut self.netcode, &mut self.io.out, &mut self.packer),
            (client, peer.shard, &mut peer.gate, &mut peer.last_sent),
            now,
            &packets,
            peer.replies.drain(..).chain(peer.queued.drain(..)),
        );
    }

    /// Builds the datagrams of `client`'s replies alone (sent by
    /// [`ServerSocket::transmit`]).
    fn flush_replies(&mut self, client: ClientId) {
        let Some(peer) = self.io.peers.get_mut(&client) else {
            return;
        };
        if peer.dropped {
            peer.replies.clear();
            return;
        }
        pack(
            (&mut self.netcode, &mut self.io.out, &mut self.packer),
            (client, peer.shard, &mut peer.gate, &mut peer.last_sent),
            Instant::now(),
            &[],
            peer.replies.drain(..),
        );
    }
}

#[cfg(all(test, target_os = "linux"))]
pub(super) mod tests;
