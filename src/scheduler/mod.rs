//! The node scheduler: N worker threads, each owning a set of worlds and
//! ticking each at its own deadline.
//!
//! Deadlines advance by exactly one period per tick from a fixed anchor, so
//! a world never drifts. A tick that starts a full period or more after its
//! deadline is an *overrun*: it still runs (catching up), and is counted. Only
//! a world more than [`SchedulerConfig::max_catch_up`] behind is re-anchored,
//! and the ticks it gives up are counted as dropped and logged. A panic in
//! one world's tick ends that world alone. A worker whose ticks keep
//! starting late thins its worlds' snapshots ([`pacing`]).

mod pacing;
mod placement;
mod worker;

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use tessera_persistence::histogram::{DURATION_BOUNDS_US, Histogram};
use tessera_sim::{InputEnvelope, SimWorld, TickReport, WorldSpec};
use tessera_tables::{TablesHandle, TablesHash};

use crate::replays::ReplaySink;
use worker::{Command, Worker};

/// Identifies a world on this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorldId(pub u64);

impl std::fmt::Display for WorldId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "world:{}", self.0)
    }
}

/// In-process input source stepped once per tick (synthetic players, tests).
pub type InputDriver = Box<dyn FnMut(u64) -> Vec<InputEnvelope> + Send>;

/// A tick as seen by an observer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TickEvent {
    /// Which world ticked.
    pub world: WorldId,
    /// The tick and its hash.
    pub report: TickReport,
    /// Whether this tick started a full period or more after its deadline.
    pub overrun: bool,
    /// The tables the tick ran with.
    pub tables: TablesHash,
}

/// The panic message of a world crashed by [`Scheduler::crash_world`].
pub const INJECTED_CRASH: &str = "fault injection: crash_world";

/// Why a world stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// [`Scheduler::end_world`] was called.
    Requested,
    /// The node is shutting down.
    Shutdown,
    /// A tick panicked; the message is the panic's.
    Panicked(String),
}

/// Builds a world on its worker ([`Scheduler::add_world_built`]); an
/// error says why it could not be built.
pub type BuildWorld = Box<dyn FnOnce() -> Result<SimWorld, String> + Send>;

/// Lifecycle notices from the workers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    /// A world stopped ticking and was dropped.
    WorldEnded {
        /// The world.
        world: WorldId,
        /// Its last tick.
        last_tick: u64,
        /// Why.
        reason: EndReason,
    },
}

/// Counters shared by every worker; read by `/metrics` and `/readyz`.
#[derive(Debug, Default)]
pub struct SchedulerStats {
    /// Ticks simulated, all worlds.
    pub ticks: AtomicU64,
    /// Ticks that started a period or more late.
    pub overruns: AtomicU64,
    /// Ticks given up by re-anchoring a world that fell too far behind.
    pub dropped_ticks: AtomicU64,
    /// Worlds placed on a worker and not yet ended (one counts from
    /// `add_world` on, before the worker has built it).
    pub worlds: AtomicU64,
    /// Worlds ended by a panic since start.
    pub panicked_worlds: AtomicU64,
    /// Total nanoseconds spent inside ticks.
    pub tick_nanos: AtomicU64,
    /// Ticks of replicating worlds that sent snapshots to only some of
    /// their players, the worker being overloaded ([`pacing`]).
    pub thinned_ticks: AtomicU64,
    /// Tick durations (microseconds) per world kind.
    tick_durations: std::sync::Mutex<BTreeMap<String, Arc<Histogram>>>,
}

impl SchedulerStats {
    /// The tick-duration histogram of worlds of `kind` (created on first use).
    pub fn tick_histogram(&self, kind: &str) -> Arc<Histogram> {
        self.tick_durations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(kind.to_string())
            .or_insert_with(|| Arc::new(Histogram::new(DURATION_BOUNDS_US)))
            .clone()
    }

    /// Every kind's histogram, by kind.
    pub fn tick_histograms(&self) -> Vec<(String, Arc<Histogram>)> {
        self.tick_durations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(kind, h)| (kind.clone(), h.clone()))
            .collect()
    }
}

/// How the scheduler runs.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// Worker threads (0: one per available core).
    pub workers: usize,
    /// How far behind a world may fall before it is re-anchored.
    pub max_catch_up: Duration,
    /// Inputs a world's inbox holds; also the most one tick takes, so a
    /// flood can neither grow memory nor stretch a tick without bound.
    pub inbox_capacity: usize,
    /// Under overload, snapshots go to each player at most this many ticks
    /// apart (1: never thinned; see [`pacing`]).
    pub max_snapshot_every: u32,
    /// How long the overload detector looks before it changes the pace.
    pub pace_window: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            workers: 0,
            max_catch_up: Duration::from_secs(1),
            inbox_capacity: 65_536,
            max_snapshot_every: 4,
            pace_window: Duration::from_secs(1),
        }
    }
}

