//! The net thread's loop: connections come and go, datagrams are read and
//! handed on, world output is sent, dropped players wait out their grace
//! period, and kicked connections are closed once their reason went out.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use tessera_sim::{Input, InputEnvelope, PlayerId};

use super::{Host, InputSink, Limits, NetStats};
use crate::{
    codec::encode_server,
    proto::{self, server_message::Body},
    rate::TokenBucket,
    transport::{ClientId, ORDERED, SocketWorker, TransportEvent},
};

pub(super) struct Client {
    pub(super) player: PlayerId,
    pub(super) sink: Option<Arc<dyn InputSink>>,
    pub(super) messages: TokenBucket,
    pub(super) bytes: TokenBucket,
    pub(super) malformed: u32,
    /// The player left its world on this connection: rejoining needs a new
    /// login, which loads the progress saved since.
    pub(super) left: bool,
    /// A join went to `sink`: switching worlds must leave it first.
    pub(super) joined: bool,
    /// The class of the player's last join (for moves that name none).
    pub(super) class: String,
}

/// A dropped player's avatar, waiting for them in its world.
struct Away {
    /// When it leaves (or, once told to, when to try again).
    deadline: Instant,
    sink: Arc<dyn InputSink>,
    /// What the connection knew: whether a join went to `sink`, and the class.
    joined: bool,
    class: String,
    /// Leaves the world would not take (inbox full, or the world is gone).
    refused: u32,
}

/// Tries to deliver a leave for a gone player before giving up: 5 s of
/// full inboxes, or a world that has ended and never will take it.
const LEAVE_TRIES: u32 = 50;

pub(super) struct Loop<H> {
    sockets: Vec<SocketWorker>,
    pub(super) host: H,
    pub(super) limits: Limits,
    pub(super) stats: Arc<NetStats>,
    pub(super) clients: BTreeMap<(usize, ClientId), Client>,
    players: BTreeMap<PlayerId, (usize, ClientId)>,
    /// Kicked connections, closed a moment after their kick message went
    /// out: renet drops unread messages on disconnect, so closing at once
    /// would swallow the reason.
    closing: Vec<(Instant, usize, ClientId)>,
    /// Dropped players whose avatars wait for them, until the deadline.
    away: BTreeMap<PlayerId, Away>,
    /// Connections sent to since the last flush.
    touched: std::collections::BTreeSet<(usize, ClientId)>,
    started: Instant,
}

/// How often every connection is flushed (acknowledgements nobody waits
/// for, resends), whether or not anything new was sent to it: well inside
/// renet's resend time, and rare enough that walking every connection's
/// channels stays cheap.
const FULL_FLUSH: Duration = Duration::from_millis(100);

/// The net loop's pace while it has clients, and with none.
const PASS: Duration = Duration::from_millis(1);
const IDLE_PASS: Duration = Duration::from_millis(10);

/// How often the host may forget what it keeps for players who are gone.
const SWEEP: Duration = Duration::from_secs(1);

/// How long a kicked client has to read why.
const KICK_GRACE: Duration = Duration::from_millis(250);

fn kick(reason: proto::KickReason, detail: &str) -> Vec<u8> {
    encode_server(&proto::ServerMessage {
        body: Some(Body::Kick(proto::Kick {
            reason: reason as i32,
            detail: detail.into(),
        })),
    })
}

impl<H: Host> Loop<H> {
    pub(super) fn new(
        sockets: Vec<SocketWorker>,
        host: H,
        limits: Limits,
        stats: Arc<NetStats>,
    ) -> Self {
        Self {
            sockets,
            host,
            limits,
            stats,
            clients: BTreeMap::new(),
            players: BTreeMap::new(),
            closing: Vec::new(),
            away: BTreeMap::new(),
            touched: std::collections::BTreeSet::new(),
            started: Instant::now(),
        }
    }

