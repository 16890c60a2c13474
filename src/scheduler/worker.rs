//! One worker thread: its worlds, their deadlines, and panic isolation.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{Arc, atomic::Ordering, mpsc},
    time::{Duration, Instant},
};

use tessera_net::replication::SnapshotPace;
use tessera_sim::{InputEnvelope, SimWorld, TickReport, replay::ReplayHeader};

use super::{
    BuildWorld, EndReason, INJECTED_CRASH, NodeEvent, SchedulerStats, TickEvent, WorldId,
    WorldOptions,
    pacing::Pacer,
    placement::{Load, Meter},
};
use crate::replays::Recording;

pub(super) struct NewWorld {
    pub id: WorldId,
    pub build: BuildWorld,
    pub inbox: mpsc::Receiver<InputEnvelope>,
    pub options: WorldOptions,
}

pub(super) enum Command {
    Add(Box<NewWorld>),
    End(WorldId),
    /// Fault injection: the world panics in its next tick. The reply says
    /// whether this worker runs it.
    Crash(WorldId, mpsc::Sender<bool>),
    Shutdown,
}

struct Slot {
    id: WorldId,
    sim: SimWorld,
    /// The tables version this world last took from `options.tables`.
    tables_version: u64,
    inbox: mpsc::Receiver<InputEnvelope>,
    inbox_capacity: usize,
    options: WorldOptions,
    recording: Option<Recording>,
    period: Duration,
    anchor: Instant,
    /// Ticks run since `anchor`; the next deadline is `anchor + period * ticks`.
    ticks_since_anchor: u32,
    /// Where this world's tick durations go (shared by its kind).
    durations: Arc<tessera_persistence::histogram::Histogram>,
    /// Fault injection asked this world to panic in its next tick.
    crash: bool,
}

impl Slot {
    fn deadline(&self) -> Instant {
        self.anchor + self.period * self.ticks_since_anchor
    }
}

pub(super) struct Worker {
    index: usize,
    commands: mpsc::Receiver<Command>,
    stats: Arc<SchedulerStats>,
    events: mpsc::Sender<NodeEvent>,
    load: Arc<Load>,
    meter: Meter,
    pacer: Pacer,
    max_catch_up: Duration,
    inbox_capacity: usize,
    slots: Vec<Slot>,
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

impl Worker {
    pub fn new(
        index: usize,
        commands: mpsc::Receiver<Command>,
        stats: Arc<SchedulerStats>,
        events: mpsc::Sender<NodeEvent>,
        load: Arc<Load>,
        config: &super::SchedulerConfig,
    ) -> Self {
        Self {
            index,
            commands,
            stats,
            events,
            load,
            meter: Meter::new(Instant::now()),
            pacer: Pacer::new(
                config.max_snapshot_every,
                config.pace_window,
                Instant::now(),
            ),
            max_catch_up: config.max_catch_up,
            inbox_capacity: config.inbox_capacity.max(1),
            slots: Vec::new(),
        }
    }

    /// Placement ranks a thinning worker by its pace (its thinned ticks
    /// look cheap): the pacer's is the one pace, published after each change.
    fn publish_pace(&self) {
        self.load.paced(self.pacer.every());
    }

