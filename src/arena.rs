//! State-sync rooms through matchmaking: a `join` naming a `zones` row of
//! kind `room` and sync `state` (e.g. `arena`) queues the player for that
//! kind. When the matchmaker forms a match, a room world is started with
//! the match's sides as its roster and every matched player is moved into
//! it (the net thread switches their connection to the room and joins them
//! with the class they queued with). The room runs its own lifecycle
//! (countdown when full, fight, result to every player); a room every
//! player left is ended.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::Instant,
};

use tessera_net::{
    replication::{AckBoard, ReplicationPlugin},
    service::{InputSink, Rejections},
};
use tessera_sim::{
    Input, InputEnvelope, OutEvent, Outbox, PlayerId, SimWorld,
    matchmaking::{Match, Matchmaker, QueueRules},
    room::Room,
};
use tessera_tables::{
    TablesHandle,
    schema::{SyncMode, ZoneKind},
};

use crate::{
    play::{ZoneSink, forward_output},
    scheduler::{Scheduler, WorldId, WorldOptions},
    zones::spec_for,
};

/// How long the oldest ticket waits for a full room before a smaller one
/// (at least two players) may form, milliseconds.
pub const WAIT_BUDGET_MS: u64 = 10_000;

/// A player to move into a room: their new world and the join to send it.
pub type Assignment = (PlayerId, Arc<dyn InputSink>, Input);

/// Where a queued player's messages go until their room exists.
pub struct QueueSink {
    arena: Arc<Mutex<Arena>>,
    kind: String,
}

impl InputSink for QueueSink {
    fn send(&self, envelope: InputEnvelope) -> Result<(), String> {
        let mut arena = self.arena.lock().unwrap_or_else(|p| p.into_inner());
        match envelope.input {
            Input::Join { class } => arena.queue(envelope.player, &self.kind, class),
            Input::JoinSaved(saved) => arena.queue(envelope.player, &self.kind, saved.class),
            Input::Leave => {
                arena.cancel(envelope.player);
                Ok(())
            }
            _ => Err("waiting for a match".into()),
        }
    }
}

struct RoomWorld {
    id: WorldId,
    /// Every player left (the world can end).
    empty: Arc<AtomicBool>,
    /// The result is out (its players may queue again).
    finished: Arc<AtomicBool>,
    players: Vec<PlayerId>,
    sink: Arc<dyn InputSink>,
}

/// The node's matchmaking and state-sync rooms.
pub struct Arena {
    scheduler: Arc<Scheduler>,
    tables: TablesHandle,
    to_net: mpsc::Sender<Vec<(PlayerId, u8, Vec<u8>)>>,
    rejections: Rejections,
    matchmaker: Matchmaker,
    classes: BTreeMap<PlayerId, String>,
    /// The room each placed player is in (index into `rooms`' ids), for
    /// reconnects; dropped when the room finishes or ends.
    placed: BTreeMap<PlayerId, WorldId>,
    rooms: Vec<RoomWorld>,
    started: Instant,
    next_seed: u64,
}

impl Arena {
    /// Rooms on `scheduler`, sending through `to_net`.
    pub fn new(
        scheduler: Arc<Scheduler>,
        tables: TablesHandle,
        to_net: mpsc::Sender<Vec<(PlayerId, u8, Vec<u8>)>>,
        rejections: Rejections,
        seed: u64,
    ) -> Self {
        Self {
            scheduler,
            tables,
            to_net,
            rejections,
            matchmaker: Matchmaker::default(),
            classes: BTreeMap::new(),
            placed: BTreeMap::new(),
            rooms: Vec::new(),
            started: Instant::now(),
            next_seed: seed.wrapping_add(2_000_000),
        }
    }

    /// Whether `kind` is a state-sync room kind (joining it means queueing).
    pub fn is_room_kind(&self, kind: &str) -> bool {
        self.tables
            .current()
            .zones
            .iter()
            .any(|z| z.id.0 == kind && z.kind == ZoneKind::Room && z.sync == SyncMode::State)
    }

    /// The room `player` was placed in while it is still playing (a
    /// reconnect goes back there); after its result they may queue again.
    pub fn room_of(&self, player: PlayerId) -> Option<Arc<dyn InputSink>> {
        let id = self.placed.get(&player)?;
        self.rooms
            .iter()
            .find(|r| r.id == *id && !r.finished.load(Ordering::Relaxed))
            .map(|r| r.sink.clone())
    }

