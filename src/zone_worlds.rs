//! The node's zone worlds: one per `zones` row of kind `zone`, started
//! with the node and, when a tables reload adds such a row, while it runs.
//! A running zone keeps its size, rate and capacity (its spec) until the
//! node restarts; a reload that changes or removes its row says so instead
//! of pretending to apply it.

use std::{collections::BTreeMap, sync::Arc};

use anyhow::Context;
use tessera_net::{
    replication::{AckBoard, ReplicationPlugin},
    service::InputSink,
};
use tessera_persistence::{
    dirty::PersistencePlugin,
    flush::{ChangeSender, Flusher},
};
use tessera_sim::{PlayerId, SimWorld, WorldSpec, driver::RandomInputs};
use tessera_tables::{TablesHandle, schema::ZoneKind};

mod restart;

pub use restart::ZoneDirectory;

use crate::{
    cluster::{Presence, presence_events},
    config::NodeConfig,
    persist,
    play::{self, ZoneHost},
    replays::ReplaySink,
    scheduler::{Scheduler, ThisWorld, WorldId, WorldOptions},
    zones::{persistent_zones, spec_for},
};

/// Starts zone worlds and hands them to the net thread's [`ZoneHost`].
pub struct ZoneWorlds {
    config: NodeConfig,
    scheduler: Arc<Scheduler>,
    tables: TablesHandle,
    replays: Option<ReplaySink>,
    to_net: std::sync::mpsc::Sender<Vec<(PlayerId, u8, Vec<u8>)>>,
    rejections: tessera_net::service::Rejections,
    flusher: Arc<Flusher>,
    host: ZoneHost,
    presence: Option<tokio::sync::mpsc::UnboundedSender<Presence>>,
    /// The spec each running zone started with, by zone id.
    running: BTreeMap<String, WorldSpec>,
    /// Each running zone's world, and what is restarted when it crashes.
    restarts: restart::Restarts,
    /// The tables version last looked at, and what it was warned about.
    seen_version: u64,
    /// Woken by each tables swap (a stored wake-up if none is waiting).
    tables_changed: Arc<tokio::sync::Notify>,
}

/// What is needed to start zones besides the node's config.
pub struct Wiring {
    /// Where worlds run.
    pub scheduler: Arc<Scheduler>,
    /// The node's tables.
    pub tables: TablesHandle,
    /// Where replays are recorded, if they are.
    pub replays: Option<ReplaySink>,
    /// Messages for players, to the net thread.
    pub to_net: std::sync::mpsc::Sender<Vec<(PlayerId, u8, Vec<u8>)>>,
    /// Where refusals are counted.
    pub rejections: tessera_net::service::Rejections,
    /// Where changed player data goes.
    pub flusher: Arc<Flusher>,
    /// The net thread's view of the zones.
    pub host: ZoneHost,
    /// Presence changes for the cluster, if there is one.
    pub presence: Option<tokio::sync::mpsc::UnboundedSender<Presence>>,
}

impl ZoneWorlds {
    /// Nothing started yet.
    pub fn new(config: &NodeConfig, wiring: Wiring) -> Self {
        // Registered before the zones start: a reload from here on wakes
        // `follow`, even one that lands before it runs.
        let tables_changed = Arc::new(tokio::sync::Notify::new());
        let wake = tables_changed.clone();
        wiring.tables.on_change(move || wake.notify_one());
        Self {
            tables_changed,
            config: config.clone(),
            seen_version: wiring.tables.version(),
            scheduler: wiring.scheduler,
            tables: wiring.tables,
            replays: wiring.replays,
            to_net: wiring.to_net,
            rejections: wiring.rejections,
            flusher: wiring.flusher,
            host: wiring.host,
            presence: wiring.presence,
            running: BTreeMap::new(),
            restarts: restart::Restarts::default(),
        }
    }

    /// Starts a world for every `zone` row of the current tables, in table
    /// order (the first is where players land by default). Any row that
    /// cannot become a world stops the node from starting.
    pub fn start_all(&mut self) -> anyhow::Result<()> {
        for spec in persistent_zones(&self.tables.current(), self.config.seed)? {
            self.start(spec)?;
        }
        Ok(())
    }

    /// Follows the tables for as long as the node runs: a new `zone` row
    /// starts a world; a changed or removed one is reported.
    /// It wakes only when a world crashed or the tables changed.
    pub async fn follow(mut self) {
        let crashed = self.host.crashed.clone();
        let tables_changed = self.tables_changed.clone();
        loop {
            tokio::select! {
                () = crashed.crashed() => {}
                () = tables_changed.notified() => {}
            }
            if !self.restart_crashed() {
                tracing::info!("the node is stopping: no longer starting crashed zones again");
                return;
            }
            let version = self.tables.version();
            if version == self.seen_version {
                continue;
            }
            self.seen_version = version;
            if !self.sync() {
                tracing::info!(
                    "the node is stopping: no longer following the tables for new zones"
                );
                return;
            }
        }
    }

