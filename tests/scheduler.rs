//! The node scheduler: deadlines, overruns, runtime world lifecycle, panic
//! isolation, and determinism regardless of the number of worker threads.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use bevy_ecs::{resource::Resource, schedule::IntoScheduleConfigs, system::Res};
use tessera::scheduler::{
    CrashError, EndReason, NodeEvent, Scheduler, SchedulerConfig, ThisWorld, TickEvent, WorldId,
    WorldOptions,
};
use tessera_net::replication::SnapshotPace;
use tessera_sim::{SimWorld, Tick, TickSchedule, TickSystems, WorldSpec, driver::RandomInputs};

fn spec(seed: u64, tick_hz: u16) -> WorldSpec {
    WorldSpec {
        kind: format!("test-{seed}"),
        seed,
        tick_hz,
        ..WorldSpec::default()
    }
}

fn driven(seed: u64, players: u64) -> WorldOptions {
    let mut driver = RandomInputs::new(seed, players);
    WorldOptions {
        driver: Some(Box::new(move |tick| driver.inputs_for(tick))),
        ..Default::default()
    }
}

/// Collects `ticks` reports from each of `worlds`, failing after `limit`.
fn collect(
    rx: &mpsc::Receiver<TickEvent>,
    worlds: usize,
    ticks: u64,
    limit: Duration,
) -> BTreeMap<WorldId, Vec<u64>> {
    let deadline = Instant::now() + limit;
    let mut hashes: BTreeMap<WorldId, Vec<u64>> = BTreeMap::new();
    while hashes.len() < worlds || hashes.values().any(|h| (h.len() as u64) < ticks) {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = rx
            .recv_timeout(left)
            .expect("worlds stopped ticking before the expected number of ticks");
        let seen = hashes.entry(event.world).or_default();
        assert_eq!(
            event.report.tick,
            seen.len() as u64 + 1,
            "ticks of {} arrive in order, none skipped",
            event.world
        );
        seen.push(event.report.hash);
    }
    hashes
}

