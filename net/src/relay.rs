//! The server side of frame sync: a lockstep room's relay.
//!
//! Before each frame (tick) F the relay builds bundle F: joins and leaves
//! that arrived, then each member's command for F, or their last movement
//! again when it has not arrived (lockstep never waits for a slow client).
//! The room's own `sim` steps the same bundle, so the server knows the true
//! state: every `hash_every` frames its hash rides in the bundle, clients
//! report theirs, and a client whose hash differs is told (`Desync`) and
//! resynced with the room's history. After the frame each member gets the
//! bundles it has not acknowledged (up to a packet's worth, unreliable: the
//! next packet repeats whatever was lost); a member too far behind, a late
//! joiner and a reconnecting client get the history instead (reliable).

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
};

use tessera_sim::{InputEnvelope, PlayerId, WorldSpec};

use crate::{
    codec::encode_server,
    frames::{Bundle, BundleInput, FrameCommand, History, Uplink},
    proto::{self, server_message::Body},
    transport::{ORDERED, UNRELIABLE},
};

/// Lockstep tuning.
#[derive(Clone, Debug)]
pub struct RelaySettings {
    /// How many frames ahead clients schedule their commands.
    pub input_delay: u32,
    /// The server's hash rides in every this many bundles.
    pub hash_every: u64,
    /// Most bundles in one packet.
    pub max_bundles_per_packet: usize,
    /// A member this many frames behind gets the history instead.
    pub catch_up_gap: u64,
    /// Commands further ahead than this are dropped (a clock gone wrong).
    pub max_ahead: u64,
    /// Longest room, frames: its history (sent whole on a catch-up, one
    /// reliable message) must stay well under renet's 5 MiB channel limit.
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
            // 20 minutes at 20 Hz: about 3 MB of history for four players.
            max_frames: 24_000,
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
    /// Histories sent (late joins, reconnects, resyncs, far-behind members).
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
    /// Send the history (new, reconnected, or desynced).
    needs_history: bool,
    /// Frame the history was last sent at.
    history_sent: u64,
    /// A join (first or reconnect) waits for its welcome.
    welcome: bool,
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
    history: Vec<Bundle>,
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
            history: Vec::new(),
            hashes: BTreeMap::new(),
            desyncs: Vec::new(),
            joined_ever: false,
        }
    }

    /// Players in the room.
    pub fn members(&self) -> usize {
        self.members.len()
    }

    /// Whether the room is over: everyone who came has left, or it reached
    /// its longest length.
    pub fn is_over(&self) -> bool {
        (self.joined_ever && self.members.is_empty() && self.arriving.is_empty())
            || self.history.len() as u64 >= self.settings.max_frames
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
                    if let Some(member) = self.members.get_mut(player) {
                        member.in_world = true;
                    }
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
        self.history.push(bundle);
        self.stats.frames.fetch_add(1, Ordering::Relaxed);
        inputs
    }

    fn receive(&mut self, message: RelayMessage, frame: u64) {
        match message {
            RelayMessage::Join { player, class } => match self.members.get_mut(&player) {
                // Reconnected: same avatar; the history brings it up to date.
                Some(member) => {
                    member.needs_history = true;
                    member.welcome = true;
                }
                None => {
                    self.members.insert(
                        player,
                        Member {
                            commands: BTreeMap::new(),
                            last_dir: (0, 0),
                            ack: 0,
                            in_world: false,
                            needs_history: true,
                            history_sent: 0,
                            welcome: true,
                        },
                    );
                    self.arriving.push((player, BundleInput::Join(class)));
                }
            },
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
                if let Some((at, client_hash)) = uplink.hash
                    && let Some(server_hash) = self.hashes.get(&at)
                    && *server_hash != client_hash
                    && !member.needs_history
                {
                    self.stats.desyncs.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%player, frame = at, server_hash, client_hash, world = %self.spec.kind, "lockstep desync: resyncing the client");
                    member.needs_history = true;
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

    /// After frame `frame` was simulated with state hash `hash`: what each
    /// member is sent.
    pub fn after_tick(&mut self, frame: u64, hash: u64) -> Outgoing {
        let mut out = Outgoing::new();
        let checked = frame.is_multiple_of(self.settings.hash_every.max(1));
        if let Some(bundle) = self.history.last_mut()
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
        let first = self.history.first().map_or(frame, |b| b.frame);
        let mut history: Option<Vec<u8>> = None;
        for (player, member) in &mut self.members {
            if !member.in_world {
                continue;
            }
            let behind = frame.saturating_sub(member.ack);
            // At most one history per half gap, except the first (a joiner waits for nothing).
            let stale = member.history_sent == 0
                || member.history_sent + self.settings.catch_up_gap / 2 <= frame;
            if (member.needs_history || behind > self.settings.catch_up_gap) && stale {
                if std::mem::take(&mut member.welcome) {
                    let welcome = welcome(&self.spec, &self.tables_hash, &self.settings, *player);
                    out.push((*player, ORDERED, message(Body::Welcome(welcome))));
                }
                let bytes = match &history {
                    Some(bytes) => bytes.clone(),
                    None => {
                        let encoded = History {
                            spec: self.spec.clone(),
                            tables_hash: self.tables_hash.clone(),
                            bundles: self.history.clone(),
                        }
                        .to_bytes();
                        match encoded {
                            Ok(bytes) => history.insert(bytes).clone(),
                            Err(error) => {
                                // Nothing to send this frame; the member asks again.
                                tracing::error!(%error, world = %self.spec.kind, "cannot encode a room history");
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
                member.needs_history = false;
                member.history_sent = frame;
                member.ack = frame;
                continue;
            }
            if member.needs_history || member.ack >= frame {
                continue;
            }
            let from = (member.ack + 1).max(first);
            let to = frame.min(from + self.settings.max_bundles_per_packet as u64 - 1);
            let bundles = (from..=to)
                .filter_map(|f| self.history.get((f - first) as usize))
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay() -> (mpsc::SyncSender<RelayMessage>, FrameRelay) {
        let (tx, rx) = mpsc::sync_channel(64);
        let spec = WorldSpec {
            kind: "duel_lockstep".into(),
            seed: 1,
            tick_hz: 20,
            width: 40_000,
            height: 40_000,
            capacity: 4,
        };
        let relay = FrameRelay::new(
            spec,
            "t".into(),
            rx,
            RelaySettings::default(),
            Arc::default(),
        );
        (tx, relay)
    }

    fn command(frame: u64, dir: (i16, i16)) -> FrameCommand {
        FrameCommand {
            frame,
            dir,
            skill: None,
        }
    }

    #[test]
    fn a_late_command_repeats_the_last_move_and_a_room_everyone_left_is_over() {
        let (tx, mut relay) = relay();
        assert!(!relay.is_over(), "a new room waits for players");
        tx.send(RelayMessage::Join {
            player: PlayerId(1),
            class: "warrior".into(),
        })
        .unwrap();
        relay.before_tick(1);
        let out = relay.after_tick(1, 7);
        assert!(
            out.iter()
                .any(|(p, c, _)| *p == PlayerId(1) && *c == ORDERED),
            "the joiner gets its welcome and the history"
        );
        tx.send(RelayMessage::Uplink {
            player: PlayerId(1),
            uplink: Uplink {
                commands: vec![command(2, (1, 0))],
                ack: 1,
                hash: None,
            },
        })
        .unwrap();
        relay.before_tick(2);
        relay.after_tick(2, 8);
        // Nothing arrived for frame 3: the last move repeats.
        let inputs = relay.before_tick(3);
        assert_eq!(
            inputs.iter().map(|e| e.input.clone()).collect::<Vec<_>>(),
            vec![tessera_sim::Input::Move {
                seq: 3,
                dir_x: 1,
                dir_y: 0
            }]
        );
        relay.after_tick(3, 9);
        tx.send(RelayMessage::Leave {
            player: PlayerId(1),
        })
        .unwrap();
        relay.before_tick(4);
        relay.after_tick(4, 10);
        assert!(relay.is_over(), "everyone who came has left");
    }

    #[test]
    fn a_room_is_over_at_its_longest_length() {
        let (tx, mut relay) = relay();
        relay.settings.max_frames = 5;
        tx.send(RelayMessage::Join {
            player: PlayerId(1),
            class: "warrior".into(),
        })
        .unwrap();
        for frame in 1..=4 {
            relay.before_tick(frame);
            relay.after_tick(frame, frame);
            assert!(!relay.is_over());
        }
        relay.before_tick(5);
        assert!(relay.is_over());
    }
}
