//! Frame-sync rooms made at run time: a `Join` naming a room kind whose
//! `zones` row says `room` + `frame` lands in an open room of that kind,
//! or a new one. Each room is a world on the scheduler driven by a
//! [`FrameRelay`]: the relay supplies each frame's inputs (as the world's
//! input driver) and sends bundles after it (as its after-tick step).
//!
//! A room keeps the tables it started with (a mid-match reload would
//! desync every client), and a player stays in their room until they
//! leave, so a reconnect lands in the same room and gets a catch-up (the
//! relay checkpoints the room's world from its after-tick step). A room is
//! over when everyone who came has left or it reached its longest length;
//! it is then ended.
//!
//! A player may also open a room (with a password or not): it is found by
//! id, never by the automatic placement above.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
        mpsc,
    },
};

use tessera_net::{
    frames::Uplink,
    relay::{FrameRelay, RelayMessage, RelaySettings, RelayStats},
    service::InputSink,
};
use tessera_sim::{Input, InputEnvelope, PlayerId, SimWorld};
use tessera_tables::{
    TablesHandle,
    schema::{SyncMode, ZoneKind},
};

use crate::{
    replays::ReplaySink,
    scheduler::{Scheduler, WorldId, WorldOptions},
    zones::spec_for,
};

/// Messages a room's relay buffers between frames.
const ROOM_INBOX: usize = 4_096;

/// Where a room member's messages go.
pub struct RoomSink {
    tx: mpsc::SyncSender<RelayMessage>,
    members: AtomicUsize,
    capacity: usize,
    membership: Membership,
    world: WorldId,
    kind: String,
    /// Opened by a player with a password (never placed into automatically).
    password: Option<String>,
    /// Opened by a player: joined by id only.
    private: bool,
    /// The room is over (everyone left, or its longest length) or its
    /// world is gone: it takes nobody new and is ended.
    over: Arc<AtomicBool>,
}

type Membership = Arc<Mutex<BTreeMap<PlayerId, Arc<RoomSink>>>>;

impl RoomSink {
    fn deliver(&self, message: RelayMessage) -> Result<(), String> {
        self.tx.try_send(message).map_err(|error| match error {
            mpsc::TrySendError::Full(_) => "the room is busy, try again".to_string(),
            mpsc::TrySendError::Disconnected(_) => {
                // Its world ended (or panicked): never hand it out again.
                self.over.store(true, Ordering::Relaxed);
                "the room has ended".to_string()
            }
        })
    }
}

impl InputSink for RoomSink {
    fn send(&self, envelope: InputEnvelope) -> Result<(), String> {
        let player = envelope.player;
        match envelope.input {
            Input::Join { class } => self.deliver(RelayMessage::Join { player, class }),
            Input::JoinSaved(saved) => self.deliver(RelayMessage::Join {
                player,
                class: saved.class,
            }),
            Input::Leave => {
                if self
                    .membership
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&player)
                    .is_some()
                {
                    self.members.fetch_sub(1, Ordering::Relaxed);
                }
                self.deliver(RelayMessage::Leave { player })
            }
            _ => Err("a frame-sync room takes frame commands".into()),
        }
    }

    fn send_frames(&self, player: PlayerId, uplink: Uplink) -> Result<(), String> {
        self.deliver(RelayMessage::Uplink { player, uplink })
    }
}

/// The node's frame-sync rooms.
pub struct Rooms {
    scheduler: Arc<Scheduler>,
    tables: TablesHandle,
    to_net: mpsc::Sender<Vec<(PlayerId, u8, Vec<u8>)>>,
    settings: RelaySettings,
    stats: Arc<RelayStats>,
    open: BTreeMap<String, Vec<Arc<RoomSink>>>,
    membership: Membership,
    next_seed: u64,
    /// Where rooms are recorded, if they are.
    replays: Option<ReplaySink>,
}

impl Rooms {
    /// Rooms on `scheduler`, sending through `to_net`.
    pub fn new(
        scheduler: Arc<Scheduler>,
        tables: TablesHandle,
        to_net: mpsc::Sender<Vec<(PlayerId, u8, Vec<u8>)>>,
        seed: u64,
        replays: Option<ReplaySink>,
    ) -> Self {
        Self {
            replays,
            scheduler,
            tables,
            to_net,
            settings: RelaySettings::default(),
            stats: Arc::default(),
            open: BTreeMap::new(),
            membership: Arc::default(),
            next_seed: seed.wrapping_add(1_000_000),
        }
    }

