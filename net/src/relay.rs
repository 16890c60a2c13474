//! The server side of frame sync: a lockstep room's relay.
//!
//! Before each frame (tick) F the relay builds bundle F: joins and leaves
//! that arrived, then each member's command for F, or their last movement
//! again when it has not arrived (lockstep never waits for a slow client).
//! The room's own `sim` steps the same bundle, so the server knows the true
//! state: every `hash_every` frames its hash rides in the bundle, clients
//! report theirs, and a client whose hash differs is told (`Desync`) and
//! resynced. After the frame each member gets the bundles it has not
//! acknowledged (up to a packet's worth, unreliable: the next packet repeats
//! whatever was lost); a member too far behind, a late joiner, a reconnecting
//! and a desynced client get a catch-up instead (reliable): the newest
//! checkpoint of the room's world, taken every `checkpoint_every` frames, and
//! the bundles after it. A catch-up therefore stays the same size however
//! old the room is, and the relay keeps only the bundles since the newest
//! checkpoint (and the last `catch_up_gap`, for members a little behind).

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
};

use tessera_sim::{Checkpoint, InputEnvelope, PlayerId, SimWorld, WorldSpec};

use crate::{
    codec::encode_server,
    frames::{Bundle, BundleInput, FrameCommand, History, Uplink},
    proto::{self, server_message::Body},
    transport::{ORDERED, UNRELIABLE},
};

/// See [`FrameRelay::MAX_BUNDLES`].
const MAX_BUNDLES_KEPT: usize = 24_000;

/// Lockstep tuning.
#[derive(Clone, Debug)]
pub struct RelaySettings {
    /// How many frames ahead clients schedule their commands.
    pub input_delay: u32,
    /// The server's hash rides in every this many bundles.
    pub hash_every: u64,
    /// Most bundles in one packet.
    pub max_bundles_per_packet: usize,
    /// A member this many frames behind gets a catch-up instead.
    pub catch_up_gap: u64,
    /// Commands further ahead than this are dropped (a clock gone wrong).
    pub max_ahead: u64,
    /// The room's world is checkpointed after every this many frames (at
    /// least 1); a catch-up carries the newest checkpoint and the fewer than
    /// this many bundles after it.
    pub checkpoint_every: u64,
    /// Longest room, frames. Catch-ups used to carry every bundle from frame
    /// 1 in one reliable message, which capped rooms at 24,000 frames to stay
    /// under renet's 5 MiB limit; with checkpoints a catch-up no longer grows
    /// with the room's age. What is left is the sim's move sequence number,
    /// which is the frame as a `u32`: past it, moves would stop applying. At
    /// 100 Hz that is over a year.
    pub max_frames: u64,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            input_delay: 2,
            hash_every: 30,
            max_bundles_per_packet: 16,
            catch_up_gap: 120,
            max_ahead: 64,
            // 30 s at 20 Hz: a four-player catch-up is a few kB.
            checkpoint_every: 600,
            max_frames: u64::from(u32::MAX),
        }
    }
}

/// What the net thread hands a room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayMessage {
    /// A player joins (or, already a member, reconnected).
    Join {
        /// Who.
        player: PlayerId,
        /// As which class.
        class: String,
    },
    /// A player leaves.
    Leave {
        /// Who.
        player: PlayerId,
    },
    /// A player's frame commands, acknowledgement and hash.
    Uplink {
        /// Who.
        player: PlayerId,
        /// What they sent.
        uplink: Uplink,
    },
}

/// Counters across a node's rooms.
#[derive(Debug, Default)]
pub struct RelayStats {
    /// Client hashes that differed from the server's.
    pub desyncs: AtomicU64,
    /// Catch-ups sent (late joins, reconnects, resyncs, far-behind members).
    pub catch_ups: AtomicU64,
    /// Commands that had not arrived in time and were repeated.
    pub repeated: AtomicU64,
    /// Bundles built.
    pub frames: AtomicU64,
}

