//! A frame-sync client: runs the room's `sim` from the server's bundles,
//! schedules its own commands `input_delay` frames ahead, and reports its
//! state hash so the server can check it.
//!
//! It starts from a catch-up (the `FrameCatchUp` every member gets on
//! joining): the room's world from its newest checkpoint, if there is one
//! yet, then the bundles after it. Then it applies bundles strictly in frame
//! order, buffering any that arrive early. It compares its hash with every
//! hash the server puts in a bundle; a difference is a desync it counts (the
//! server, seeing the same difference in the uplink, sends a catch-up again
//! and the client rebuilds from it).
//!
//! `loss_percent` drops that share of incoming bundle packets and outgoing
//! uplinks on purpose, from a seeded generator, to exercise the redundancy.

use std::{collections::BTreeMap, sync::Arc};

use tessera_net::{
    frames::{Bundle, FrameCommand, History, Uplink},
    proto::{self, server_message::Body},
};
use tessera_sim::{PlayerId, SimWorld};
use tessera_tables::Tables;

/// Why the client cannot follow the room.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockstepError {
    /// The server runs other tables than this client has.
    #[error("the room runs tables {server}, this client has {client}")]
    TablesDiffer {
        /// The room's tables hash.
        server: String,
        /// This client's.
        client: String,
    },
    /// A catch-up or bundle did not decode, or its bundles do not follow on.
    #[error("bad frame message: {0}")]
    Bad(String),
    /// The room's world could not be built.
    #[error("cannot build the room's world: {0}")]
    World(String),
}

/// Deterministic xorshift for the bot's choices and its simulated loss.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// What the last catch-up carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchUpInfo {
    /// Its encoded size.
    pub bytes: usize,
    /// The frame of its checkpoint (`None`: it started from frame 1).
    pub checkpoint: Option<u64>,
    /// Bundles after that.
    pub bundles: usize,
}

/// One player's view of a lockstep room.
pub struct Lockstep {
    tables: Arc<Tables>,
    sim: Option<SimWorld>,
    /// Bundles that arrived ahead of the next frame to apply.
    early: BTreeMap<u64, Bundle>,
    /// Commands this player decided, by frame.
    planned: BTreeMap<u64, FrameCommand>,
    rng: Rng,
    loss: Rng,
    loss_percent: u64,
    input_delay: u64,
    hash_every: u64,
    /// The newest checked frame and this client's hash there.
    last_check: Option<(u64, u64)>,
    /// This client's hash at every checked frame (tests compare clients).
    pub hashes: BTreeMap<u64, u64>,
    /// Bundles whose server hash differed from this client's.
    pub desyncs: u64,
    /// Desyncs the server reported.
    pub server_desyncs: Vec<proto::Desync>,
    /// Catch-ups applied (1 on joining; more after a resync).
    pub catch_ups: u64,
    /// What the last catch-up carried.
    pub last_catch_up: Option<CatchUpInfo>,
    /// Bundle packets dropped on purpose.
    pub dropped_in: u64,
    /// Uplinks dropped on purpose.
    pub dropped_out: u64,
}

impl Lockstep {
    /// A client on `tables`, choosing its moves from `seed`.
    pub fn new(tables: Arc<Tables>, seed: u64, loss_percent: u64) -> Self {
        Self {
            tables,
            sim: None,
            early: BTreeMap::new(),
            planned: BTreeMap::new(),
            rng: Rng(seed | 1),
            loss: Rng(seed.rotate_left(17) | 1),
            loss_percent,
            input_delay: 2,
            hash_every: 30,
            last_check: None,
            hashes: BTreeMap::new(),
            desyncs: 0,
            server_desyncs: Vec::new(),
            catch_ups: 0,
            last_catch_up: None,
            dropped_in: 0,
            dropped_out: 0,
        }
    }

    /// The last frame applied (0 before the first catch-up arrived).
    pub fn frame(&self) -> u64 {
        self.sim.as_ref().map_or(0, SimWorld::tick)
    }

    /// The room's world as this client simulates it.
    pub fn sim(&self) -> Option<&SimWorld> {
        self.sim.as_ref()
    }

    /// Takes the room's parameters from its welcome.
    pub fn welcome(&mut self, welcome: &proto::Welcome) {
        if let Some(room) = &welcome.frame_room {
            self.input_delay = u64::from(room.input_delay);
            self.hash_every = u64::from(room.hash_every.max(1));
        }
    }

