//! `tessera replay FILE`: a recording replays identically, a corrupted input
//! is reported at its tick, and what the node records can be replayed.

mod support;

use std::{path::Path, process::Command, sync::mpsc, time::Duration};

use tessera::{
    replays::ReplayStore,
    scheduler::{Scheduler, SchedulerConfig, WorldOptions},
};
use tessera_sim::{
    Input, SimWorld, WorldSpec,
    driver::RandomInputs,
    replay::{ReplayHeader, ReplayReader, ReplayWriter, TickRecord},
};

fn tessera(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .output()
        .expect("run tessera");
    (
        out.status.code().expect("exited normally"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn record_random(path: &Path, ticks: u64) {
    let mut world = SimWorld::new(WorldSpec {
        kind: "cli".into(),
        seed: 4242,
        ..WorldSpec::default()
    })
    .unwrap();
    let mut driver = RandomInputs::new(17, 30);
    world.start_recording();
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut writer = ReplayWriter::new(file, &ReplayHeader::for_world(&world)).unwrap();
    for _ in 0..ticks {
        world.push_envelopes(driver.inputs_for(world.tick() + 1));
        world.step();
        for record in world.take_recorded() {
            writer.append(&record).unwrap();
        }
    }
    writer.finish().unwrap();
}

fn read(path: &Path) -> (ReplayHeader, Vec<TickRecord>) {
    let reader = ReplayReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let header = reader.header().clone();
    (header, reader.map(Result::unwrap).collect())
}

#[test]
fn a_ten_thousand_tick_recording_replays_with_identical_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("random.replay");
    record_random(&path, 10_000);
    let (code, stdout, stderr) = tessera(&["replay", path.to_str().unwrap()]);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("replayed 10000 ticks in"), "{stdout}");
    assert!(stdout.contains("ticks/s"), "{stdout}");
    assert!(stdout.contains("all 10000 tick hashes match"), "{stdout}");
}

#[test]
fn a_corrupted_input_is_named_at_its_tick() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("random.replay");
    record_random(&path, 2_000);
    let (header, mut records) = read(&path);
    let (index, slot) = records
        .iter()
        .enumerate()
        .skip(1_234)
        .find_map(|(i, r)| {
            r.inputs
                .iter()
                .position(|e| matches!(e.input, Input::Move { .. }))
                .map(|j| (i, j))
        })
        .unwrap();
    let Input::Move { seq, dir_x, dir_y } = records[index].inputs[slot].input else {
        unreachable!()
    };
    records[index].inputs[slot].input = Input::Move {
        seq: seq + 500,
        dir_x: -dir_x,
        dir_y: dir_y.wrapping_add(50),
    };
    let tick = records[index].tick;
    let mut writer = ReplayWriter::new(std::fs::File::create(&path).unwrap(), &header).unwrap();
    records.iter().for_each(|r| writer.append(r).unwrap());
    writer.finish().unwrap();

    let (code, stdout, _) = tessera(&["replay", path.to_str().unwrap()]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains(&format!("DIVERGED: tick {tick} diverged")),
        "expected tick {tick}: {stdout}"
    );
    assert!(
        stdout.contains(&format!("replayed {tick} ticks")),
        "{stdout}"
    );
}

