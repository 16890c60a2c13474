//! Putting worlds on the network: the UDP sockets, the net thread, and the
//! glue between worlds and clients (which world a player plays in, and how
//! a world's replication output reaches the net thread).

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, RwLock, mpsc},
};

use anyhow::Context;
use tessera_net::{
    replication::{AckBoard, Outgoing},
    service::{Host, InputSink, Limits, NetService},
    transport::{BufferSizes, MAX_BUFFER_BYTES, NetcodeKeys, ServerSocket},
};
use tessera_sim::{Input, InputEnvelope, PlayerId, SimWorld};

pub use crate::profiles::Profiles;
use crate::{
    config::NodeConfig,
    scheduler::{AfterTick, WorldHandle},
};

/// Environment variable holding the 64-hex-digit netcode private key.
pub const NETCODE_KEY_VAR: &str = "TESSERA_NETCODE_KEY";

/// A zone world as the net thread sees it: its inbox, and where its
/// players' snapshot acknowledgements go.
#[derive(Clone)]
pub struct ZoneSink {
    /// The world.
    pub world: WorldHandle,
    /// Its replication's acknowledgement board.
    pub acks: AckBoard,
}

impl InputSink for ZoneSink {
    fn send(&self, envelope: InputEnvelope) -> Result<(), String> {
        self.world.send(envelope).map_err(|e| e.to_string())
    }

    fn ack(&self, player: PlayerId, id: u32) {
        self.acks.ack(player, id);
    }
}

/// Teams as the zones last announced them, by member (a team leader
/// queues the whole team).
pub type Teams = Arc<std::sync::Mutex<BTreeMap<PlayerId, TeamNote>>>;

/// A team as its zone last announced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamNote {
    /// The team.
    pub team: tessera_sim::TeamId,
    /// Its leader.
    pub leader: PlayerId,
    /// Its members, in the order they joined.
    pub members: Vec<PlayerId>,
}

/// A zone world by its `zones` row id.
type Zone = (String, Arc<dyn InputSink>);

/// Sends connecting players to the node's first zone world, with the
/// progress loaded for them at login.
#[derive(Clone, Default)]
pub struct ZoneHost {
    /// Zone worlds by kind, in start order.
    worlds: Arc<RwLock<Vec<Zone>>>,
    /// The zone each player last joined, when not the first one.
    home: BTreeMap<PlayerId, usize>,
    /// Teams in the zones.
    pub teams: Teams,
    /// Per-player limits on room commands.
    pub(crate) limits: crate::lobby::Limits,
    /// Loaded progress by player.
    pub profiles: Profiles,
    /// How long loaded progress waits for a player who is not here (a
    /// connect token's life, and a little): see [`Profiles::expire`].
    /// `None`: until it is used.
    pub profiles_unused_for: Option<std::time::Duration>,
    /// Frame-sync rooms, made on demand (set once the net thread runs).
    pub rooms: Arc<std::sync::OnceLock<Arc<std::sync::Mutex<crate::rooms::Rooms>>>>,
    /// Matchmaking and state-sync rooms (set once the net thread runs).
    pub arena: Arc<std::sync::OnceLock<Arc<std::sync::Mutex<crate::arena::Arena>>>>,
    /// When the net thread last asked the arena for formed matches.
    last_poll: Option<std::time::Instant>,
    /// Worlds the scheduler reported crashed (a room's players go home),
    /// and the worlds that replaced crashed zones (theirs move in).
    pub crashed: crate::crashes::CrashedWorlds,
}

impl ZoneHost {
    /// Makes `world`, a zone of `kind`, available to players.
    pub fn add(&self, kind: &str, world: Arc<dyn InputSink>) {
        self.worlds
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push((kind.to_string(), world));
    }