/// Runs 4 seeded worlds on `workers` threads and returns their first 300 tick hashes, by seed.
fn run_on(workers: usize) -> Vec<Vec<u64>> {
    let (scheduler, _events) = Scheduler::start(SchedulerConfig {
        workers,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(scheduler.worker_count(), workers);
    let (tx, rx) = mpsc::channel();
    let mut ids = Vec::new();
    for seed in 1..=4 {
        let mut options = driven(seed * 10, 25);
        options.observer = Some(tx.clone());
        ids.push(
            scheduler
                .add_world(SimWorld::new(spec(seed, 1000)).unwrap(), options)
                .unwrap()
                .id,
        );
    }
    let mut hashes = collect(&rx, 4, 300, Duration::from_secs(60));
    scheduler.shutdown();
    ids.iter()
        .map(|id| hashes.remove(id).unwrap()[..300].to_vec())
        .collect()
}

#[test]
fn hashes_are_identical_on_one_and_two_worker_threads() {
    let one = run_on(1);
    let two = run_on(2);
    assert_eq!(one, two);
    // And the worlds really differ from each other (the test is not vacuous).
    assert_ne!(one[0], one[1]);
}

#[derive(Resource)]
struct PanicAt(u64);

fn panic_at(tick: Res<Tick>, at: Res<PanicAt>) {
    if tick.0 == at.0 {
        panic!("boom at tick {}", tick.0);
    }
}

#[test]
fn a_panicking_world_ends_alone_and_the_others_keep_ticking() {
    let (scheduler, events) = Scheduler::start(SchedulerConfig {
        workers: 1,
        ..Default::default()
    })
    .unwrap();
    let (tx, rx) = mpsc::channel();
    let bad = SimWorld::build(spec(1, 200), |app| {
        app.insert_resource(PanicAt(20))
            .add_systems(TickSchedule, panic_at.in_set(TickSystems::Combat));
    })
    .unwrap();
    let (ended_tx, ended) = mpsc::channel();
    let bad = scheduler
        .add_world(
            bad,
            WorldOptions {
                at_end: Some(Box::new(move |sim: &mut SimWorld| {
                    let _ = ended_tx.send((sim.tick(), ThisWorld::of(sim)));
                })),
                ..WorldOptions::default()
            },
        )
        .unwrap();
    let good = scheduler
        .add_world(
            SimWorld::new(spec(2, 200)).unwrap(),
            WorldOptions {
                observer: Some(tx),
                ..driven(2, 5)
            },
        )
        .unwrap();

    match events
        .recv_timeout(Duration::from_secs(20))
        .expect("the panic is reported")
    {
        NodeEvent::WorldEnded {
            world,
            last_tick,
            reason: EndReason::Panicked(message),
        } => {
            assert_eq!(world, bad.id);
            assert_eq!(last_tick, 20, "the tick number in which it panicked");
            assert!(message.contains("boom at tick 20"), "{message}");
        }
        other => panic!("unexpected event {other:?}"),
    }
    let (last_tick, this) = ended.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        last_tick, 20,
        "a panicked world's end hook still runs, on the world as it panicked"
    );
    assert_eq!(this, Some(bad.id), "and knows which world it was");
    // The good world, on the same worker thread, keeps going well past that.
    let ticks = collect(&rx, 1, 100, Duration::from_secs(20));
    assert!(ticks[&good.id].len() >= 100);
    let stats = scheduler.stats();
    assert_eq!(stats.panicked_worlds.load(Ordering::Relaxed), 1);
    assert_eq!(stats.worlds.load(Ordering::Relaxed), 1);
    let ended = bad.send(tessera_sim::InputEnvelope::new(
        tessera_sim::PlayerId(1),
        tessera_sim::Input::Leave,
    ));
    assert_eq!(ended, Err(tessera::scheduler::InboxError::Ended));
    scheduler.shutdown();
}

#[test]
fn worlds_are_created_and_ended_while_the_node_runs() {
    let (scheduler, events) = Scheduler::start(SchedulerConfig {
        workers: 2,
        ..Default::default()
    })
    .unwrap();
    let (tx, rx) = mpsc::channel();
    let first = scheduler
        .add_world(
            SimWorld::new(spec(1, 500)).unwrap(),
            WorldOptions {
                observer: Some(tx.clone()),
                ..Default::default()
            },
        )
        .unwrap();
    collect(&rx, 1, 20, Duration::from_secs(20));
    let second = scheduler
        .add_world(
            SimWorld::new(spec(2, 500)).unwrap(),
            WorldOptions {
                observer: Some(tx),
                ..Default::default()
            },
        )
        .unwrap();
    scheduler.end_world(first.id);
    match events.recv_timeout(Duration::from_secs(10)).unwrap() {
        NodeEvent::WorldEnded {
            world,
            reason: EndReason::Requested,
            ..
        } => assert_eq!(world, first.id),
        other => panic!("unexpected event {other:?}"),
    }
    // Drain what the first world sent before it ended; from now on only the second ticks.
    while rx.try_recv().is_ok() {}
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut second_ticks = 0;
    while second_ticks < 50 {
        let event = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap();
        assert_eq!(event.world, second.id, "an ended world must not tick");
        second_ticks += 1;
    }
    assert_eq!(scheduler.stats().worlds.load(Ordering::Relaxed), 1);
    scheduler.shutdown();
    match events.recv_timeout(Duration::from_secs(10)).unwrap() {
        NodeEvent::WorldEnded {
            world,
            reason: EndReason::Shutdown,
            ..
        } => assert_eq!(world, second.id),
        other => panic!("unexpected event {other:?}"),
    }
}

#[derive(Resource)]
struct StallAt(u64, Duration);

fn stall_at(tick: Res<Tick>, stall: Res<StallAt>) {
    if tick.0 == stall.0 {
        std::thread::sleep(stall.1);
    }
}

#[test]
fn a_stalled_world_catches_up_and_counts_overruns_without_skipping_ticks() {
    let (scheduler, _events) = Scheduler::start(SchedulerConfig {
        workers: 1,
        ..Default::default()
    })
    .unwrap();
    let (tx, rx) = mpsc::channel();
    // 100 Hz; tick 5 stalls for 200 ms, i.e. 20 periods.
    let world = SimWorld::build(spec(1, 100), |app| {
        app.insert_resource(StallAt(5, Duration::from_millis(200)))
            .add_systems(TickSchedule, stall_at.in_set(TickSystems::Metrics));
    })
    .unwrap();
    scheduler
        .add_world(
            world,
            WorldOptions {
                observer: Some(tx),
                ..Default::default()
            },
        )
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut overruns = 0;
    for expected in 1..=60u64 {
        let event = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap();
        assert_eq!(event.report.tick, expected, "no tick is skipped");
        overruns += u64::from(event.overrun);
    }
    // Ticks 6.. started one or more periods late while catching up.
    assert!(
        overruns >= 10,
        "only {overruns} overruns counted after a 20-period stall"
    );
    let stats = scheduler.stats();
    assert!(stats.overruns.load(Ordering::Relaxed) >= overruns);
    assert_eq!(
        stats.dropped_ticks.load(Ordering::Relaxed),
        0,
        "a 200 ms stall is within the catch-up window"
    );
    scheduler.shutdown();
}

#[test]
fn a_world_takes_new_tables_between_two_ticks_and_keeps_them() {
    use tessera_tables::{LoadOptions, TablesHandle, generate};
    let dir = tempfile::tempdir().unwrap();
    generate::write_default_game(dir.path()).unwrap();
    let tables = TablesHandle::load(dir.path(), LoadOptions::default()).unwrap();
    let before = tables.current().hash();

    let (scheduler, _events) = Scheduler::start(SchedulerConfig {
        workers: 1,
        ..Default::default()
    })
    .unwrap();
    let (tx, rx) = mpsc::channel();
    let options = WorldOptions {
        observer: Some(tx),
        tables: Some(tables.clone()),
        ..driven(1, 5)
    };
    scheduler
        .add_world(SimWorld::new(spec(1, 500)).unwrap(), options)
        .unwrap();
    let next = || rx.recv_timeout(Duration::from_secs(20)).unwrap();
    for _ in 0..20 {
        assert_eq!(next().tables, before);
    }

    for (file, mut sheets) in generate::default_game() {
        if let Some(npcs) = sheets.iter_mut().find(|s| s.name == "npcs") {
            npcs.rows[1][2] = generate::CellValue::Number(450.0);
        }
        generate::write_workbook(&dir.path().join(file), &sheets).unwrap();
    }
    let after = tables.reload().unwrap();
    assert_ne!(after, before);

    // Every tick runs wholly on one version: old ones, then the new one from
    // some tick on, and never back.
    let mut switched_at = None;
    let mut seen = 0;
    while seen < 20 {
        let event = next();
        match (switched_at, event.tables) {
            (None, hash) if hash == before => {}
            (None, hash) if hash == after => switched_at = Some(event.report.tick),
            (Some(_), hash) if hash == after => seen += 1,
            (_, hash) => panic!(
                "tick {} ran with unexpected tables {hash}",
                event.report.tick
            ),
        }
    }
    assert!(switched_at.unwrap() > 20);
    scheduler.shutdown();
}

#[test]
fn a_flooded_inbox_refuses_input_instead_of_growing_and_ticks_stay_bounded() {
    let config = SchedulerConfig {
        workers: 1,
        inbox_capacity: 64,
        ..Default::default()
    };
    let (scheduler, _events) = Scheduler::start(config).unwrap();
    let (tx, rx) = mpsc::channel();
    // 1 Hz: the flood arrives long before the world's next tick drains it.
    let handle = scheduler
        .add_world(
            SimWorld::new(spec(1, 1)).unwrap(),
            WorldOptions {
                observer: Some(tx),
                ..Default::default()
            },
        )
        .unwrap();
    rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let flood = tessera_sim::InputEnvelope::new(
        tessera_sim::PlayerId(1),
        tessera_sim::Input::Move {
            seq: 1,
            dir_x: 1,
            dir_y: 0,
        },
    );
    let results: Vec<_> = (0..1_000).map(|_| handle.send(flood.clone())).collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 64);
    assert!(
        results
            .iter()
            .skip(64)
            .all(|r| *r == Err(tessera::scheduler::InboxError::Full))
    );
    scheduler.shutdown();
}

