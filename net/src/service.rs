//! The net thread: owns the server sockets, turns datagrams into world
//! inputs and world output into datagrams. It never waits on a world: inputs
//! go into bounded inboxes, output comes back through a channel.
//!
//! Per client, message count and bytes are rate limited *before* decoding; a
//! client over its limit is kicked with a reason, as is one that keeps
//! sending garbage. A second connection of the same player replaces the
//! first, which is kicked with `LOGGED_IN_ELSEWHERE`.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use tessera_sim::{Input, InputEnvelope, PlayerId};

pub use crate::stats::{NetStats, Rejections};

use crate::{
    codec::{Command, RoomRequest, decode_client, encode_server},
    frames::Uplink,
    proto::{self, server_message::Body},
    rate::TokenBucket,
    transport::{ClientId, ORDERED, ServerSocket, SocketWorker, TransportEvent, UNRELIABLE},
};

/// Where a player's inputs go (a world's inbox).
pub trait InputSink: Send + Sync {
    /// Queues an input; `Err` says why it could not (full, ended).
    fn send(&self, envelope: InputEnvelope) -> Result<(), String>;

    /// The player has snapshot `id` (state-sync worlds use it as the next
    /// delta's baseline).
    fn ack(&self, _player: PlayerId, _id: u32) {}

    /// Queues a player's frame-sync commands (lockstep rooms only).
    fn send_frames(&self, _player: PlayerId, _uplink: Uplink) -> Result<(), String> {
        Err("not a frame-sync room".into())
    }
}

/// A player to move to another world, and the input to send there.
pub type Move = (PlayerId, Arc<dyn InputSink>, Input);

/// What a room command did.
#[derive(Default)]
pub struct RoomOutcome {
    /// The rooms listed.
    pub rooms: Vec<proto::RoomInfo>,
    /// The room created or joined (0: none).
    pub room: u64,
    /// Who moves where (a `Join` with an empty class is completed with the
    /// class the player last joined with).
    pub moves: Vec<Move>,
}

/// The node's side of the net thread: which world a connecting player plays in.
pub trait Host: Send + 'static {
    /// The world for `player`, or `None` to refuse them.
    fn world_for(&mut self, player: PlayerId) -> Option<Arc<dyn InputSink>>;

    /// The world a `Join` naming `world` (a `zones` row id) goes to: a zone,
    /// or a room of that kind with room for the player (found or made).
    fn world_for_join(
        &mut self,
        player: PlayerId,
        world: &str,
    ) -> Result<Arc<dyn InputSink>, String> {
        if world.is_empty() {
            self.world_for(player)
                .ok_or_else(|| "no world to join".into())
        } else {
            Err(format!("no world {world:?} on this node"))
        }
    }

    /// Players the host moves to another world (e.g. a formed match), each
    /// with the input to send there. Called every pass; keep it cheap.
    fn poll(&mut self) -> Vec<Move> {
        Vec::new()
    }

    /// A room or matchmaking command from `player`, whose messages go to
    /// `current` now.
    fn room(
        &mut self,
        _player: PlayerId,
        _current: Option<Arc<dyn InputSink>>,
        _request: RoomRequest,
    ) -> Result<RoomOutcome, String> {
        Err("this node has no rooms".into())
    }

    /// `player` is gone from this node (their avatar was told to leave for
    /// good): forget what was kept for them.
    fn departed(&mut self, _player: PlayerId) {}

    /// Lets the host complete a player's `Join` (e.g. with saved progress).
    fn adapt_join(&mut self, _player: PlayerId, input: Input) -> Input {
        input
    }
}

/// Per-client limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Messages per second (burst: one second's worth).
    pub messages_per_sec: u64,
    /// Bytes per second (burst: one second's worth).
    pub bytes_per_sec: u64,
    /// Undecodable messages tolerated before a kick.
    pub malformed_allowed: u32,
    /// How long a dropped player's avatar waits for them to reconnect.
    pub reconnect_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            messages_per_sec: 200,
            bytes_per_sec: 64 * 1024,
            malformed_allowed: 20,
            reconnect_grace: Duration::from_secs(10),
        }
    }
}