    /// Queues a message; the connection is flushed at the end of the pass.
    pub(super) fn send_to(&mut self, socket: usize, client: ClientId, channel: u8, bytes: Vec<u8>) {
        self.sockets[socket].send(client, channel, bytes);
        self.touched.insert((socket, client));
    }

    pub(super) fn now_nanos(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    pub(super) fn run(
        mut self,
        outgoing: &mpsc::Receiver<Vec<(PlayerId, u8, Vec<u8>)>>,
        evictions: &mpsc::Receiver<PlayerId>,
        stop: &AtomicBool,
    ) {
        let mut events = Vec::new();
        let mut messages = Vec::new();
        let mut next_full_flush = Instant::now();
        let mut next_sweep = Instant::now() + SWEEP;
        while !stop.load(Ordering::Relaxed) {
            for socket in 0..self.sockets.len() {
                events.clear();
                messages.clear();
                // Each socket thread takes a bounded batch per client per
                // pass: one flooding client cannot stall the others.
                if let Err(error) = self.sockets[socket].receive(&mut events, &mut messages) {
                    tracing::warn!(socket, %error, "net receive failed");
                }
                for event in events.drain(..) {
                    self.on_event(socket, event);
                }
                for (client, channel, bytes) in messages.drain(..) {
                    self.on_message(socket, client, channel, &bytes);
                }
            }
            for batch in outgoing.try_iter() {
                for (player, channel, bytes) in batch {
                    if let Some((socket, client)) = self.players.get(&player).copied() {
                        self.stats.messages_out.fetch_add(1, Ordering::Relaxed);
                        self.stats
                            .bytes_out
                            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                        self.send_to(socket, client, channel, bytes);
                    }
                }
            }
            for player in evictions.try_iter() {
                self.evict(player);
            }
            for (player, sink, input) in self.host.poll() {
                self.reassign(player, sink, input, 0);
            }
            for (old, new) in self.host.replaced() {
                self.move_all(&old, &new);
            }
            let now = Instant::now();
            let mut departed = Vec::new();
            self.away.retain(|player, away| {
                let expired = away.deadline <= now;
                if expired {
                    if away.refused == 0 {
                        tracing::info!(%player, "reconnect grace over: the avatar leaves");
                    }
                    let leave = InputEnvelope::new(*player, Input::Leave);
                    if let Err(reason) = away.sink.send(leave) {
                        away.refused += 1;
                        if away.refused < LEAVE_TRIES {
                            // A full inbox: try again shortly rather than
                            // leave an orphaned avatar behind.
                            away.deadline = now + Duration::from_millis(100);
                            return true;
                        }
                        tracing::warn!(%player, reason, "the world never took the leave: giving up on it");
                    }
                    departed.push(*player);
                }
                !expired
            });
            for player in departed {
                self.host.departed(player);
            }
            if now >= next_sweep {
                let (players, away) = (&self.players, &self.away);
                self.host
                    .sweep(&|player| players.contains_key(&player) || away.contains_key(&player));
                next_sweep = now + SWEEP;
            }
            let sockets = &mut self.sockets;
            self.closing.retain(|(at, socket, client)| {
                let due = *at <= now;
                if due {
                    sockets[*socket].disconnect(*client);
                }
                !due
            });
            // Only clients with something new are sent to now; everyone
            // else (acknowledgements, resends) at the periodic flush.
            if now >= next_full_flush {
                for socket in &mut self.sockets {
                    socket.flush();
                }
                self.touched.clear();
                next_full_flush = now + FULL_FLUSH;
            } else {
                for (socket, client) in std::mem::take(&mut self.touched) {
                    self.sockets[socket].flush_client(client);
                }
            }
            for socket in &mut self.sockets {
                socket.submit();
            }
            // With nobody connected or waiting to be, nothing is due soon: a
            // new connection reaches the socket threads first, which read
            // an idle socket at the same slower pace.
            let idle = self.clients.is_empty() && self.away.is_empty() && self.closing.is_empty();
            std::thread::sleep(if idle { IDLE_PASS } else { PASS });
        }
        let goodbye = kick(proto::KickReason::Shutdown, "the node is shutting down");
        for ((socket, client), _) in std::mem::take(&mut self.clients) {
            self.sockets[socket].send(client, ORDERED, goodbye.clone());
        }
        for socket in &mut self.sockets {
            socket.flush();
            socket.disconnect_all();
        }
    }

    fn on_event(&mut self, socket: usize, event: TransportEvent) {
        match event {
            TransportEvent::Connected { client, player } => {
                let mut replaced = None;
                if let Some((old_socket, old_client)) =
                    self.players.insert(player, (socket, client))
                {
                    let message = kick(
                        proto::KickReason::LoggedInElsewhere,
                        "this player connected again",
                    );
                    self.send_to(old_socket, old_client, ORDERED, message);
                    self.closing
                        .push((Instant::now() + KICK_GRACE, old_socket, old_client));
                    // The old connection's avatar is the new one's now: no
                    // Leave, and the same world.
                    replaced = self.clients.remove(&(old_socket, old_client));
                }
                // Back within the grace period: the same avatar, same world
                // (and a later switch of worlds must make it leave).
                let (sink, joined, class) = match (self.away.remove(&player), replaced) {
                    (Some(away), _) => (Some(away.sink), away.joined, away.class),
                    (None, Some(old)) => (old.sink, old.joined, old.class),
                    (None, None) => (self.host.world_for(player), false, String::new()),
                };
                let now = self.now_nanos();
                self.clients.insert(
                    (socket, client),
                    Client {
                        player,
                        sink,
                        messages: TokenBucket::new(
                            self.limits.messages_per_sec,
                            self.limits.messages_per_sec,
                            now,
                        ),
                        bytes: TokenBucket::new(
                            self.limits.bytes_per_sec,
                            self.limits.bytes_per_sec,
                            now,
                        ),
                        malformed: 0,
                        left: false,
                        joined,
                        class,
                    },
                );
                self.stats
                    .connected
                    .store(self.clients.len() as u64, Ordering::Relaxed);
                tracing::info!(%player, socket, client, "client connected");
            }
            TransportEvent::Disconnected { client, reason } => {
                if let Some(player) = self.forget(socket, client, false) {
                    tracing::info!(%player, %reason, "client disconnected");
                }
            }
            // Answered by the socket (a ping), counted here all the same.
            TransportEvent::Answered { client, bytes } => {
                self.admit(socket, client, bytes);
            }
        }
    }

    /// Forgets a connection. Unless the player has already reconnected on
    /// another connection, their avatar leaves its world: at once if `now`
    /// (kicked), else when the reconnect grace period ends.
    pub(super) fn forget(
        &mut self,
        socket: usize,
        client: ClientId,
        now: bool,
    ) -> Option<PlayerId> {
        let gone = self.clients.remove(&(socket, client))?;
        if self.players.get(&gone.player) == Some(&(socket, client)) {
            self.players.remove(&gone.player);
            if let Some(sink) = gone.sink {
                let mut away = Away {
                    deadline: Instant::now() + self.limits.reconnect_grace,
                    sink,
                    joined: gone.joined,
                    class: gone.class,
                    refused: 0,
                };
                if now {
                    let leave = InputEnvelope::new(gone.player, Input::Leave);
                    if away.sink.send(leave).is_err() {
                        // Retried by the `away` sweep until the world takes it.
                        away.deadline = Instant::now();
                        away.refused = 1;
                        self.away.insert(gone.player, away);
                    } else {
                        self.host.departed(gone.player);
                    }
                } else {
                    self.away.insert(gone.player, away);
                }
            }
        }
        self.stats
            .connected
            .store(self.clients.len() as u64, Ordering::Relaxed);
        Some(gone.player)
    }

    /// Moves `player`'s connection to `sink` and sends it `input` there;
    /// the avatar in the world they were in leaves it.
    pub(super) fn reassign(
        &mut self,
        player: PlayerId,
        sink: Arc<dyn InputSink>,
        input: Input,
        request: u32,
    ) {
        let mut input = input;
        let old = match self.players.get(&player).copied() {
            Some(key) => match self.clients.get_mut(&key) {
                Some(state) => {
                    if let Input::Join { class } = &mut input
                        && class.is_empty()
                    {
                        class.clone_from(&state.class);
                    }
                    let old = state.sink.replace(sink.clone()).filter(|_| state.joined);
                    state.joined = true;
                    old
                }
                None => None,
            },
            // Dropped and within the grace period: the avatar joins the
            // room and waits there for the player, like anywhere else.
            None => match self.away.get_mut(&player) {
                Some(away) => {
                    if let Input::Join { class } = &mut input
                        && class.is_empty()
                    {
                        class.clone_from(&away.class);
                    }
                    let joined = std::mem::replace(&mut away.joined, true);
                    Some(std::mem::replace(&mut away.sink, sink.clone())).filter(|_| joined)
                }
                None => {
                    tracing::info!(%player, "matched after leaving: not joining the room");
                    return;
                }
            },
        };
        if let Some(old) = old
            && !Arc::ptr_eq(&old, &sink)
        {
            let _ = old.send(InputEnvelope::new(player, Input::Leave));
        }
        let envelope = InputEnvelope {
            request,
            ..InputEnvelope::new(player, input)
        };
        if let Err(reason) = sink.send(envelope) {
            tracing::warn!(%player, reason, "could not join the room");
        }
    }

    /// Moves every player whose join went to `old` (connected or away) to
    /// `new`, joining it.
    fn move_all(&mut self, old: &Arc<dyn InputSink>, new: &Arc<dyn InputSink>) {
        let connected = self
            .clients
            .values()
            .filter(|c| c.joined && c.sink.as_ref().is_some_and(|s| Arc::ptr_eq(s, old)))
            .map(|c| c.player);
        let away = self
            .away
            .iter()
            .filter(|(_, a)| a.joined && Arc::ptr_eq(&a.sink, old))
            .map(|(player, _)| *player);
        let players: Vec<PlayerId> = connected.chain(away).collect();
        for player in players {
            let join = Input::Join {
                class: String::new(),
            };
            let input = self.host.adapt_join(player, join);
            self.reassign(player, new.clone(), input, 0);
        }
    }

    /// Ends `player`'s presence on this node: kicks the connection, and the
    /// avatar leaves now rather than after the reconnect grace.
    fn evict(&mut self, player: PlayerId) {
        if let Some((socket, client)) = self.players.get(&player).copied() {
            self.drop_client(
                socket,
                client,
                proto::KickReason::LoggedInElsewhere,
                "this player logged in on another node",
            );
            self.forget(socket, client, true);
        } else if let Some(away) = self.away.get_mut(&player) {
            away.deadline = Instant::now();
        }
    }

    pub(super) fn drop_client(
        &mut self,
        socket: usize,
        client: ClientId,
        reason: proto::KickReason,
        detail: &str,
    ) {
        self.stats.kicked.fetch_add(1, Ordering::Relaxed);
        self.stats.rejected.count(match reason {
            proto::KickReason::Flooding => "rate_limited",
            proto::KickReason::Malformed => "malformed_repeatedly",
            _ => "kicked",
        });
        tracing::warn!(socket, client, ?reason, detail, "kicking client");
        self.send_to(socket, client, ORDERED, kick(reason, detail));
        // Its pings, like the rest, are not served during the grace.
        self.sockets[socket].stop_answering(client);
        self.closing
            .push((Instant::now() + KICK_GRACE, socket, client));
    }
}