#[test]
fn the_end_hook_runs_once_when_a_world_is_ended_or_the_node_shuts_down() {
    let (scheduler, events) = Scheduler::start(SchedulerConfig {
        workers: 1,
        ..Default::default()
    })
    .unwrap();
    let (ended_tx, ended) = mpsc::channel();
    let (tx, rx) = mpsc::channel();
    let mut worlds = Vec::new();
    for seed in [1, 2] {
        let ended_tx = ended_tx.clone();
        let handle = scheduler
            .add_world(
                SimWorld::new(spec(seed, 500)).unwrap(),
                WorldOptions {
                    observer: Some(tx.clone()),
                    at_end: Some(Box::new(move |sim: &mut SimWorld| {
                        let _ = ended_tx.send((seed, sim.tick()));
                    })),
                    ..Default::default()
                },
            )
            .unwrap();
        worlds.push(handle);
    }
    collect(&rx, 2, 10, Duration::from_secs(20));
    scheduler.end_world(worlds[0].id);
    let NodeEvent::WorldEnded {
        world,
        last_tick: ended_at,
        ..
    } = events.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(world, worlds[0].id);
    assert_eq!(
        ended.recv_timeout(Duration::from_secs(10)).unwrap(),
        (1, ended_at),
        "an ended world's hook sees its last tick"
    );
    scheduler.shutdown();
    let (seed, _) = ended.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(seed, 2, "shutdown ends the other world through its hook");
    assert!(
        ended.recv_timeout(Duration::from_millis(200)).is_err(),
        "once per world"
    );
}

