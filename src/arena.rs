//! State-sync rooms through matchmaking: a `join` naming a `zones` row of
//! kind `room` and sync `state` (e.g. `arena`) queues the player for that
//! kind. When the matchmaker forms a match, a room world is started with
//! the match's sides as its roster and every matched player is moved into
//! it (the net thread switches their connection to the room and joins them
//! with the class they queued with). The room runs its own lifecycle
//! (countdown when full, fight, result to every player); a room every
//! player left is ended.
//!
//! Rooms can also be opened by a player (optionally with a password) and
//! entered by id; those balance sides as players come, and their owner (the
//! first in) may start them early. Players may also queue from a zone and
//! keep playing there until their match forms; a team leader queues the
//! whole team as one party.

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
    matchmaking::{Matchmaker, QueueRules},
    output::RoomStage,
    room::Room,
};
use tessera_tables::{TablesHandle, schema::SyncMode};

use crate::{
    play::{ZoneSink, forward_output},
    replays::ReplaySink,
    scheduler::{Scheduler, WorldId, WorldOptions},
    zones::spec_for,
};

/// How long the oldest ticket waits for a full room before a smaller one
/// (at least two players) may form, milliseconds.
pub const WAIT_BUDGET_MS: u64 = 10_000;

/// How long a player's room may stand with nobody placed in it.
const UNUSED_ROOM: std::time::Duration = std::time::Duration::from_secs(10);

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
    opened: Instant,
    kind: String,
    capacity: usize,
    /// Opened by a player (else formed by matchmaking; never joinable by id).
    custom: bool,
    password: Option<String>,
    /// The countdown began (it takes no one new).
    started: Arc<AtomicBool>,
    /// Every player left (the world can end).
    empty: Arc<AtomicBool>,
    /// The result is out (its players may queue again).
    finished: Arc<AtomicBool>,
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
    /// Players who queued from a zone and still play there.
    in_zone: std::collections::BTreeSet<PlayerId>,
    /// The room each placed player is in (index into `rooms`' ids), for
    /// reconnects; dropped when the room finishes or ends.
    placed: BTreeMap<PlayerId, WorldId>,
    rooms: Vec<RoomWorld>,
    started: Instant,
    next_seed: u64,
    /// Where rooms are recorded, if they are.
    replays: Option<ReplaySink>,
}

impl Arena {
    /// Rooms on `scheduler`, sending through `to_net`.
    pub fn new(
        scheduler: Arc<Scheduler>,
        tables: TablesHandle,
        to_net: mpsc::Sender<Vec<(PlayerId, u8, Vec<u8>)>>,
        rejections: Rejections,
        seed: u64,
        replays: Option<ReplaySink>,
    ) -> Self {
        Self {
            replays,
            scheduler,
            tables,
            to_net,
            rejections,
            matchmaker: Matchmaker::default(),
            classes: BTreeMap::new(),
            in_zone: Default::default(),
            placed: BTreeMap::new(),
            rooms: Vec::new(),
            started: Instant::now(),
            next_seed: seed.wrapping_add(2_000_000),
        }
    }

    /// Whether `kind` is a state-sync room kind (joining it means queueing).
    pub fn is_room_kind(&self, kind: &str) -> bool {
        crate::zones::room_kind(&self.tables.current(), kind, SyncMode::State).is_some()
    }