    /// Puts `world` in place of the zone of `kind` (its world crashed and
    /// was started again) and returns the world it replaced: the zone keeps
    /// its place, so players whose home it was find it there.
    pub fn replace(&self, kind: &str, world: Arc<dyn InputSink>) -> Option<Arc<dyn InputSink>> {
        let mut worlds = self.worlds.write().unwrap_or_else(|p| p.into_inner());
        match worlds.iter_mut().find(|(k, _)| k == kind) {
            Some((_, sink)) => Some(std::mem::replace(sink, world)),
            None => {
                worlds.push((kind.to_string(), world));
                None
            }
        }
    }

    /// The zone `player` last played in (the first zone if none yet).
    pub(crate) fn home_zone(&self, player: PlayerId) -> Option<Arc<dyn InputSink>> {
        let worlds = self.worlds.read().unwrap_or_else(|p| p.into_inner());
        let index = self.home.get(&player).copied().unwrap_or(0);
        worlds
            .get(index)
            .or_else(|| worlds.first())
            .map(|(_, w)| w.clone())
    }

    /// Whether `sink` is one of the zones.
    pub(crate) fn is_zone(&self, sink: &Arc<dyn InputSink>) -> bool {
        self.worlds
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|(_, w)| Arc::ptr_eq(w, sink))
    }

    /// `player`'s team leader and members, if in a team.
    pub(crate) fn team_of(&self, player: PlayerId) -> Option<(PlayerId, Vec<PlayerId>)> {
        self.teams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&player)
            .map(|note| (note.leader, note.members.clone()))
    }
}

impl Host for ZoneHost {
    fn world_for(&mut self, _player: PlayerId) -> Option<Arc<dyn InputSink>> {
        self.home_zone(_player)
    }

    fn world_for_join(
        &mut self,
        player: PlayerId,
        world: &str,
    ) -> Result<Arc<dyn InputSink>, String> {
        let zone = {
            let worlds = self.worlds.read().unwrap_or_else(|p| p.into_inner());
            worlds
                .iter()
                .position(|(kind, _)| world.is_empty() || kind == world)
                .map(|index| (index, worlds[index].1.clone()))
        };
        let zone = zone.map(|(index, sink)| {
            if index == 0 {
                self.home.remove(&player);
            } else {
                self.home.insert(player, index);
            }
            sink
        });
        if let Some(arena) = self.arena.get() {
            let locked = arena.lock().unwrap_or_else(|p| p.into_inner());
            if locked.is_queued(player) {
                // Queued from a zone: the match will come; a second way into
                // the queue would only take the player out of the zone.
                return Err("already queued: leave the queue first".into());
            }
            if zone.is_none() && locked.is_room_kind(world) {
                return Ok(locked
                    .room_of(player)
                    .unwrap_or_else(|| crate::arena::Arena::queue_sink(arena, world)));
            }
        }
        match (zone, self.rooms.get()) {
            (Some(zone), _) => Ok(zone),
            (None, Some(rooms)) if !world.is_empty() => rooms
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .room_for(player, world),
            (None, _) => Err(format!("no world {world:?} on this node")),
        }
    }

    fn poll(&mut self) -> Vec<crate::arena::Assignment> {
        let now = std::time::Instant::now();
        if self
            .last_poll
            .is_some_and(|at| now.duration_since(at) < std::time::Duration::from_millis(50))
        {
            return Vec::new();
        }
        self.last_poll = Some(now);
        let mut moves = self.out_of_crashed_rooms();
        if let Some(rooms) = self.rooms.get() {
            rooms.lock().unwrap_or_else(|p| p.into_inner()).prune();
        }
        if let Some(arena) = self.arena.get() {
            moves.extend(arena.lock().unwrap_or_else(|p| p.into_inner()).poll());
        }
        moves
    }

    fn replaced(&mut self) -> Vec<(Arc<dyn InputSink>, Arc<dyn InputSink>)> {
        self.crashed.take_replaced()
    }