#[derive(Resource)]
struct Stall(Duration);

fn stall_every_tick(stall: Res<Stall>) {
    std::thread::sleep(stall.0);
}

/// Placing by number put every other new world beside a world that takes
/// 40 % of its worker; placing by measured cost puts them on the other.
#[test]
fn new_worlds_go_to_the_worker_whose_worlds_cost_least() {
    let (scheduler, _events) = Scheduler::start(SchedulerConfig {
        workers: 2,
        ..Default::default()
    })
    .unwrap();
    // 20 Hz, 20 ms a tick: 400 ms of every second.
    let heavy = SimWorld::build(spec(1, 20), |app| {
        app.insert_resource(Stall(Duration::from_millis(20)))
            .add_systems(TickSchedule, stall_every_tick.in_set(TickSystems::Metrics));
    })
    .unwrap();
    let (tx, rx) = mpsc::channel();
    let heavy = scheduler
        .add_world(
            heavy,
            WorldOptions {
                observer: Some(tx),
                ..Default::default()
            },
        )
        .unwrap();
    let light = |seed| SimWorld::build(spec(seed, 20), |_| {}).unwrap();
    let first = scheduler
        .add_world(light(2), WorldOptions::default())
        .unwrap();
    assert_ne!(first.worker, heavy.worker, "an empty worker first");
    // Two seconds of the heavy world's ticks: both workers have measured.
    for _ in 0..40 {
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
    }
    let placed: Vec<usize> = (3..6)
        .map(|seed| {
            scheduler
                .add_world(light(seed), WorldOptions::default())
                .unwrap()
                .worker
        })
        .collect();
    assert_eq!(placed, [first.worker; 3], "beside the cheap world");
    scheduler.shutdown();
}