struct Member {
    commands: BTreeMap<u64, FrameCommand>,
    /// Repeated when a frame's command is missing.
    last_dir: (i16, i16),
    /// Every bundle up to here has arrived.
    ack: u64,
    /// In the sim (its join bundle has been applied).
    in_world: bool,
    /// Send a catch-up (new, reconnected, or desynced).
    needs_catch_up: bool,
    /// Frame a catch-up was last sent at.
    catch_up_sent: u64,
    /// A join (first or reconnect) waits for its welcome.
    welcome: bool,
}

impl Member {
    /// A member who just joined: it waits for its welcome and a catch-up.
    fn new() -> Self {
        Self {
            commands: BTreeMap::new(),
            last_dir: (0, 0),
            ack: 0,
            in_world: false,
            needs_catch_up: true,
            catch_up_sent: 0,
            welcome: true,
        }
    }
}

/// Server messages for players: (player, channel, bytes).
pub type Outgoing = Vec<(PlayerId, u8, Vec<u8>)>;

/// One lockstep room's relay.
pub struct FrameRelay {
    inbox: mpsc::Receiver<RelayMessage>,
    settings: RelaySettings,
    stats: Arc<RelayStats>,
    spec: WorldSpec,
    tables_hash: String,
    members: BTreeMap<PlayerId, Member>,
    arriving: Vec<(PlayerId, BundleInput)>,
    /// Every bundle after the newest checkpoint, and at least the last
    /// `catch_up_gap` (members that far behind stream them), oldest first.
    bundles: VecDeque<Bundle>,
    /// The room's world after frame `checkpoint.tick()`.
    checkpoint: Option<Checkpoint>,
    /// The last frame built (0 before the first).
    frame: u64,
    /// The server's hash at checked frames (the most recent ones).
    hashes: BTreeMap<u64, u64>,
    desyncs: Vec<(PlayerId, proto::Desync)>,
    /// Someone has joined at some point (an empty new room is not over).
    joined_ever: bool,
}

/// Hash checks remembered, so late client reports can still be checked.
const HASHES_KEPT: usize = 64;

fn message(body: Body) -> Vec<u8> {
    encode_server(&proto::ServerMessage { body: Some(body) })
}

impl FrameRelay {
    /// A relay for a room of `spec` on tables `tables_hash`, fed by `inbox`.
    pub fn new(
        spec: WorldSpec,
        tables_hash: String,
        inbox: mpsc::Receiver<RelayMessage>,
        settings: RelaySettings,
        stats: Arc<RelayStats>,
    ) -> Self {
        Self {
            inbox,
            settings,
            stats,
            spec,
            tables_hash,
            members: BTreeMap::new(),
            arriving: Vec::new(),
            bundles: VecDeque::new(),
            checkpoint: None,
            frame: 0,
            hashes: BTreeMap::new(),
            desyncs: Vec::new(),
            joined_ever: false,
        }
    }

    /// Players in the room.
    pub fn members(&self) -> usize {
        self.members.len()
    }

    /// Whether the room is over: everyone who came has left, it reached
    /// its longest length, or its checkpoints kept failing so long that a
    /// catch-up would no longer fit one reliable message.
    pub fn is_over(&self) -> bool {
        (self.joined_ever && self.members.is_empty() && self.arriving.is_empty())
            || self.frame >= self.settings.max_frames
            || self.bundles.len() > MAX_BUNDLES_KEPT
    }

    /// Bundles a room may have to keep before it is ended (only reached when
    /// checkpoints fail): a catch-up of these stays well under renet's 5 MiB.
    pub const MAX_BUNDLES: usize = MAX_BUNDLES_KEPT;

    /// The newest checkpoint of the room's world.
    pub fn checkpoint(&self) -> Option<&Checkpoint> {
        self.checkpoint.as_ref()
    }

    /// Bundles kept (see [`RelaySettings::checkpoint_every`]).
    pub fn bundles_kept(&self) -> usize {
        self.bundles.len()
    }