    /// Lockstep counters for `/metrics`.
    pub fn stats(&self) -> Arc<RelayStats> {
        self.stats.clone()
    }

    /// The room `player` should be in for a join naming `kind`: theirs if
    /// they are in one already (a reconnect), else an open room of that kind
    /// with space, else a new one.
    pub fn room_for(&mut self, player: PlayerId, kind: &str) -> Result<Arc<dyn InputSink>, String> {
        self.prune();
        if let Some(room) = self
            .membership
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&player)
        {
            return Ok(room.clone() as Arc<dyn InputSink>);
        }
        let tables = self.tables.current();
        let zone = tables
            .zones
            .iter()
            .find(|z| z.id.0 == kind)
            .ok_or_else(|| format!("no world {kind:?} in the tables"))?;
        if zone.kind != ZoneKind::Room || zone.sync != SyncMode::Frame {
            return Err(format!(
                "{kind:?} is not a frame-sync room (state-sync rooms over the network are not built yet)"
            ));
        }
        let open = self.open.entry(kind.to_string()).or_default();
        let room = match open.iter().find(|room| {
            !room.private
                && room.members.load(Ordering::Relaxed) < room.capacity
                && !room.over.load(Ordering::Relaxed)
        }) {
            Some(room) => room.clone(),
            None => {
                let seed = self.next_seed;
                self.next_seed += 1;
                let spec = spec_for(zone, seed).map_err(|e| e.to_string())?;
                let room = self.start(spec, tables.clone(), None)?;
                self.open
                    .entry(kind.to_string())
                    .or_default()
                    .push(room.clone());
                room
            }
        };
        Ok(self.admit(player, room))
    }

    fn admit(&self, player: PlayerId, room: Arc<RoomSink>) -> Arc<dyn InputSink> {
        room.members.fetch_add(1, Ordering::Relaxed);
        self.membership
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(player, room.clone());
        room as Arc<dyn InputSink>
    }

    /// Whether `kind` is a frame-sync room kind.
    pub fn is_room_kind(&self, kind: &str) -> bool {
        crate::zones::room_kind(&self.tables.current(), kind, SyncMode::Frame).is_some()
    }

    /// Rooms running now.
    pub fn room_count(&self) -> usize {
        self.open.values().map(Vec::len).sum()
    }

    /// Whether `player` is in one of these rooms.
    pub fn contains(&self, player: PlayerId) -> bool {
        self.membership
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&player)
    }

    /// Opens a room of `kind` that only a join by id enters, with `player` in it.
    pub fn create(
        &mut self,
        player: PlayerId,
        kind: &str,
        password: Option<String>,
    ) -> Result<(u64, Arc<dyn InputSink>), String> {
        self.prune();
        if self.contains(player) {
            return Err("already in a room: leave it first".into());
        }
        let tables = self.tables.current();
        let zone = crate::zones::room_kind(&tables, kind, SyncMode::Frame)
            .ok_or_else(|| format!("{kind:?} is not a frame-sync room kind"))?;
        let seed = self.next_seed;
        self.next_seed += 1;
        let spec = spec_for(zone, seed).map_err(|e| e.to_string())?;
        let room = self.start(spec, tables.clone(), Some(password))?;
        self.open
            .entry(kind.to_string())
            .or_default()
            .push(room.clone());
        let id = room.world.0;
        Ok((id, self.admit(player, room)))
    }

    /// Puts `player` in room `id` if it is one of these (`Ok(None)`: not ours).
    pub fn join(
        &mut self,
        player: PlayerId,
        id: u64,
        password: Option<&str>,
    ) -> Result<Option<Arc<dyn InputSink>>, String> {
        self.prune();
        let Some(room) = self
            .open
            .values()
            .flatten()
            .find(|r| r.world.0 == id)
            .cloned()
        else {
            return Ok(None);
        };
        if !crate::lobby::password_matches(password, room.password.as_deref()) {
            return Err(crate::lobby::WRONG_PASSWORD.into());
        }
        if room.over.load(Ordering::Relaxed) {
            return Err("the room has ended".into());
        }
        if self.contains(player) {
            return Err("already in a room: leave it first".into());
        }
        if room.members.load(Ordering::Relaxed) >= room.capacity {
            return Err("the room is full".into());
        }
        Ok(Some(self.admit(player, room)))
    }

    /// Rooms of `kind` ("" for all), for a room list.
    pub fn list(&self, kind: &str) -> Vec<tessera_net::proto::RoomInfo> {
        self.open
            .values()
            .flatten()
            .filter(|r| (kind.is_empty() || r.kind == kind) && !r.over.load(Ordering::Relaxed))
            .map(|r| tessera_net::proto::RoomInfo {
                id: r.world.0,
                kind: r.kind.clone(),
                players: r.members.load(Ordering::Relaxed) as u32,
                capacity: r.capacity as u32,
                has_password: r.password.is_some(),
                started: false,
                sync: "frame".into(),
            })
            .collect()
    }

    /// A room whose world crashed: forgotten, its members told why.
    /// Returns its members, who go back to their zones (none if the world
    /// was not one of these rooms).
    pub fn crashed(&mut self, world: WorldId, reason: &str) -> Vec<PlayerId> {
        let mut found = false;
        for rooms in self.open.values_mut() {
            rooms.retain(|room| {
                let this = room.world == world;
                if this {
                    room.over.store(true, Ordering::Relaxed);
                    found = true;
                }
                !this
            });
        }
        if !found {
            return Vec::new();
        }
        let mut membership = self.membership.lock().unwrap_or_else(|p| p.into_inner());
        let players: Vec<PlayerId> = membership
            .iter()
            .filter(|(_, room)| room.world == world)
            .map(|(player, _)| *player)
            .collect();
        membership.retain(|_, room| room.world != world);
        drop(membership);
        tracing::warn!(%world, players = players.len(), "frame-sync room crashed: its players go back to their zones");
        let _ = self
            .to_net
            .send(crate::crashes::room_closed(&players, world, reason));
        players
    }

    /// Ends rooms that are over and forgets them and their memberships.
    pub fn prune(&mut self) {
        let mut ended = Vec::new();
        for rooms in self.open.values_mut() {
            rooms.retain(|room| {
                let over = room.over.load(Ordering::Relaxed);
                if over {
                    ended.push(room.world);
                }
                !over
            });
        }
        if ended.is_empty() {
            return;
        }
        for world in &ended {
            tracing::info!(%world, "frame-sync room over: ending it");
            self.scheduler.end_world(*world);
        }
        self.membership
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, room| !ended.contains(&room.world));
    }

    /// Starts a room world; `private` (a player's room, with its password)
    /// rooms are joined by id only.
    fn start(
        &self,
        spec: tessera_sim::WorldSpec,
        tables: Arc<tessera_tables::Tables>,
        private: Option<Option<String>>,
    ) -> Result<Arc<RoomSink>, String> {
        let capacity = spec.capacity as usize;
        let (tx, rx) = mpsc::sync_channel(ROOM_INBOX);
        let relay = FrameRelay::new(
            spec.clone(),
            tables.hash().to_string(),
            rx,
            self.settings.clone(),
            self.stats.clone(),
        );
        let relay = Arc::new(Mutex::new(relay));
        let over = Arc::new(AtomicBool::new(false));
        let over_flag = over.clone();
        spec.validate().map_err(|e| e.to_string())?;
        let world_spec = spec.clone();
        // Built on its worker: this runs on the net thread.
        let build = Box::new(move || {
            let mut sim = SimWorld::new(world_spec).map_err(|e| e.to_string())?;
            sim.set_tables(tables);
            Ok(sim)
        });
        let driver_relay = relay.clone();
        let to_net = self.to_net.clone();
        let options = WorldOptions {
            driver: Some(Box::new(move |frame| {
                driver_relay
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .before_tick(frame)
            })),
            after_tick: Some(Box::new(move |sim: &mut SimWorld| {
                let mut relay = relay.lock().unwrap_or_else(|p| p.into_inner());
                let out = relay.after_tick(sim);
                if relay.is_over() {
                    over_flag.store(true, Ordering::Relaxed);
                }
                if !out.is_empty() {
                    let _ = to_net.send(out);
                }
            })),
            record: self.replays.clone(),
            ..WorldOptions::default()
        };
        let handle = self
            .scheduler
            .add_world_built(&spec, build, options)
            .map_err(|e| e.to_string())?;
        tracing::info!(world = %handle.id, kind = %spec.kind, seed = spec.seed, "frame-sync room started");
        Ok(Arc::new(RoomSink {
            tx,
            members: AtomicUsize::new(0),
            capacity,
            membership: self.membership.clone(),
            world: handle.id,
            kind: spec.kind.clone(),
            private: private.is_some(),
            password: private.flatten(),
            over,
        }))
    }
}