    /// The sink for a player queueing for `kind`.
    pub fn queue_sink(arena: &Arc<Mutex<Arena>>, kind: &str) -> Arc<dyn InputSink> {
        Arc::new(QueueSink {
            arena: arena.clone(),
            kind: kind.to_string(),
        })
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn queue(&mut self, player: PlayerId, kind: &str, class: String) -> Result<(), String> {
        let tables = self.tables.current();
        let zone = tables
            .zones
            .iter()
            .find(|z| z.id.0 == kind)
            .ok_or_else(|| format!("no room kind {kind:?}"))?;
        let size = zone.capacity as usize;
        // Rules follow the tables; queued tickets stay.
        self.matchmaker.add_queue(
            kind,
            QueueRules {
                room_size: size,
                sides: 2,
                min_players: 2.min(size),
                wait_budget: WAIT_BUDGET_MS,
            },
        );
        let now = self.now_ms();
        self.matchmaker
            .enqueue(kind, vec![player], now)
            .map_err(|e| e.to_string())?;
        self.classes.insert(player, class);
        tracing::info!(%player, kind, "queued for a room");
        Ok(())
    }

    fn cancel(&mut self, player: PlayerId) {
        self.matchmaker.cancel(player);
        self.classes.remove(&player);
    }

    /// Forms what matches can form, starts their rooms, ends empty ones,
    /// and returns who moves where.
    pub fn poll(&mut self) -> Vec<Assignment> {
        for room in &self.rooms {
            if room.finished.load(Ordering::Relaxed) || room.empty.load(Ordering::Relaxed) {
                for player in &room.players {
                    if self.placed.get(player) == Some(&room.id) {
                        self.placed.remove(player);
                    }
                }
            }
            if room.empty.load(Ordering::Relaxed) {
                tracing::info!(world = %room.id, "room empty: ending it");
                self.scheduler.end_world(room.id);
            }
        }
        self.rooms.retain(|r| !r.empty.load(Ordering::Relaxed));
        let now = self.now_ms();
        let mut moves = Vec::new();
        for found in self.matchmaker.poll(now) {
            match self.start(&found) {
                Ok((id, sink)) => {
                    for player in found.sides.iter().flatten() {
                        let class = self.classes.remove(player).unwrap_or_default();
                        self.placed.insert(*player, id);
                        moves.push((*player, sink.clone(), Input::Join { class }));
                    }
                }
                Err(error) => {
                    tracing::error!(%error, kind = %found.kind, "cannot start a room");
                }
            }
        }
        moves
    }

    fn start(&mut self, found: &Match) -> Result<(WorldId, Arc<dyn InputSink>), String> {
        let tables = self.tables.current();
        let zone = tables
            .zones
            .iter()
            .find(|z| z.id.0 == found.kind)
            .ok_or("the room kind left the tables")?;
        let seed = self.next_seed;
        self.next_seed += 1;
        let spec = spec_for(zone, seed).map_err(|e| e.to_string())?;
        let acks = AckBoard::default();
        let replication = ReplicationPlugin {
            acks: acks.clone(),
            rejections: self.rejections.clone(),
            ..ReplicationPlugin::default()
        };
        let mut sim = SimWorld::build(spec.clone(), |app| {
            app.add_plugins(replication);
        })
        .map_err(|e| e.to_string())?;
        sim.set_tables(tables.clone());
        let mut room = sim.world_mut().resource_mut::<Room>();
        for (side, players) in found.sides.iter().enumerate() {
            for player in players {
                room.roster.insert(*player, side as u8);
            }
        }
        let empty = Arc::new(AtomicBool::new(false));
        let finished = Arc::new(AtomicBool::new(false));
        let mut forward = forward_output(self.to_net.clone());
        let (empty_flag, finished_flag) = (empty.clone(), finished.clone());
        let options = WorldOptions {
            after_tick: Some(Box::new(move |sim: &mut SimWorld| {
                for event in sim.world().resource::<Outbox>().events() {
                    match event {
                        OutEvent::RoomEmpty => empty_flag.store(true, Ordering::Relaxed),
                        OutEvent::RoomFinished(_) => finished_flag.store(true, Ordering::Relaxed),
                        _ => {}
                    }
                }
                forward(sim);
            })),
            ..WorldOptions::default()
        };
        let handle = self
            .scheduler
            .add_world(sim, options)
            .map_err(|e| e.to_string())?;
        tracing::info!(world = %handle.id, kind = %spec.kind, players = found.sides.iter().flatten().count(), "match formed: room started");
        let id = handle.id;
        let sink: Arc<dyn InputSink> = Arc::new(ZoneSink {
            world: handle,
            acks,
        });
        self.rooms.push(RoomWorld {
            id,
            empty,
            finished,
            players: found.sides.iter().flatten().copied().collect(),
            sink: sink.clone(),
        });
        Ok((id, sink))
    }
}