    /// Builds bundle `frame` (the tick about to be simulated) from what has
    /// arrived; returns its inputs for the room's world.
    pub fn before_tick(&mut self, frame: u64) -> Vec<InputEnvelope> {
        for message in self.inbox.try_iter().take(4_096).collect::<Vec<_>>() {
            self.receive(message, frame);
        }
        let mut bundle = Bundle {
            frame,
            inputs: std::mem::take(&mut self.arriving),
            hash: 0,
        };
        for (player, member) in &mut self.members {
            if !member.in_world {
                continue;
            }
            let command = match member.commands.remove(&frame) {
                Some(command) => command,
                None => {
                    self.stats.repeated.fetch_add(1, Ordering::Relaxed);
                    FrameCommand {
                        frame,
                        dir: member.last_dir,
                        skill: None,
                    }
                }
            };
            member.last_dir = command.dir;
            member.commands = member.commands.split_off(&(frame + 1));
            bundle.inputs.push((*player, BundleInput::Command(command)));
        }
        for (player, input) in &bundle.inputs {
            match input {
                BundleInput::Join(_) => {
                    self.joined_ever = true;
                    self.members
                        .entry(*player)
                        .or_insert_with(Member::new)
                        .in_world = true;
                }
                BundleInput::Leave => {
                    self.members.remove(player);
                }
                BundleInput::Command(_) => {}
            }
        }
        let inputs = bundle
            .inputs()
            .into_iter()
            .map(|(player, input)| InputEnvelope::new(player, input))
            .collect();
        self.bundles.push_back(bundle);
        self.frame = frame;
        self.stats.frames.fetch_add(1, Ordering::Relaxed);
        inputs
    }