/// Why an input did not reach a world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InboxError {
    /// The inbox is full: the world is not keeping up; the input is dropped.
    #[error("the world's inbox is full")]
    Full,
    /// The world has ended.
    #[error("the world has ended")]
    Ended,
}

/// What a new world comes with besides its simulation.
#[derive(Default)]
pub struct WorldOptions {
    /// Synthetic inputs generated every tick.
    pub driver: Option<InputDriver>,
    /// Receives every tick's report (tests, tooling). Dropping the receiver is fine.
    pub observer: Option<mpsc::Sender<TickEvent>>,
    /// Record the world's ticks to this sink.
    pub record: Option<ReplaySink>,
    /// Follow these tables: the world starts with the current version and
    /// picks up each new one at its next tick boundary.
    pub tables: Option<TablesHandle>,
    /// Runs on the worker after each tick (e.g. hands replication output to
    /// the net thread). Must not block.
    pub after_tick: Option<AfterTick>,
    /// Runs on the worker when the world ends, whatever the reason, before
    /// it is dropped (e.g. hands over changes not yet handed over; after a
    /// panic the world is as the panicking tick left it). Must not block.
    pub at_end: Option<AfterTick>,
}

/// See [`WorldOptions::after_tick`].
pub type AfterTick = Box<dyn FnMut(&mut SimWorld) + Send>;

/// The world's id, put in it by its worker before its first tick, for the
/// hooks to read: an id kept from `add_world`'s answer can come too late
/// (the worker may tick the world, and it may crash, before the caller
/// stores it). No system reads it; it is neither hashed nor recorded.
#[derive(bevy_ecs::resource::Resource, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThisWorld(pub WorldId);

impl ThisWorld {
    /// The id of `sim`, if a scheduler runs it.
    pub fn of(sim: &SimWorld) -> Option<WorldId> {
        sim.world().get_resource::<Self>().map(|this| this.0)
    }
}

/// The way into a running world.
#[derive(Clone, Debug)]
pub struct WorldHandle {
    /// Its id.
    pub id: WorldId,
    /// The worker thread it runs on.
    pub worker: usize,
    inbox: mpsc::SyncSender<InputEnvelope>,
}

impl WorldHandle {
    /// Queues an input for the world's next tick. Never blocks.
    pub fn send(&self, envelope: InputEnvelope) -> Result<(), InboxError> {
        self.inbox.try_send(envelope).map_err(|error| match error {
            mpsc::TrySendError::Full(_) => InboxError::Full,
            mpsc::TrySendError::Disconnected(_) => InboxError::Ended,
        })
    }
}

/// A worker's thread, taken (and joined) once at shutdown.
type WorkerThread = std::sync::Mutex<Option<JoinHandle<()>>>;

/// Owns the worker threads.
pub struct Scheduler {
    workers: Vec<(mpsc::Sender<Command>, WorkerThread)>,
    loads: Vec<Arc<placement::Load>>,
    next_id: AtomicU64,
    inbox_capacity: usize,
    stats: Arc<SchedulerStats>,
    events: mpsc::Sender<NodeEvent>,
}

/// A crash could not be injected ([`Scheduler::crash_world`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrashError {
    /// No worker runs a world with this id (never did, or it ended).
    #[error("no running world {0}")]
    NoSuchWorld(WorldId),
    /// A worker did not say within the wait whether it runs the world (a
    /// tick that long is itself the news); the crash may still happen.
    #[error("a worker did not answer within {0:?}; the crash may still happen")]
    NoAnswer(Duration),
    /// The scheduler was shut down.
    #[error("the scheduler has shut down")]
    ShutDown,
}

/// The scheduler could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchedulerError {
    /// A worker thread could not be started.
    #[error("could not start worker thread: {0}")]
    Spawn(#[from] std::io::Error),
    /// The scheduler was shut down.
    #[error("the scheduler has shut down")]
    ShutDown,
}

