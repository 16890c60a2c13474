//! The net thread: owns the server sockets, turns datagrams into world
//! inputs and world output into datagrams. It never waits on a world: inputs
//! go into bounded inboxes, output comes back through a channel.
//!
//! Per client, message count and bytes are rate limited *before* decoding; a
//! client over its limit is kicked with a reason, as is one that keeps
//! sending garbage. A second connection of the same player replaces the
//! first, which is kicked with `LOGGED_IN_ELSEWHERE`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::Duration,
};

use tessera_sim::{Input, InputEnvelope, PlayerId};

pub use crate::stats::{NetStats, Rejections};

mod messages;
mod net_loop;

use net_loop::Loop;

use crate::{
    codec::RoomRequest,
    frames::Uplink,
    proto,
    transport::{ServerSocket, SocketWorker},
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

    /// Worlds the host put others in place of (a crashed zone started
    /// again), each with its replacement: every player whose join went to
    /// the first is moved to the second, with the join the host makes of a
    /// plain one ([`Host::adapt_join`]). Called every pass; keep it cheap.
    fn replaced(&mut self) -> Vec<(Arc<dyn InputSink>, Arc<dyn InputSink>)> {
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

    /// About once a second: lets the host forget what it keeps for players
    /// until they arrive (e.g. progress loaded at login) once they are not
    /// `present`: neither connected nor within their reconnect grace.
    fn sweep(&mut self, _present: &dyn Fn(PlayerId) -> bool) {}

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
        let udp_dropped = sockets.iter().map(ServerSocket::dropped).collect();
        let sockets = sockets
            .into_iter()
            .enumerate()
            .map(|(index, mut socket)| {
                socket.answer_with(crate::codec::answer_ping);
                SocketWorker::start(socket, index)
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        let (outgoing, outgoing_rx) = mpsc::channel();
        let (evictions, evictions_rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(NetStats {
            udp_dropped,
            ..NetStats::default()
        });
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