    /// Brings the running zones in line with the current tables as far as
    /// a running node can: starts new zones, reports the rest.
    /// `false` once the scheduler has shut down (the node is stopping).
    fn sync(&mut self) -> bool {
        let current = self.tables.current();
        let zones: Vec<_> = current
            .zones
            .iter()
            .filter(|z| z.kind == ZoneKind::Zone)
            .collect();
        for zone in &zones {
            let seed = self.config.seed.wrapping_add(self.running.len() as u64);
            let spec = match spec_for(zone, seed) {
                Ok(spec) => spec,
                Err(error) => {
                    tracing::error!(%error, "a zone the tables added cannot become a world");
                    continue;
                }
            };
            match self.running.get(&spec.kind) {
                None => {
                    if let Err(error) = self.start(spec) {
                        if stopping(&error) {
                            return false;
                        }
                        tracing::error!(zone = %zone.id, error = %format!("{error:#}"), "could not start a zone the tables added");
                    }
                }
                Some(running) if !same_shape(running, &spec) => {
                    tracing::warn!(
                        zone = %zone.id,
                        "the tables changed this zone's tick rate, size or capacity: its world keeps the ones it started with until the node restarts"
                    );
                }
                Some(_) => {}
            }
        }
        for kind in self.running.keys() {
            if !zones.iter().any(|z| z.id.0 == *kind) {
                tracing::warn!(
                    zone = %kind,
                    "this zone is no longer in the tables: its world keeps running until the node restarts"
                );
            }
        }
        true
    }

    /// Starts one zone world and makes it available to players.
    fn start(&mut self, spec: WorldSpec) -> anyhow::Result<()> {
        let kind = spec.kind.clone();
        let (world, sink) = self.launch(spec.clone())?;
        self.restarts.started(world, &kind);
        self.host.add(&kind, sink);
        self.running.insert(kind, spec);
        Ok(())
    }

    /// Starts a world of zone `spec` on the scheduler: the zone's world,
    /// not yet anywhere players can reach it.
    fn launch(&mut self, spec: WorldSpec) -> anyhow::Result<(WorldId, Arc<dyn InputSink>)> {
        let config = &self.config;
        let (kind, tick_hz, seed) = (spec.kind.clone(), spec.tick_hz, spec.seed);
        let index = self.running.len() as u64;
        let acks = AckBoard::default();
        let replication = ReplicationPlugin {
            acks: acks.clone(),
            rejections: self.rejections.clone(),
            max_entities: config.view_entities,
            bytes_per_sec: config.snapshot_bytes_per_sec,
            ..ReplicationPlugin::default()
        };
        let sim = SimWorld::build(spec, |app| {
            app.add_plugins((replication, PersistencePlugin));
        })
        .with_context(|| format!("world {kind}"))?;
        let capture = persist::CaptureTicks::new(
            persist::capture_ticks(
                tick_hz,
                std::time::Duration::from_millis(config.flush_interval_ms.max(1)),
            ),
            index,
        );
        let mut options = WorldOptions {
            record: self.replays.clone(),
            tables: Some(self.tables.clone()),
            after_tick: Some(after_tick(
                self.to_net.clone(),
                (self.flusher.sender(), capture),
                self.host.profiles.clone(),
                self.host.teams.clone(),
                self.presence.clone(),
            )),
            at_end: Some({
                let to_store = self.flusher.sender();
                let evacuees = self.restarts.evacuees();
                Box::new(move |sim: &mut SimWorld| {
                    persist::hand_over_all(sim, &to_store);
                    // For a restart, if this end is a crash.
                    if let Some(world) = ThisWorld::of(sim) {
                        evacuees.keep(world, tessera_sim::players::players_progress(sim.world()));
                    }
                })
            }),
            ..Default::default()
        };
        if config.bots > 0 {
            let current = self.tables.current();
            let skills: Vec<&str> = current.skills.iter().map(|s| s.id.0.as_str()).collect();
            let max_target = config.bots + 1_000;
            let mut driver = RandomInputs::new(seed, config.bots).fighting(&skills, max_target);
            options.driver = Some(Box::new(move |tick| driver.inputs_for(tick)));
        }
        let handle = self.scheduler.add_world(sim, options)?;
        tracing::info!(world = %handle.id, %kind, tick_hz, bots = config.bots, "world started");
        let id = handle.id;
        let sink: Arc<dyn InputSink> = Arc::new(play::ZoneSink {
            world: handle,
            acks,
        });
        Ok((id, sink))
    }
}

/// Whether `error` is the scheduler saying it has shut down.
fn stopping(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<crate::scheduler::SchedulerError>(),
        Some(crate::scheduler::SchedulerError::ShutDown)
    )
}

/// Whether two specs of one zone agree on what a running world cannot
/// change (its seed is the node's, not the table's).
fn same_shape(a: &WorldSpec, b: &WorldSpec) -> bool {
    (a.tick_hz, a.width, a.height, a.capacity) == (b.tick_hz, b.width, b.height, b.capacity)
}

/// After each tick of a zone world: replication output to the net thread,
/// changed player data to the flush worker.
fn after_tick(
    to_net: std::sync::mpsc::Sender<Vec<(PlayerId, u8, Vec<u8>)>>,
    (to_store, capture): (ChangeSender, persist::CaptureTicks),
    profiles: play::Profiles,
    teams: play::Teams,
    presence: Option<tokio::sync::mpsc::UnboundedSender<Presence>>,
) -> crate::scheduler::AfterTick {
    let mut forward = play::forward_output(to_net);
    Box::new(move |sim: &mut SimWorld| {
        play::observe_zone(sim, &profiles, &teams);
        // Changes first: a `Left` makes the cluster flush the player and
        // release their route, and the flush must find the leaver's last
        // parts (captured as the avatar went) already queued ahead of it.
        persist::hand_over(sim, &to_store, capture);
        if let Some(tx) = &presence
            && let Some(world) = ThisWorld::of(sim)
        {
            let events = sim.world().resource::<tessera_sim::Outbox>().events();
            for event in presence_events(events, world.0) {
                let _ = tx.send(event);
            }
        }
        forward(sim);
    })
}