    fn receive(&mut self, message: RelayMessage, frame: u64) {
        match message {
            RelayMessage::Join { player, class } => {
                let leaving = self
                    .arriving
                    .iter()
                    .any(|(p, i)| *p == player && *i == BundleInput::Leave);
                match self.members.get_mut(&player) {
                    // Left and back before the next frame: the leave goes
                    // first, then a new avatar (the member is made anew when
                    // the bundle applies the join).
                    Some(_) if leaving => self.arriving.push((player, BundleInput::Join(class))),
                    // Reconnected: same avatar; a catch-up brings it up to date.
                    Some(member) => {
                        member.needs_catch_up = true;
                        member.welcome = true;
                    }
                    None => {
                        self.members.insert(player, Member::new());
                        self.arriving.push((player, BundleInput::Join(class)));
                    }
                }
            }
            RelayMessage::Leave { player } => {
                if self.members.contains_key(&player)
                    && !self
                        .arriving
                        .iter()
                        .any(|(p, i)| *p == player && *i == BundleInput::Leave)
                {
                    self.arriving.push((player, BundleInput::Leave));
                }
            }
            RelayMessage::Uplink { player, uplink } => {
                let Some(member) = self.members.get_mut(&player) else {
                    return;
                };
                member.ack = member.ack.max(uplink.ack.min(frame.saturating_sub(1)));
                for command in uplink.commands {
                    if (frame..=frame + self.settings.max_ahead).contains(&command.frame) {
                        member.commands.entry(command.frame).or_insert(command);
                    }
                }
                // A report on a frame up to the last catch-up sent describes
                // state that catch-up replaced (it may still be in flight).
                if let Some((at, client_hash)) = uplink.hash
                    && at > member.catch_up_sent
                    && let Some(server_hash) = self.hashes.get(&at)
                    && *server_hash != client_hash
                    && !member.needs_catch_up
                {
                    self.stats.desyncs.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%player, frame = at, server_hash, client_hash, world = %self.spec.kind, "lockstep desync: resyncing the client");
                    member.needs_catch_up = true;
                    self.desyncs.push((
                        player,
                        proto::Desync {
                            frame: at,
                            server_hash: *server_hash,
                            client_hash,
                        },
                    ));
                }
            }
        }
    }

    /// After the room's world `sim` simulated a frame: checkpoints it when
    /// due, and says what each member is sent.
    pub fn after_tick(&mut self, sim: &SimWorld) -> Outgoing {
        let (frame, hash) = (sim.tick(), sim.last_hash());
        let mut out = Outgoing::new();
        let checked = frame.is_multiple_of(self.settings.hash_every.max(1));
        if let Some(bundle) = self.bundles.back_mut()
            && bundle.frame == frame
            && checked
        {
            bundle.hash = hash;
            self.hashes.insert(frame, hash);
            while self.hashes.len() > HASHES_KEPT {
                self.hashes.pop_first();
            }
        }
        for (player, desync) in std::mem::take(&mut self.desyncs) {
            out.push((player, ORDERED, message(Body::Desync(desync))));
        }
        if frame.is_multiple_of(self.settings.checkpoint_every.max(1)) {
            match sim.checkpoint() {
                Ok(checkpoint) => self.checkpoint = Some(checkpoint),
                // Catch-ups stay correct from the older checkpoint, only longer.
                Err(error) => {
                    tracing::error!(%error, frame, world = %self.spec.kind, "cannot checkpoint a room")
                }
            }
        }
        let start = self.checkpoint.as_ref().map_or(0, Checkpoint::tick);
        let keep_after = start.min(frame.saturating_sub(self.settings.catch_up_gap));
        while self.bundles.front().is_some_and(|b| b.frame <= keep_after) {
            self.bundles.pop_front();
        }
        let first = self.bundles.front().map_or(frame, |b| b.frame);
        let mut catch_up: Option<Vec<u8>> = None;
        for (player, member) in &mut self.members {
            if !member.in_world {
                continue;
            }
            let behind = frame.saturating_sub(member.ack);
            // At most one catch-up per half gap, except the first (a joiner waits for nothing).
            let stale = member.catch_up_sent == 0
                || member.catch_up_sent + self.settings.catch_up_gap / 2 <= frame;
            if (member.needs_catch_up || behind > self.settings.catch_up_gap) && stale {
                if std::mem::take(&mut member.welcome) {
                    let welcome = welcome(&self.spec, &self.tables_hash, &self.settings, *player);
                    out.push((*player, ORDERED, message(Body::Welcome(welcome))));
                }
                let bytes = match &catch_up {
                    Some(bytes) => bytes.clone(),
                    None => {
                        let encoded = History {
                            spec: self.spec.clone(),
                            tables_hash: self.tables_hash.clone(),
                            bundles: self
                                .bundles
                                .iter()
                                .filter(|b| b.frame > start)
                                .cloned()
                                .collect(),
                            checkpoint: self.checkpoint.clone(),
                        }
                        .to_bytes();
                        match encoded {
                            Ok(bytes) => catch_up.insert(bytes).clone(),
                            Err(error) => {
                                // Nothing to send this frame; the member asks again.
                                tracing::error!(%error, world = %self.spec.kind, "cannot encode a room catch-up");
                                continue;
                            }
                        }
                    }
                };
                out.push((
                    *player,
                    ORDERED,
                    message(Body::CatchUp(proto::FrameCatchUp { history: bytes })),
                ));
                self.stats.catch_ups.fetch_add(1, Ordering::Relaxed);
                member.needs_catch_up = false;
                member.catch_up_sent = frame;
                member.ack = frame;
                continue;
            }
            if member.needs_catch_up || member.ack >= frame {
                continue;
            }
            let from = (member.ack + 1).max(first);
            let to = frame.min(from + self.settings.max_bundles_per_packet as u64 - 1);
            let bundles = (from..=to)
                .filter_map(|f| self.bundles.get((f - first) as usize))
                .map(Bundle::encode)
                .collect();
            out.push((
                *player,
                UNRELIABLE,
                message(Body::Frames(proto::FrameBundles { bundles })),
            ));
        }
        out
    }
}

fn welcome(
    spec: &WorldSpec,
    tables_hash: &str,
    settings: &RelaySettings,
    player: PlayerId,
) -> proto::Welcome {
    proto::Welcome {
        player: player.0,
        world: spec.kind.clone(),
        tick_hz: u32::from(spec.tick_hz),
        tables_hash: tables_hash.to_string(),
        frame_room: Some(proto::FrameRoom {
            seed: spec.seed,
            width_mm: spec.width,
            height_mm: spec.height,
            capacity: spec.capacity,
            input_delay: settings.input_delay,
            hash_every: u32::try_from(settings.hash_every).unwrap_or(u32::MAX),
        }),
        protocol: crate::PROTOCOL_VERSION,
        skills: Vec::new(),
    }
}

#[cfg(test)]
mod tests;