#[test]
fn unreadable_files_exit_2_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.replay");
    std::fs::write(&path, b"definitely not msgpack").unwrap();
    let (code, _, stderr) = tessera(&["replay", path.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("replay header is not valid"), "{stderr}");
    let (code, _, stderr) = tessera(&["replay", dir.path().join("missing").to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot open"), "{stderr}");
}

#[test]
fn what_the_node_records_replays_identically() {
    let dir = tempfile::tempdir().unwrap();
    let store = ReplayStore::start(dir.path()).unwrap();
    let (scheduler, _events) = Scheduler::start(SchedulerConfig {
        workers: 2,
        ..Default::default()
    })
    .unwrap();
    let (tx, rx) = mpsc::channel();
    let mut driver = RandomInputs::new(3, 20);
    let options = WorldOptions {
        driver: Some(Box::new(move |tick| driver.inputs_for(tick))),
        observer: Some(tx),
        record: Some(store.sink()),
        tables: None,
        after_tick: None,
        at_end: None,
    };
    let spec = WorldSpec {
        kind: "recorded".into(),
        seed: 8,
        tick_hz: 1000,
        ..WorldSpec::default()
    };
    let handle = scheduler
        .add_world(SimWorld::new(spec).unwrap(), options)
        .unwrap();
    // Inputs from outside the driver (as the network will send) are recorded too.
    handle
        .send(tessera_sim::InputEnvelope::new(
            tessera_sim::PlayerId(999),
            Input::Join {
                class: "warrior".into(),
            },
        ))
        .unwrap();
    let mut last = 0;
    while last < 500 {
        last = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap()
            .report
            .tick;
    }
    scheduler.shutdown();
    store.finish();

    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let (_, records) = read(&files[0]);
    assert!(records.len() >= 500);
    assert!(
        records
            .iter()
            .flat_map(|r| &r.inputs)
            .any(|e| e.player == tessera_sim::PlayerId(999))
    );
    let (code, stdout, stderr) = tessera(&["replay", files[0].to_str().unwrap()]);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.contains(&format!("all {} tick hashes match", records.len())),
        "{stdout}"
    );
}

/// Rooms are worlds too, and a node with `--record` records them: an arena
/// room the matchmaker filled (its sides preset by the host, not by an
/// input) and a frame-sync room (its inputs from the relay) replay tick for
/// tick.
#[test]
fn the_rooms_a_node_records_replay_identically() {
    use tessera_bot::loadtest::{LoadConfig, Scenario, run};
    let tables = tempfile::tempdir().unwrap();
    support::write_tables_with_room_size(tables.path(), "arena", 2);
    let replays = tempfile::tempdir().unwrap();
    let tables_dir = tables.path().to_str().unwrap();
    let mut node = support::start(&[
        "--tables",
        tables_dir,
        "--record",
        replays.path().to_str().unwrap(),
    ]);
    let config = |scenario, seconds| LoadConfig {
        server: node.http.clone(),
        bots: 2,
        ramp: 100.0,
        scenario,
        duration: Duration::from_secs(seconds),
        seed: 5,
        threads: 1,
        tables: None,
    };
    let arena = run(&config(Scenario::Arena, 12), |_, _| {}).unwrap();
    assert_eq!(arena.connected, 2, "{:?}", arena.failed);
    let lockstep = LoadConfig {
        tables: Some(std::sync::Arc::new(
            tessera_tables::load_dir(tables.path()).unwrap(),
        )),
        ..config(Scenario::Lockstep, 4)
    };
    let lockstep = run(&lockstep, |_, _| {}).unwrap();
    assert!(lockstep.frames > 0, "{lockstep:?}");
    support::signal(&node, "TERM");
    assert_eq!(support::wait_exit(&mut node), 0);

    let files: Vec<_> = std::fs::read_dir(replays.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let named = |kind: &str| -> Vec<&std::path::PathBuf> {
        files
            .iter()
            .filter(|f| {
                f.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("{kind}-")))
            })
            .collect()
    };
    let rooms = [named("arena"), named("duel_lockstep")];
    assert!(rooms.iter().all(|r| !r.is_empty()), "{files:?}");
    for file in rooms.iter().flatten() {
        let (header, records) = read(file);
        let inputs: usize = records.iter().map(|r| r.inputs.len()).sum();
        assert!(
            inputs > 0,
            "{} recorded the players' inputs",
            file.display()
        );
        if header.spec.kind == "arena" {
            assert_eq!(header.room_roster.len(), 2, "the matched sides");
        }
        let (code, stdout, stderr) =
            tessera(&["replay", file.to_str().unwrap(), "--tables", tables_dir]);
        assert_eq!(code, 0, "{}: {stdout}\n{stderr}", file.display());
        assert!(
            stdout.contains(&format!("all {} tick hashes match", records.len())),
            "{stdout}"
        );
    }
}