    /// The room `player` was placed in while it is still playing (a
    /// reconnect goes back there); after its result they may queue again
    /// (and stay placed, so that they can leave it for a zone).
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
        self.queue_party(kind, vec![(player, class)])?;
        self.in_zone.remove(&player);
        Ok(())
    }

    /// Queues `party` (players with the class each will play; empty: the
    /// class they last joined with) for `kind` as one ticket, while they
    /// stay where they are until the match forms.
    pub fn queue_from_zone(
        &mut self,
        kind: &str,
        party: Vec<(PlayerId, String)>,
    ) -> Result<(), String> {
        if !self.is_room_kind(kind) {
            return Err(format!("{kind:?} is not a state-sync room kind"));
        }
        let players: Vec<PlayerId> = party.iter().map(|(p, _)| *p).collect();
        self.queue_party(kind, party)?;
        self.in_zone.extend(players);
        Ok(())
    }

    fn queue_party(&mut self, kind: &str, party: Vec<(PlayerId, String)>) -> Result<(), String> {
        if let Some((player, _)) = party.iter().find(|(p, _)| self.room_of(*p).is_some()) {
            return Err(format!("player {} is in a room", player.0));
        }
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
        let players: Vec<PlayerId> = party.iter().map(|(p, _)| *p).collect();
        self.matchmaker
            .enqueue(kind, players.clone(), now)
            .map_err(|e| e.to_string())?;
        for (player, class) in party {
            self.classes.insert(player, class);
        }
        tracing::info!(?players, kind, "queued for a room");
        Ok(())
    }

    fn cancel(&mut self, player: PlayerId) {
        let kind = self.matchmaker.queued_for(player).map(str::to_string);
        self.matchmaker.cancel(player);
        self.classes.remove(&player);
        self.in_zone.remove(&player);
        // The rest of the party is out too.
        if kind.is_some() {
            let matchmaker = &self.matchmaker;
            self.classes
                .retain(|p, _| matchmaker.queued_for(*p).is_some());
            self.in_zone.retain(|p| matchmaker.queued_for(*p).is_some());
        }
    }

    /// Takes `player` out of their room or queue. `None`: in neither;
    /// `Some(true)`: they must go back to a zone; `Some(false)`: they queued
    /// from a zone and are still there.
    pub fn leave(&mut self, player: PlayerId) -> Option<bool> {
        if self.matchmaker.queued_for(player).is_some() {
            let in_zone = self.in_zone.contains(&player);
            self.cancel(player);
            return Some(!in_zone);
        }
        self.placed.remove(&player).map(|_| true)
    }

    /// Whether `player` holds a matchmaking ticket.
    pub fn is_queued(&self, player: PlayerId) -> bool {
        self.matchmaker.queued_for(player).is_some()
    }

    /// Rooms running now (matchmade and opened by players).
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Opens a room of `kind` owned by `player`, who is placed in it.
    pub fn create(
        &mut self,
        player: PlayerId,
        kind: &str,
        password: Option<String>,
    ) -> Result<(u64, Arc<dyn InputSink>), String> {
        if !self.is_room_kind(kind) {
            return Err(format!("{kind:?} is not a state-sync room kind"));
        }
        self.ensure_free(player)?;
        let (id, sink) = self.start(kind, &[], Some(password))?;
        self.placed.insert(player, id);
        Ok((id.0, sink))
    }

    fn ensure_free(&self, player: PlayerId) -> Result<(), String> {
        if self.room_of(player).is_some() {
            return Err("already in a room: leave it first".into());
        }
        if self.matchmaker.queued_for(player).is_some() {
            return Err("queued for a match: leave the queue first".into());
        }
        Ok(())
    }

    /// Places `player` in room `id` if it is one of this arena's (`Ok(None)`: not ours).
    pub fn join(
        &mut self,
        player: PlayerId,
        id: u64,
        password: Option<&str>,
    ) -> Result<Option<Arc<dyn InputSink>>, String> {
        let Some(room) = self.rooms.iter().find(|r| r.id.0 == id) else {
            return Ok(None);
        };
        if !room.custom {
            return Err("a matchmade room takes only its match".into());
        }
        if !crate::lobby::password_matches(password, room.password.as_deref()) {
            return Err(crate::lobby::WRONG_PASSWORD.into());
        }
        if room.started.load(Ordering::Relaxed) || room.finished.load(Ordering::Relaxed) {
            return Err("the room has started".into());
        }
        if room.empty.load(Ordering::Relaxed) {
            return Err("the room has ended".into());
        }
        let placed = self.placed.values().filter(|w| **w == room.id).count();
        if placed >= room.capacity {
            return Err("the room is full".into());
        }
        let (world, sink) = (room.id, room.sink.clone());
        self.ensure_free(player)?;
        self.placed.insert(player, world);
        Ok(Some(sink))
    }

    /// Rooms of `kind` ("" for all), for a room list.
    pub fn list(&self, kind: &str) -> Vec<tessera_net::proto::RoomInfo> {
        self.rooms
            .iter()
            .filter(|r| kind.is_empty() || r.kind == kind)
            .filter(|r| !r.finished.load(Ordering::Relaxed) && !r.empty.load(Ordering::Relaxed))
            .map(|r| tessera_net::proto::RoomInfo {
                id: r.id.0,
                kind: r.kind.clone(),
                players: self.placed.values().filter(|w| **w == r.id).count() as u32,
                capacity: r.capacity as u32,
                has_password: r.password.is_some(),
                started: !r.custom || r.started.load(Ordering::Relaxed),
                sync: "state".into(),
            })
            .collect()
    }

    /// A room whose world crashed: forgotten, its players told why. Returns
    /// the players placed in it, who go back to their zones (none if the
    /// world was not one of these rooms).
    pub fn crashed(&mut self, world: WorldId, reason: &str) -> Vec<PlayerId> {
        let Some(at) = self.rooms.iter().position(|room| room.id == world) else {
            return Vec::new();
        };
        self.rooms.remove(at);
        let players: Vec<PlayerId> = self
            .placed
            .iter()
            .filter(|(_, room)| **room == world)
            .map(|(player, _)| *player)
            .collect();
        self.placed.retain(|_, room| *room != world);
        tracing::warn!(%world, players = players.len(), "room crashed: its players go back to their zones");
        let _ = self
            .to_net
            .send(crate::crashes::room_closed(&players, world, reason));
        players
    }

    /// Forms what matches can form, starts their rooms, ends empty ones,
    /// and returns who moves where.
    pub fn poll(&mut self) -> Vec<Assignment> {
        for room in &self.rooms {
            // A player's room nobody is (or ever got) in: its creator's join
            // failed or they left at once, so no "empty" will come.
            if room.custom
                && !room.finished.load(Ordering::Relaxed)
                && room.opened.elapsed() > UNUSED_ROOM
                && !self.placed.values().any(|world| *world == room.id)
            {
                room.empty.store(true, Ordering::Relaxed);
            }
            // Players stay placed in a finished room (to leave it for a
            // zone) until it is empty.
            if room.empty.load(Ordering::Relaxed) {
                self.placed.retain(|_, world| *world != room.id);
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
            match self.start(&found.kind, &found.sides, None) {
                Ok((id, sink)) => {
                    for player in found.sides.iter().flatten() {
                        let class = self.classes.remove(player).unwrap_or_default();
                        self.in_zone.remove(player);
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

    /// Starts a room world of `kind` with `sides` as its roster; `custom`
    /// (a player's room, with its password) when not from matchmaking.
    fn start(
        &mut self,
        kind: &str,
        sides: &[Vec<PlayerId>],
        custom: Option<Option<String>>,
    ) -> Result<(WorldId, Arc<dyn InputSink>), String> {
        let tables = self.tables.current();
        let zone = tables
            .zones
            .iter()
            .find(|z| z.id.0 == kind)
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
        spec.validate().map_err(|e| e.to_string())?;
        let (world_spec, roster) = (spec.clone(), sides.to_vec());
        // Built on its worker: this runs on the net thread.
        let build = Box::new(move || {
            let mut sim = SimWorld::build(world_spec, |app| {
                app.add_plugins(replication);
            })
            .map_err(|e| e.to_string())?;
            sim.set_tables(tables);
            let mut room = sim.world_mut().resource_mut::<Room>();
            for (side, players) in roster.iter().enumerate() {
                for player in players {
                    room.roster.insert(*player, side as u8);
                }
            }
            Ok(sim)
        });
        let empty = Arc::new(AtomicBool::new(false));
        let finished = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicBool::new(false));
        let mut forward = forward_output(self.to_net.clone());
        let (empty_flag, finished_flag, started_flag) =
            (empty.clone(), finished.clone(), started.clone());
        let options = WorldOptions {
            after_tick: Some(Box::new(move |sim: &mut SimWorld| {
                for event in sim.world().resource::<Outbox>().events() {
                    match event {
                        OutEvent::RoomEmpty => empty_flag.store(true, Ordering::Relaxed),
                        OutEvent::RoomFinished(_) => finished_flag.store(true, Ordering::Relaxed),
                        OutEvent::RoomStage {
                            stage: RoomStage::Countdown { .. } | RoomStage::Running,
                        } => started_flag.store(true, Ordering::Relaxed),
                        _ => {}
                    }
                }
                forward(sim);
            })),
            record: self.replays.clone(),
            ..WorldOptions::default()
        };
        let handle = self
            .scheduler
            .add_world_built(&spec, build, options)
            .map_err(|e| e.to_string())?;
        let players = sides.iter().flatten().count();
        match &custom {
            Some(_) => {
                tracing::info!(world = %handle.id, kind = %spec.kind, "room opened by a player")
            }
            None => {
                tracing::info!(world = %handle.id, kind = %spec.kind, players, "match formed: room started")
            }
        }
        let id = handle.id;
        let sink: Arc<dyn InputSink> = Arc::new(ZoneSink {
            world: handle,
            acks,
        });
        self.rooms.push(RoomWorld {
            id,
            opened: Instant::now(),
            kind: kind.to_string(),
            capacity: spec.capacity as usize,
            custom: custom.is_some(),
            password: custom.flatten(),
            started,
            empty,
            finished,
            sink: sink.clone(),
        });
        Ok((id, sink))
    }
}