struct Client {
    player: PlayerId,
    sink: Option<Arc<dyn InputSink>>,
    messages: TokenBucket,
    bytes: TokenBucket,
    malformed: u32,
    /// The player left its world on this connection: rejoining needs a new
    /// login, which loads the progress saved since.
    left: bool,
    /// A join went to `sink`: switching worlds must leave it first.
    joined: bool,
    /// The class of the player's last join (for moves that name none).
    class: String,
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

/// A running net thread.
pub struct NetService {
    outgoing: mpsc::Sender<Vec<(PlayerId, u8, Vec<u8>)>>,
    evictions: mpsc::Sender<PlayerId>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<NetStats>,
}

impl NetService {
    /// Starts the net thread over `sockets`, each on a thread of its own.
    pub fn start(
        sockets: Vec<ServerSocket>,
        host: impl Host,
        limits: Limits,
    ) -> std::io::Result<Self> {
        let sockets = sockets
            .into_iter()
            .enumerate()
            .map(|(index, socket)| SocketWorker::start(socket, index))
            .collect::<std::io::Result<Vec<_>>>()?;
        let (outgoing, outgoing_rx) = mpsc::channel();
        let (evictions, evictions_rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(NetStats::default());
        let thread = {
            let (stop, stats) = (stop.clone(), stats.clone());
            std::thread::Builder::new()
                .name("tessera-net".into())
                .spawn(move || {
                    Loop::new(sockets, host, limits, stats).run(&outgoing_rx, &evictions_rx, &stop)
                })?
        };
        Ok(Self {
            outgoing,
            evictions,
            stop,
            thread: Some(thread),
            stats,
        })
    }

    /// Where worlds send what their players should receive.
    pub fn outgoing(&self) -> mpsc::Sender<Vec<(PlayerId, u8, Vec<u8>)>> {
        self.outgoing.clone()
    }

    /// Where the node sends players who logged in on another node: their
    /// connection here is kicked with `LOGGED_IN_ELSEWHERE` and their avatar
    /// leaves at once (so its progress is written for the other node).
    pub fn evictions(&self) -> mpsc::Sender<PlayerId> {
        self.evictions.clone()
    }

    /// Counters.
    pub fn stats(&self) -> Arc<NetStats> {
        self.stats.clone()
    }

    /// Kicks everyone with `SHUTDOWN` and stops the thread.
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for NetService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Loop<H> {
    sockets: Vec<SocketWorker>,
    host: H,
    limits: Limits,
    stats: Arc<NetStats>,
    clients: BTreeMap<(usize, ClientId), Client>,
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
    fn new(sockets: Vec<SocketWorker>, host: H, limits: Limits, stats: Arc<NetStats>) -> Self {
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
    fn send_to(&mut self, socket: usize, client: ClientId, channel: u8, bytes: Vec<u8>) {
        self.sockets[socket].send(client, channel, bytes);
        self.touched.insert((socket, client));
    }

    fn now_nanos(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    fn run(
        mut self,
        outgoing: &mpsc::Receiver<Vec<(PlayerId, u8, Vec<u8>)>>,
        evictions: &mpsc::Receiver<PlayerId>,
        stop: &AtomicBool,
    ) {
        let mut events = Vec::new();
        let mut messages = Vec::new();
        let mut next_full_flush = Instant::now();
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
            std::thread::sleep(Duration::from_millis(1));
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
        }
    }

    /// Forgets a connection. Unless the player has already reconnected on
    /// another connection, their avatar leaves its world: at once if `now`
    /// (kicked), else when the reconnect grace period ends.
    fn forget(&mut self, socket: usize, client: ClientId, now: bool) -> Option<PlayerId> {
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
    fn reassign(&mut self, player: PlayerId, sink: Arc<dyn InputSink>, input: Input, request: u32) {
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

    fn drop_client(
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
        self.closing
            .push((Instant::now() + KICK_GRACE, socket, client));
    }

    /// Sends a typed refusal on the ordered channel.
    fn respond(
        &mut self,
        socket: usize,
        client: ClientId,
        request: u32,
        code: proto::ResultCode,
        reason: &str,
    ) {
        self.stats.rejected.count(match code {
            proto::ResultCode::NotInWorld => "not_in_world",
            proto::ResultCode::Malformed => "malformed",
            _ => "refused",
        });
        let response = proto::Response {
            request,
            code: code as i32,
            reason: reason.to_string(),
            ..proto::Response::default()
        };
        self.send_response(socket, client, response);
    }

    /// A join or room command on a connection whose player left its world:
    /// rejoining needs a new login (which loads what was saved since).
    fn refuse_after_leave(&mut self, socket: usize, client: ClientId, request: u32) {
        self.respond(
            socket,
            client,
            request,
            proto::ResultCode::NotInWorld,
            "log in again to rejoin",
        );
    }

    fn send_response(&mut self, socket: usize, client: ClientId, response: proto::Response) {
        let bytes = encode_server(&proto::ServerMessage {
            body: Some(Body::Response(response)),
        });
        self.send_to(socket, client, ORDERED, bytes);
    }

    /// Hands an input to the client's world, or tells the client why not.
    fn forward(&mut self, socket: usize, client: ClientId, request: u32, input: Input) {
        let Some(state) = self.clients.get(&(socket, client)) else {
            return;
        };
        let envelope = InputEnvelope {
            request,
            ..InputEnvelope::new(state.player, input)
        };
        let refused = match &state.sink {
            Some(sink) => sink.send(envelope).err(),
            None => Some("not in a world".into()),
        };
        if let Some(reason) = refused {
            self.respond(
                socket,
                client,
                request,
                proto::ResultCode::NotInWorld,
                &reason,
            );
        }
    }

    fn on_message(&mut self, socket: usize, client: ClientId, channel: u8, bytes: &[u8]) {
        let now = self.now_nanos();
        let Some(state) = self.clients.get_mut(&(socket, client)) else {
            return;
        };
        self.stats.messages_in.fetch_add(1, Ordering::Relaxed);
        self.stats
            .bytes_in
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        if !state.messages.try_take(1, now) || !state.bytes.try_take(bytes.len() as u64, now) {
            self.forget(socket, client, true);
            return self.drop_client(
                socket,
                client,
                proto::KickReason::Flooding,
                "over the message rate limit",
            );
        }
        match decode_client(bytes) {
            Ok((request, Command::Join { class, world })) => {
                if state.left {
                    return self.refuse_after_leave(socket, client, request);
                }
                if !world.is_empty() {
                    match self.host.world_for_join(state.player, &world) {
                        Ok(sink) => {
                            let player = state.player;
                            let old = state.sink.replace(sink.clone());
                            // A different world: the avatar in the old one
                            // leaves, or it would be left behind.
                            if state.joined
                                && let Some(old) = old
                                && !Arc::ptr_eq(&old, &sink)
                            {
                                let _ = old.send(InputEnvelope::new(player, Input::Leave));
                            }
                        }
                        Err(reason) => {
                            return self.respond(
                                socket,
                                client,
                                request,
                                proto::ResultCode::NotInWorld,
                                &reason,
                            );
                        }
                    }
                }
                state.joined = true;
                state.class.clone_from(&class);
                let input = self.host.adapt_join(state.player, Input::Join { class });
                self.forward(socket, client, request, input);
            }
            Ok((_, Command::Frames(uplink))) => {
                if let Some(sink) = &state.sink
                    && let Err(reason) = sink.send_frames(state.player, uplink)
                {
                    tracing::debug!(socket, client, reason, "frame commands dropped");
                    self.stats.rejected.count("frames_not_taken");
                }
            }
            Ok((request, Command::World(input))) => {
                let leaving = matches!(input, Input::Leave).then_some(state.player);
                if leaving.is_some() {
                    state.left = true;
                }
                self.forward(socket, client, request, input);
                // Out of play until a new login: a queue ticket or anything
                // else kept for the player goes now.
                if let Some(player) = leaving {
                    self.host.departed(player);
                }
            }
            Ok((_, Command::Ping(client_time_us))) => {
                let pong = proto::Pong {
                    client_time_us,
                    server_tick: 0,
                };
                let bytes = encode_server(&proto::ServerMessage {
                    body: Some(Body::Pong(pong)),
                });
                self.send_to(socket, client, UNRELIABLE, bytes);
            }
            Ok((request, Command::Room(command))) => {
                if state.left {
                    return self.refuse_after_leave(socket, client, request);
                }
                let (player, current) = (state.player, state.sink.clone());
                match self.host.room(player, current, command) {
                    Ok(outcome) => {
                        for (moved, sink, input) in outcome.moves {
                            let number = if moved == player { request } else { 0 };
                            self.reassign(moved, sink, input, number);
                        }
                        self.send_response(
                            socket,
                            client,
                            proto::Response {
                                request,
                                code: proto::ResultCode::Ok as i32,
                                rooms: outcome.rooms,
                                room: outcome.room,
                                ..proto::Response::default()
                            },
                        );
                    }
                    Err(reason) => self.respond(
                        socket,
                        client,
                        request,
                        proto::ResultCode::Rejected,
                        &reason,
                    ),
                }
            }
            Ok((_, Command::Ack(id))) => {
                if let Some(sink) = &state.sink {
                    sink.ack(state.player, id);
                }
            }
            Err(error) => {
                self.stats.malformed.fetch_add(1, Ordering::Relaxed);
                self.stats.rejected.count("malformed");
                state.malformed += 1;
                let too_many = state.malformed > self.limits.malformed_allowed;
                tracing::debug!(socket, client, channel, %error, "malformed message");
                if too_many {
                    self.forget(socket, client, true);
                    self.drop_client(
                        socket,
                        client,
                        proto::KickReason::Malformed,
                        "too many malformed messages",
                    );
                }
            }
        }
    }
}