    pub fn run(mut self) {
        let _span = tracing::info_span!("worker", index = self.index).entered();
        loop {
            self.tick_due_worlds();
            let timeout = self
                .slots
                .iter()
                .map(Slot::deadline)
                .min()
                .map_or(Duration::from_secs(3600), |d| {
                    d.saturating_duration_since(Instant::now())
                });
            match self.commands.recv_timeout(timeout) {
                Ok(command) => {
                    if !self.handle(command) {
                        break;
                    }
                    // Apply every queued command before ticking again.
                    while let Ok(command) = self.commands.try_recv() {
                        if !self.handle(command) {
                            return self.end_all();
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        self.end_all();
    }

    /// Returns `false` on shutdown.
    fn handle(&mut self, command: Command) -> bool {
        match command {
            Command::Add(new) => {
                let NewWorld {
                    id,
                    build,
                    inbox,
                    options,
                } = *new;
                let built = catch_unwind(AssertUnwindSafe(build))
                    .unwrap_or_else(|payload| Err(panic_message(payload.as_ref())));
                let mut sim = match built {
                    Ok(sim) => sim,
                    Err(message) => {
                        self.failed_to_build(id, message);
                        return true;
                    }
                };
                // The version first: if a reload lands in between, the world
                // holds tables at least that new and takes the next version
                // as it comes.
                let tables_version = options.tables.as_ref().map_or(0, |tables| {
                    let version = tables.version();
                    sim.set_tables(tables.current());
                    version
                });
                let header = options
                    .record
                    .as_ref()
                    .map(|_| ReplayHeader::for_world(&sim));
                let kind = sim.spec().kind.clone();
                let recording = match (&options.record, header) {
                    (Some(sink), Some(header)) => sink.open(id, header),
                    _ => None,
                };
                if recording.is_some() {
                    sim.start_recording();
                }
                sim.world_mut().insert_resource(super::ThisWorld(id));
                let period = Duration::from_nanos(sim.spec().tick_period_nanos());
                self.slots.push(Slot {
                    id,
                    sim,
                    tables_version,
                    inbox,
                    inbox_capacity: self.inbox_capacity,
                    options,
                    recording,
                    period,
                    anchor: Instant::now(),
                    ticks_since_anchor: 0,
                    durations: self.stats.tick_histogram(&kind),
                    crash: false,
                });
                true
            }
            Command::End(id) => {
                if let Some(position) = self.slots.iter().position(|s| s.id == id) {
                    let slot = self.slots.swap_remove(position);
                    self.end(slot, EndReason::Requested);
                }
                true
            }
            Command::Crash(id, armed) => {
                let found = match self.slots.iter_mut().find(|s| s.id == id) {
                    Some(slot) => {
                        tracing::warn!(world = %id, "fault injection: this world panics in its next tick");
                        slot.crash = true;
                        true
                    }
                    None => false,
                };
                // The asker may have stopped waiting.
                let _ = armed.send(found);
                true
            }
            Command::Shutdown => false,
        }
    }

    fn tick_due_worlds(&mut self) {
        let mut index = 0;
        while index < self.slots.len() {
            let now = Instant::now();
            let slot = &mut self.slots[index];
            if slot.deadline() > now {
                index += 1;
                continue;
            }
            let late_by = now - slot.deadline();
            if late_by > self.max_catch_up {
                let behind = (late_by.as_nanos() / slot.period.as_nanos().max(1)) as u64;
                tracing::warn!(world = %slot.id, behind_ticks = behind, "world fell too far behind; re-anchoring its clock");
                self.stats
                    .dropped_ticks
                    .fetch_add(behind, Ordering::Relaxed);
                slot.anchor = now;
                slot.ticks_since_anchor = 0;
            }
            let overrun = late_by >= slot.period;
            let thinned = Self::pace(slot, self.pacer.every());
            match Self::tick(slot) {
                Ok((elapsed, report)) => {
                    self.stats.ticks.fetch_add(1, Ordering::Relaxed);
                    self.stats
                        .tick_nanos
                        .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
                    if overrun {
                        self.stats.overruns.fetch_add(1, Ordering::Relaxed);
                    }
                    if thinned {
                        self.stats.thinned_ticks.fetch_add(1, Ordering::Relaxed);
                    }
                    let now = Instant::now();
                    self.meter.record(elapsed, now, &self.load);
                    let period = self.slots[index].period;
                    if let Some(change) = self.pacer.observe(late_by, period, now) {
                        self.publish_pace();
                        if change.every > change.from {
                            tracing::warn!(
                                worker = self.index,
                                every = change.every,
                                "ticks keep starting late: players get a snapshot every {} ticks",
                                change.every
                            );
                        } else {
                            tracing::info!(
                                worker = self.index,
                                every = change.every,
                                "ticks on time again: players get a snapshot every {} ticks",
                                change.every
                            );
                        }
                    }
                    let slot = &mut self.slots[index];
                    slot.durations.record(elapsed.as_micros() as u64);
                    slot.ticks_since_anchor += 1;
                    if slot.ticks_since_anchor >= 1 << 30 {
                        // Keep `period * ticks` far from overflow on long-lived zones.
                        slot.anchor = slot.deadline();
                        slot.ticks_since_anchor = 0;
                    }
                    if let Some(observer) = &slot.options.observer {
                        let event = TickEvent {
                            world: slot.id,
                            report,
                            tables: slot.sim.tables_hash(),
                            overrun,
                        };
                        if observer.send(event).is_err() {
                            slot.options.observer = None;
                        }
                    }
                    index += 1;
                }
                Err(message) => {
                    let slot = self.slots.swap_remove(index);
                    tracing::error!(world = %slot.id, tick = slot.sim.tick(), panic = %message, "world tick panicked; ending the world");
                    self.stats.panicked_worlds.fetch_add(1, Ordering::Relaxed);
                    self.end(slot, EndReason::Panicked(message));
                }
            }
        }
    }

    /// Sets the world's snapshot pace, if it replicates; whether it is
    /// thinned.
    fn pace(slot: &mut Slot, every: u32) -> bool {
        let Some(mut pace) = slot.sim.world_mut().get_resource_mut::<SnapshotPace>() else {
            return false;
        };
        if pace.every != every {
            pace.every = every;
        }
        every > 1
    }

    /// Between two ticks: take a new tables version if there is one.
    fn follow_tables(slot: &mut Slot) {
        let Some(handle) = &slot.options.tables else {
            return;
        };
        let version = handle.version();
        if version == slot.tables_version {
            return;
        }
        slot.tables_version = version;
        let tables = handle.current();
        let (old, new) = (slot.sim.tables_hash(), tables.hash());
        if old == new {
            return;
        }
        if let Some(mut recording) = slot.recording.take() {
            // A replay file holds one tables version; a swap ends it honestly
            // rather than writing ticks no replay could reproduce.
            tracing::warn!(world = %slot.id, tick = slot.sim.tick(), "tables changed: this world's replay recording ends here");
            recording.write(slot.sim.take_recorded());
            recording.close();
            slot.sim.stop_recording();
        }
        slot.sim.set_tables(tables);
        tracing::info!(world = %slot.id, next_tick = slot.sim.tick() + 1, %old, %new, "world switched tables");
    }

    fn tick(slot: &mut Slot) -> Result<(Duration, TickReport), String> {
        Self::follow_tables(slot);
        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| {
            // Inside the tick's guard, as a bug in a system would be.
            if std::mem::take(&mut slot.crash) {
                panic!("{INJECTED_CRASH}");
            }
            let next = slot.sim.tick() + 1;
            if let Some(driver) = slot.options.driver.as_mut() {
                slot.sim.push_envelopes(driver(next));
            }
            // At most one inbox-full per tick: a flood waits for later ticks
            // (or is refused at `send`) instead of stretching this one.
            let capacity = slot.inbox_capacity;
            slot.sim
                .push_envelopes(slot.inbox.try_iter().take(capacity));
            let report = slot.sim.step();
            if let Some(after_tick) = slot.options.after_tick.as_mut() {
                after_tick(&mut slot.sim);
            }
            slot.sim.drain_events();
            report
        }));
        match result {
            Ok(report) => {
                if let Some(recording) = slot.recording.as_mut() {
                    recording.write(slot.sim.take_recorded());
                }
                Ok((started.elapsed(), report))
            }
            Err(payload) => Err(panic_message(payload.as_ref())),
        }
    }

    fn end(&mut self, slot: Slot, reason: EndReason) {
        let Slot {
            id,
            mut sim,
            recording,
            mut options,
            ..
        } = slot;
        let last_tick = sim.tick();
        if let Some(recording) = recording {
            recording.close();
        }
        if let Some(mut at_end) = options.at_end.take()
            && catch_unwind(AssertUnwindSafe(|| at_end(&mut sim))).is_err()
        {
            tracing::error!(world = %id, "world panicked in its end hook");
        }
        // A world that panicked may panic again while dropping: contain that too.
        if catch_unwind(AssertUnwindSafe(move || drop(sim))).is_err() {
            tracing::error!(world = %id, "world panicked while being dropped");
        }
        self.stats.worlds.fetch_sub(1, Ordering::Relaxed);
        self.load.ended();
        if self.slots.is_empty() {
            // Nothing ticks to calm it down: a kept pace would thin the
            // next world's snapshots from its first tick, and rank this
            // worker behind busier ones for new worlds, for as long as
            // stepping back takes.
            self.pacer.reset(Instant::now());
            self.publish_pace();
        }
        tracing::info!(world = %id, last_tick, ?reason, "world ended");
        let _ = self.events.send(NodeEvent::WorldEnded {
            world: id,
            last_tick,
            reason,
        });
    }

    /// A world whose build failed: nothing to tick or drop, but its place
    /// is given back and it is reported ended like a world that panicked.
    fn failed_to_build(&mut self, id: WorldId, message: String) {
        tracing::error!(world = %id, error = %message, "world could not be built");
        self.stats.panicked_worlds.fetch_add(1, Ordering::Relaxed);
        self.stats.worlds.fetch_sub(1, Ordering::Relaxed);
        self.load.ended();
        let _ = self.events.send(NodeEvent::WorldEnded {
            world: id,
            last_tick: 0,
            reason: EndReason::Panicked(message),
        });
    }

    fn end_all(&mut self) {
        for slot in std::mem::take(&mut self.slots) {
            self.end(slot, EndReason::Shutdown);
        }
    }
}