    fn room(
        &mut self,
        player: PlayerId,
        current: Option<Arc<dyn InputSink>>,
        request: tessera_net::codec::RoomRequest,
    ) -> Result<tessera_net::service::RoomOutcome, String> {
        self.room_command(player, current, request)
    }

    fn departed(&mut self, player: PlayerId) {
        self.home.remove(&player);
        self.limits.forget(player);
        // Whatever a zone kept for the player (progress parked while they
        // were in a room) goes with them.
        let zones: Vec<Arc<dyn InputSink>> = self
            .worlds
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(_, w)| w.clone())
            .collect();
        for zone in zones {
            let _ = zone.send(InputEnvelope::new(player, Input::Forget));
        }
        self.teams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&player);
        // A queue ticket of someone gone would strand their party.
        if let Some(arena) = self.arena.get() {
            arena
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .leave(player);
        }
    }

    fn sweep(&mut self, present: &dyn Fn(PlayerId) -> bool) {
        let Some(unused_for) = self.profiles_unused_for else {
            return;
        };
        let gone = self
            .profiles
            .expire(std::time::Instant::now(), unused_for, present);
        if gone > 0 {
            tracing::debug!(
                gone,
                "forgot progress loaded for players who never joined and are not here"
            );
        }
    }

    fn adapt_join(&mut self, player: PlayerId, input: Input) -> Input {
        // Read, not taken: a join the world refuses (full, inbox full) must
        // still restore on the next try. The entry goes when the world
        // welcomes the player (see `consume_profiles`).
        match self.profiles.get(player) {
            Some(progress) => Input::JoinSaved(Box::new(progress)),
            None => input,
        }
    }
}

/// The netcode keys: from the environment, else random for this process.
pub fn keys(config: &NodeConfig) -> anyhow::Result<NetcodeKeys> {
    match std::env::var(NETCODE_KEY_VAR) {
        Ok(hex) => {
            Ok(NetcodeKeys::from_hex(config.protocol_id, &hex).with_context(|| NETCODE_KEY_VAR)?)
        }
        Err(_) => {
            tracing::warn!(
                "{NETCODE_KEY_VAR} is not set: using a random netcode key (tokens from this node work only until it restarts)"
            );
            Ok(NetcodeKeys::random(config.protocol_id))
        }
    }
}

/// Binds the configured sockets: consecutive ports from `config.udp`, or
/// any free ports when it is port 0.
pub fn bind_sockets(config: &NodeConfig, keys: &NetcodeKeys) -> anyhow::Result<Vec<ServerSocket>> {
    (0..config.udp_sockets.max(1))
        .map(|i| {
            let mut addr = config.udp;
            if addr.port() != 0 {
                addr.set_port(addr.port() + i as u16);
            }
            let socket = ServerSocket::bind(
                addr,
                config.udp_public_ip,
                keys,
                tessera_net::transport::MAX_CLIENTS_PER_SOCKET,
            )
            .with_context(|| format!("cannot listen for UDP on {addr}"))?;
            size_buffers(&socket, config)?;
            Ok(socket)
        })
        .collect()
}

/// Asks for the configured kernel buffers and says when the kernel gave
/// less: a node then drops clients' datagrams sooner when it is busy.
fn size_buffers(socket: &ServerSocket, config: &NodeConfig) -> anyhow::Result<()> {
    let wanted = BufferSizes {
        receive: config.udp_receive_buffer_bytes,
        send: config.udp_send_buffer_bytes,
    };
    for (key, bytes) in [
        ("udp_receive_buffer_bytes", wanted.receive),
        ("udp_send_buffer_bytes", wanted.send),
    ] {
        if !(1..=MAX_BUFFER_BYTES).contains(&bytes) {
            anyhow::bail!("{key} = {bytes}: must be 1 to {MAX_BUFFER_BYTES} bytes");
        }
    }
    let addr = socket.bound_addr();
    let granted = socket
        .resize_buffers(wanted)
        .with_context(|| format!("cannot size the buffers of UDP socket {addr}"))?;
    for (key, limit, granted, wanted) in [
        (
            "udp_receive_buffer_bytes",
            "net.core.rmem_max",
            granted.receive,
            wanted.receive,
        ),
        (
            "udp_send_buffer_bytes",
            "net.core.wmem_max",
            granted.send,
            wanted.send,
        ),
    ] {
        if granted < wanted {
            tracing::warn!(
                %addr,
                granted,
                wanted,
                "the kernel gave this UDP socket less than {key}, so it drops datagrams sooner when the node is busy: raise {limit} (e.g. sysctl -w {limit}={wanted})"
            );
        }
    }
    tracing::debug!(%addr, ?granted, "udp socket buffers");
    Ok(())
}