/// A world can be built on the worker that ticks it (rooms are asked for on
/// the net thread, which must not spend a world's set-up on them); a build
/// that fails ends that world alone, reported like a panic, and the worker
/// goes on with the others.
#[test]
fn a_world_is_built_on_its_worker_and_a_failed_build_ends_it_alone() {
    let (scheduler, events) = Scheduler::start(SchedulerConfig {
        workers: 1,
        ..Default::default()
    })
    .unwrap();
    let (built_on_tx, built_on) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let (tx, rx) = mpsc::channel();
    let good = scheduler
        .add_world_built(
            &spec(1, 200),
            Box::new(move || {
                let _ = built_on_tx.send(std::thread::current().name().map(str::to_string));
                let _ = released.recv();
                SimWorld::new(spec(1, 200)).map_err(|e| e.to_string())
            }),
            WorldOptions {
                observer: Some(tx),
                ..driven(1, 5)
            },
        )
        .unwrap();
    let bad = scheduler
        .add_world_built(
            &spec(2, 200),
            Box::new(|| Err("no such map".to_string())),
            WorldOptions::default(),
        )
        .unwrap();
    let panicking = scheduler
        .add_world_built(
            &spec(3, 200),
            Box::new(|| panic!("plugin set-up failed")),
            WorldOptions::default(),
        )
        .unwrap();
    let name = built_on.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_ne!(name, std::thread::current().name().map(str::to_string));
    assert!(
        name.as_deref()
            .is_some_and(|n| n.starts_with("tessera-worker")),
        "built on {name:?}"
    );
    // Counted while still being built: a node reporting ready counts the
    // zones it started.
    let stats = scheduler.stats();
    assert_eq!(stats.worlds.load(Ordering::Relaxed), 3);
    release.send(()).unwrap();
    let mut failed = BTreeMap::new();
    while failed.len() < 2 {
        match events
            .recv_timeout(Duration::from_secs(10))
            .expect("both failed builds are reported")
        {
            NodeEvent::WorldEnded {
                world,
                last_tick: 0,
                reason: EndReason::Panicked(message),
            } => {
                failed.insert(world, message);
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert_eq!(failed[&bad.id], "no such map");
    assert!(failed[&panicking.id].contains("plugin set-up failed"));
    let ticks = collect(&rx, 1, 100, Duration::from_secs(20));
    assert!(ticks[&good.id].len() >= 100, "the built world ticks");
    assert_eq!(stats.worlds.load(Ordering::Relaxed), 1);
    assert_eq!(stats.panicked_worlds.load(Ordering::Relaxed), 2);
    scheduler.shutdown();
}

/// Fault injection: `crash_world` makes that world panic in its next tick,
/// reported and contained exactly like a bug in a system (its end hook
/// runs, the panic is counted), while a world on the same worker goes on
/// and a world that is not running is left alone.
#[test]
fn a_world_crashed_on_purpose_ends_like_a_panicking_one_and_alone() {
    let (scheduler, events) = Scheduler::start(SchedulerConfig {
        workers: 1,
        ..Default::default()
    })
    .unwrap();
    let (ended_tx, ended) = mpsc::channel();
    let doomed = scheduler
        .add_world(
            SimWorld::new(spec(1, 200)).unwrap(),
            WorldOptions {
                at_end: Some(Box::new(move |sim: &mut SimWorld| {
                    let _ = ended_tx.send(sim.tick());
                })),
                ..driven(1, 3)
            },
        )
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let good = scheduler
        .add_world(
            SimWorld::new(spec(2, 200)).unwrap(),
            WorldOptions {
                observer: Some(tx),
                ..driven(2, 3)
            },
        )
        .unwrap();
    // No such world: said so, and nothing happens to anyone.
    let wait = Duration::from_secs(10);
    assert!(matches!(
        scheduler.crash_world(WorldId(9_999), wait),
        Err(CrashError::NoSuchWorld(WorldId(9_999)))
    ));
    let _ = collect(&rx, 1, 20, Duration::from_secs(20));
    assert_eq!(scheduler.stats().panicked_worlds.load(Ordering::Relaxed), 0);

    scheduler
        .crash_world(doomed.id, wait)
        .expect("the crash is armed");
    match events
        .recv_timeout(Duration::from_secs(20))
        .expect("the crash is reported")
    {
        NodeEvent::WorldEnded {
            world,
            reason: EndReason::Panicked(message),
            ..
        } => {
            assert_eq!(world, doomed.id);
            assert_eq!(message, tessera::scheduler::INJECTED_CRASH);
        }
        other => panic!("unexpected event {other:?}"),
    }
    assert!(
        ended.recv_timeout(Duration::from_secs(10)).is_ok(),
        "its end hook ran"
    );
    assert!(
        matches!(
            scheduler.crash_world(doomed.id, wait),
            Err(CrashError::NoSuchWorld(_))
        ),
        "an ended world is not running"
    );
    let after = (0..50)
        .map(|_| {
            rx.recv_timeout(Duration::from_secs(20))
                .expect("the other world ticks on")
        })
        .filter(|event| event.world == good.id)
        .count();
    assert_eq!(after, 50);
    let stats = scheduler.stats();
    assert_eq!(stats.panicked_worlds.load(Ordering::Relaxed), 1);
    assert_eq!(stats.worlds.load(Ordering::Relaxed), 1);
    scheduler.shutdown();
}

#[derive(Resource)]
struct SlowTicks(Arc<AtomicU64>);

fn slow_tick(slow: Res<SlowTicks>) {
    std::thread::sleep(Duration::from_millis(slow.0.load(Ordering::Relaxed)));
}

#[derive(Resource)]
struct PaceSeen(mpsc::Sender<u32>);

fn report_pace(pace: Res<SnapshotPace>, seen: Res<PaceSeen>) {
    let _ = seen.0.send(pace.every);
}

/// One worker thinning to every 4th tick at most, judging half-second
/// windows.
fn pacing_scheduler() -> Scheduler {
    Scheduler::start(SchedulerConfig {
        workers: 1,
        max_snapshot_every: 4,
        pace_window: Duration::from_millis(500),
        ..Default::default()
    })
    .unwrap()
    .0
}

/// A 10 Hz replicating world whose ticks each take `slow` ms, and the
/// snapshot pace each of its ticks ran at.
fn paced_world(seed: u64, slow: Arc<AtomicU64>) -> (SimWorld, mpsc::Receiver<u32>) {
    let (tx, seen) = mpsc::channel();
    let world = SimWorld::build(spec(seed, 10), |app| {
        app.insert_resource(SlowTicks(slow))
            .insert_resource(PaceSeen(tx))
            .init_resource::<SnapshotPace>()
            .add_systems(
                TickSchedule,
                (slow_tick, report_pace)
                    .chain()
                    .in_set(TickSystems::Metrics),
            );
    })
    .unwrap();
    (world, seen)
}

/// Reads paces `seen` until one is `wanted`, returning those read.
fn pace_until(seen: &mpsc::Receiver<u32>, wanted: u32) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut paces = Vec::new();
    while paces.last() != Some(&wanted) {
        let left = deadline.saturating_duration_since(Instant::now());
        let pace = seen
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no pace of {wanted} in 30 s: {paces:?}"));
        paces.push(pace);
    }
    paces
}

/// A worker whose ticks keep starting late thins its replicating worlds'
/// snapshots, two ticks apart then four (its limit), and counts the
/// thinned ticks; once ticks are on time again it comes back to every
/// tick, a step at a time (a stray relapse on a busy machine is allowed).
#[test]
fn an_overloaded_worker_thins_snapshots_and_comes_back_when_ticks_are_on_time() {
    let scheduler = pacing_scheduler();
    // 10 Hz, and 150 ms a tick: every tick starts later than the last
    // (late by half a period or more is 50 ms: far above a busy machine's
    // jitter).
    let slow = Arc::new(AtomicU64::new(150));
    let (world, seen) = paced_world(1, slow.clone());
    scheduler.add_world(world, WorldOptions::default()).unwrap();

    let shed = pace_until(&seen, 4);
    assert_eq!(shed[0], 1, "full rate at first");
    assert!(
        shed.windows(2).all(|w| w[1] == w[0] || w[1] == 2 * w[0]),
        "one step at a time: {shed:?}"
    );
    assert!(shed.contains(&2), "{shed:?}");
    // It stays at its limit while the overload lasts.
    for _ in 0..15 {
        assert_eq!(seen.recv_timeout(Duration::from_secs(10)).unwrap(), 4);
    }
    assert!(scheduler.stats().thinned_ticks.load(Ordering::Relaxed) >= 15);
    // Placement sees the pace the worlds run at (it ranks this worker by it).
    assert_eq!(scheduler.snapshot_intervals(), [4]);

    slow.store(0, Ordering::Relaxed);
    let back = pace_until(&seen, 1);
    let first_change = back.iter().find(|every| **every != 4);
    assert_eq!(first_change, Some(&2), "a step at a time: {back:?}");
    assert_eq!(scheduler.snapshot_intervals(), [1]);
    scheduler.shutdown();
}

/// A worker left without worlds while thinning starts its next world at
/// every tick: with nothing ticking, nothing would ever calm it down.
#[test]
fn a_worker_that_empties_while_thinning_starts_its_next_world_at_full_pace() {
    let scheduler = pacing_scheduler();
    let paced = |seed, stall_ms| paced_world(seed, Arc::new(AtomicU64::new(stall_ms)));
    let (slow, seen) = paced(1, 150);
    let slow = scheduler.add_world(slow, WorldOptions::default()).unwrap();
    pace_until(&seen, 4);
    scheduler.end_world(slow.id);
    // Placement reads the fresh pace (else new worlds would go to busier
    // workers first).
    let deadline = Instant::now() + Duration::from_secs(10);
    while scheduler.snapshot_intervals() != [1] {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            scheduler.snapshot_intervals()
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    let (next, seen) = paced(2, 0);
    scheduler.add_world(next, WorldOptions::default()).unwrap();
    let first = seen.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(first, 1, "the next world's first tick is at full pace");
    scheduler.shutdown();
}