impl Scheduler {
    /// Starts the workers. Lifecycle notices go to the returned receiver.
    pub fn start(
        config: SchedulerConfig,
    ) -> Result<(Self, mpsc::Receiver<NodeEvent>), SchedulerError> {
        let count = if config.workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            config.workers
        };
        let stats = Arc::new(SchedulerStats::default());
        let (events, events_rx) = mpsc::channel();
        let mut workers = Vec::with_capacity(count);
        let mut loads = Vec::with_capacity(count);
        for index in 0..count {
            let (tx, rx) = mpsc::channel();
            let load = Arc::new(placement::Load::default());
            let worker = Worker::new(
                index,
                rx,
                stats.clone(),
                events.clone(),
                load.clone(),
                &config,
            );
            let handle = std::thread::Builder::new()
                .name(format!("tessera-worker-{index}"))
                .spawn(move || worker.run())?;
            workers.push((tx, std::sync::Mutex::new(Some(handle))));
            loads.push(load);
        }
        tracing::info!(workers = count, "scheduler started");
        Ok((
            Self {
                workers,
                loads,
                next_id: AtomicU64::new(1),
                inbox_capacity: config.inbox_capacity.max(1),
                stats,
                events,
            },
            events_rx,
        ))
    }

    /// Each worker's snapshot pace as placement sees it: a snapshot every
    /// this many ticks (1: every tick; more: the worker is overloaded).
    pub fn snapshot_intervals(&self) -> Vec<u32> {
        self.loads
            .iter()
            .map(|load| load.snapshot_every())
            .collect()
    }

    /// Number of worker threads.
    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// Shared counters.
    pub fn stats(&self) -> Arc<SchedulerStats> {
        self.stats.clone()
    }

    /// Hands `sim` to the worker whose worlds cost least to tick
    /// ([`placement`]); it starts ticking right away.
    pub fn add_world(
        &self,
        sim: SimWorld,
        options: WorldOptions,
    ) -> Result<WorldHandle, SchedulerError> {
        let spec = sim.spec().clone();
        self.add_world_built(&spec, Box::new(move || Ok(sim)), options)
    }

    /// Like [`Scheduler::add_world`], but the world of `spec` is built by
    /// `build` on the worker that will tick it, not on the calling thread:
    /// a world's plugins and schedules take ~100 µs to set up, and rooms
    /// are asked for on the net thread, where a burst of new rooms would
    /// delay every client's messages. Validate `spec` first: a build that
    /// fails (or panics) ends the world at once, reported like a world
    /// whose tick panicked.
    pub fn add_world_built(
        &self,
        spec: &WorldSpec,
        build: BuildWorld,
        options: WorldOptions,
    ) -> Result<WorldHandle, SchedulerError> {
        let id = WorldId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (inbox, inbox_rx) = mpsc::sync_channel(self.inbox_capacity);
        let mean_tick_us = self.stats.tick_histogram(&spec.kind).mean();
        let expected = placement::expected_us(mean_tick_us, spec.tick_hz);
        let index = placement::least_loaded(self.loads.iter().map(|load| &**load))
            .ok_or(SchedulerError::ShutDown)?;
        self.loads[index].placed(expected);
        // Counted from here, not when the worker takes it: a node that
        // says it is ready has its zones in the count.
        self.stats.worlds.fetch_add(1, Ordering::Relaxed);
        let command = Command::Add(Box::new(worker::NewWorld {
            id,
            build,
            inbox: inbox_rx,
            options,
        }));
        if self.workers[index].0.send(command).is_err() {
            self.stats.worlds.fetch_sub(1, Ordering::Relaxed);
            return Err(SchedulerError::ShutDown);
        }
        tracing::info!(world = %id, worker = index, "world added");
        Ok(WorldHandle {
            id,
            worker: index,
            inbox,
        })
    }

    /// Ends a world wherever it runs (no-op if it already ended).
    pub fn end_world(&self, id: WorldId) {
        for (tx, _) in &self.workers {
            let _ = tx.send(Command::End(id));
        }
    }

    /// Fault injection, for testing what players and operators see when
    /// a world's code fails: world `id` panics in its next tick, exactly
    /// as a tick that hits a bug does (see [`NodeEvent::WorldEnded`]).
    /// Blocks until the worker running it has armed the crash (workers
    /// read commands between ticks), at most `wait`; a world that is not
    /// running is left alone and said to be missing, so a mistyped id
    /// does not pass for a crash.
    pub fn crash_world(&self, id: WorldId, wait: Duration) -> Result<(), CrashError> {
        let (armed_tx, armed) = mpsc::channel();
        let asked = self
            .workers
            .iter()
            .filter(|(tx, _)| tx.send(Command::Crash(id, armed_tx.clone())).is_ok())
            .count();
        drop(armed_tx);
        if asked == 0 {
            return Err(CrashError::ShutDown);
        }
        let deadline = Instant::now() + wait;
        for _ in 0..asked {
            match armed.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => return Err(CrashError::NoAnswer(wait)),
                // A worker stopped without answering: it runs no world.
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        Err(CrashError::NoSuchWorld(id))
    }

    /// A sender for lifecycle notices, for components that want to add their own.
    pub fn event_sender(&self) -> mpsc::Sender<NodeEvent> {
        self.events.clone()
    }

    /// Ends every world (flushing their recordings) and joins the workers.
    /// Later calls (and adding worlds afterwards) do nothing.
    pub fn shutdown(&self) {
        for (tx, _) in &self.workers {
            let _ = tx.send(Command::Shutdown);
        }
        for (index, (_, handle)) in self.workers.iter().enumerate() {
            let handle = handle.lock().unwrap_or_else(|p| p.into_inner()).take();
            if handle.is_some_and(|h| h.join().is_err()) {
                tracing::error!(worker = index, "worker thread panicked outside a tick");
            }
        }
        tracing::info!("scheduler stopped");
    }
}