/// Starts the net thread.
pub fn start_net(
    sockets: Vec<ServerSocket>,
    host: ZoneHost,
    config: &NodeConfig,
) -> anyhow::Result<(NetService, Vec<SocketAddr>)> {
    let addrs: Vec<SocketAddr> = sockets.iter().map(ServerSocket::local_addr).collect();
    for socket in &sockets {
        let (addr, bound) = (socket.local_addr(), socket.bound_addr());
        if addr == bound {
            tracing::info!(%addr, "udp listening on {addr}");
        } else {
            tracing::info!(%addr, %bound, "udp listening on {addr} (bound to {bound})");
        }
    }
    let limits = Limits {
        reconnect_grace: std::time::Duration::from_millis(config.reconnect_grace_ms),
        ..Limits::default()
    };
    Ok((NetService::start(sockets, host, limits)?, addrs))
}

/// What the host learns from a zone's tick: loaded progress of players the
/// world has just welcomed is forgotten (from now on their avatar, not the
/// login-time record, is their newest state), and team changes are noted.
pub fn observe_zone(sim: &SimWorld, profiles: &Profiles, teams: &Teams) {
    consume_profiles(sim, profiles);
    let outbox = sim.world().resource::<tessera_sim::Outbox>();
    let mut changed = outbox
        .events()
        .iter()
        .filter(|e| {
            matches!(
                e,
                tessera_sim::OutEvent::TeamChanged { .. } | tessera_sim::OutEvent::TeamLeft { .. }
            )
        })
        .peekable();
    if changed.peek().is_none() {
        return;
    }
    let mut teams = teams.lock().unwrap_or_else(|p| p.into_inner());
    for event in changed {
        match event {
            tessera_sim::OutEvent::TeamChanged { view, .. } => {
                let note = TeamNote {
                    team: view.team,
                    leader: view.leader,
                    members: view.members.clone(),
                };
                for member in &view.members {
                    teams.insert(*member, note.clone());
                }
            }
            tessera_sim::OutEvent::TeamLeft { to, .. } => {
                teams.remove(to);
            }
            _ => {}
        }
    }
}

/// Forgets loaded progress of players the world has just welcomed.
pub fn consume_profiles(sim: &SimWorld, profiles: &Profiles) {
    let outbox = sim.world().resource::<tessera_sim::Outbox>();
    let joined: Vec<PlayerId> = outbox
        .events()
        .iter()
        .filter_map(|e| match e {
            tessera_sim::OutEvent::Joined { player, .. } => Some(*player),
            _ => None,
        })
        .collect();
    profiles.consume(&joined);
}

/// After each tick, hands the world's replication output to the net thread.
pub fn forward_output(to_net: mpsc::Sender<Vec<(PlayerId, u8, Vec<u8>)>>) -> AfterTick {
    Box::new(move |sim: &mut SimWorld| {
        if let Some(mut outgoing) = sim.world_mut().get_resource_mut::<Outgoing>()
            && !outgoing.0.is_empty()
        {
            let _ = to_net.send(std::mem::take(&mut outgoing.0));
        }
    })
}