    /// Applies one frame-sync message from the server.
    pub fn receive(&mut self, body: Body) -> Result<(), LockstepError> {
        match body {
            Body::Frames(frames) => {
                if self.loss.next() % 100 < self.loss_percent {
                    self.dropped_in += 1;
                    return Ok(());
                }
                for bundle in frames.bundles {
                    let bundle =
                        Bundle::decode(bundle).map_err(|e| LockstepError::Bad(e.to_string()))?;
                    if bundle.frame > self.frame() {
                        self.early.insert(bundle.frame, bundle);
                    }
                }
                self.advance();
            }
            Body::CatchUp(catch_up) => {
                let history = History::from_bytes(&catch_up.history)
                    .map_err(|e| LockstepError::Bad(e.to_string()))?;
                let bytes = catch_up.history.len();
                self.rebuild(history, bytes)?;
            }
            Body::Desync(desync) => self.server_desyncs.push(desync),
            _ => {}
        }
        Ok(())
    }

    fn rebuild(&mut self, history: History, bytes: usize) -> Result<(), LockstepError> {
        let ours = self.tables.hash().to_string();
        if history.tables_hash != ours {
            return Err(LockstepError::TablesDiffer {
                server: history.tables_hash,
                client: ours,
            });
        }
        if !history.is_contiguous() {
            return Err(LockstepError::Bad(format!(
                "catch-up bundles do not follow on from frame {}",
                history.start()
            )));
        }
        let sim = match &history.checkpoint {
            Some(checkpoint) if *checkpoint.spec() != history.spec => {
                return Err(LockstepError::Bad(
                    "the checkpoint is of another world than the catch-up".into(),
                ));
            }
            Some(checkpoint) => SimWorld::from_checkpoint(self.tables.clone(), checkpoint)
                .map_err(|e| LockstepError::World(e.to_string()))?,
            None => {
                let mut sim = SimWorld::new(history.spec.clone())
                    .map_err(|e| LockstepError::World(e.to_string()))?;
                sim.set_tables(self.tables.clone());
                sim
            }
        };
        self.sim = Some(sim);
        // A hash from before the catch-up describes state it replaced.
        self.last_check = None;
        self.catch_ups += 1;
        self.last_catch_up = Some(CatchUpInfo {
            bytes,
            checkpoint: history.checkpoint.as_ref().map(|c| c.tick()),
            bundles: history.bundles.len(),
        });
        for bundle in &history.bundles {
            self.apply(bundle);
        }
        self.advance();
        Ok(())
    }

    fn advance(&mut self) {
        while let Some(bundle) = self.early.remove(&(self.frame() + 1)) {
            self.apply(&bundle);
        }
        let applied = self.frame();
        self.early.retain(|frame, _| *frame > applied);
    }

    fn apply(&mut self, bundle: &Bundle) {
        let Some(sim) = self.sim.as_mut() else {
            return;
        };
        if bundle.frame != sim.tick() + 1 {
            return;
        }
        for (player, input) in bundle.inputs() {
            sim.push_input(player, input);
        }
        let report = sim.step();
        if bundle.frame.is_multiple_of(self.hash_every) {
            self.hashes.insert(report.tick, report.hash);
            self.last_check = Some((report.tick, report.hash));
        }
        if bundle.hash != 0 && bundle.hash != report.hash {
            self.desyncs += 1;
        }
    }

    /// This frame's uplink: commands for the frames from the next one up to
    /// `input_delay` ahead (repeated until they are in the past, so a lost
    /// uplink costs nothing), the acknowledgement and the newest hash.
    /// `None` when the client is not in the room yet, or when simulated loss
    /// drops it.
    pub fn uplink(&mut self, player: PlayerId) -> Option<Uplink> {
        let _ = player;
        let now = self.frame();
        self.sim.as_ref()?;
        let horizon = now + 1 + self.input_delay;
        for frame in now + 1..=horizon {
            if self.planned.contains_key(&frame) {
                continue;
            }
            // Keep a direction for a while, then pick another (or stand).
            let previous = self.planned.values().next_back().map_or((0, 0), |c| c.dir);
            let dir = if self.rng.next().is_multiple_of(20) {
                let pick = self.rng.next() % 9;
                ((pick % 3) as i16 - 1, (pick / 3) as i16 - 1)
            } else {
                previous
            };
            self.planned.insert(
                frame,
                FrameCommand {
                    frame,
                    dir,
                    skill: None,
                },
            );
        }
        self.planned = self.planned.split_off(&(now + 1));
        if self.loss.next() % 100 < self.loss_percent {
            self.dropped_out += 1;
            return None;
        }
        Some(Uplink {
            commands: self
                .planned
                .values()
                .take(tessera_net::frames::MAX_UPLINK_COMMANDS)
                .cloned()
                .collect(),
            ack: now,
            hash: self.last_check,
        })
    }

    /// Makes the next reported hash wrong (tests of the resync path).
    pub fn corrupt_reported_hash(&mut self) {
        if let Some((_, hash)) = self.last_check.as_mut() {
            *hash ^= 0xdead_beef;
        }
    }
}
