//! Frame sync over real UDP: four clients in a lockstep room, each running
//! the same `sim` from the server's bundles, with 10 % of the UDP datagrams
//! in each direction dropped on purpose (bundles, uplinks, acknowledgements
//! and the slices of reliable messages alike); one of them joins late and
//! catches up from the room's newest checkpoint and the bundles since; a
//! client whose reported hash is wrong is told and resynced the same way.

mod support;

use std::{sync::Arc, time::Duration};

use support::*;
use tessera_bot::{
    lockstep::Lockstep,
    session::{Session, login},
};
use tessera_net::{
    proto::{self, client_message::Body},
    transport::Loss,
};
use tessera_sim::PlayerId;

const FRAMES: u64 = 3_000;
// After the room's first checkpoint (every 600 frames): the late joiner starts
// from a checkpoint and the bundles since.
const LATE_JOIN_AT: u64 = 700;
const LOSS_PER_MILLE: u32 = 100;

struct Client {
    session: Session,
    lockstep: Lockstep,
    sent_for: u64,
}

impl Client {
    fn join(node: &Node, tables: &Arc<tessera_tables::Tables>, name: &str, seed: u64) -> Self {
        let login = login(&node.http, name).expect("login");
        let mut session = Session::connect(&login, Duration::from_secs(20)).expect("connect");
        session.simulate_loss(Loss::new(LOSS_PER_MILLE, seed));
        session.send(Body::Join(proto::JoinWorld {
            class: "warrior".into(),
            world: "duel_lockstep".into(),
        }));
        Self {
            session,
            lockstep: Lockstep::new(tables.clone(), seed, 0),
            sent_for: u64::MAX,
        }
    }

    /// Reads what arrived, advances the local sim, and sends this frame's
    /// uplink once per applied frame.
    fn pump(&mut self) {
        self.session.pump().expect("pump");
        if let Some(welcome) = &self.session.welcome {
            self.lockstep.welcome(welcome);
        }
        for body in std::mem::take(&mut self.session.frame_messages) {
            self.lockstep.receive(body).expect("frame message");
        }
        let frame = self.lockstep.frame();
        if frame != self.sent_for
            && let Some(uplink) = self.lockstep.uplink(PlayerId(self.session.player))
        {
            self.session.send(Body::Frames(uplink.encode()));
        }
        self.sent_for = frame;
        assert!(
            self.session.kicked.is_none(),
            "kicked: {:?}",
            self.session.kicked
        );
        assert!(
            self.session.disconnected.is_none(),
            "{:?}",
            self.session.disconnected
        );
    }
}

fn pump_until(clients: &mut [Client], what: &str, mut done: impl FnMut(&[Client]) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !done(clients) {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}; frames {:?}",
            clients
                .iter()
                .map(|c| c.lockstep.frame())
                .collect::<Vec<_>>()
        );
        for client in clients.iter_mut() {
            client.pump();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn four_clients_stay_in_lockstep_through_loss_and_a_late_join() {
    let dir = tempfile::tempdir().unwrap();
    // The lockstep room at 100 frames per second: 3,000 frames take 30 s.
    write_tables_with_zones(
        dir.path(),
        &[("duel_lockstep", ZONE_TICK_HZ, 100i64.into())],
    );
    let tables = Arc::new(tessera_tables::load_dir(dir.path()).unwrap());
    let node = start(&["--tables", dir.path().to_str().unwrap()]);

    let mut clients: Vec<Client> = (0..3)
        .map(|i| Client::join(&node, &tables, &format!("lockstep-{i}"), 11 + i))
        .collect();
    pump_until(&mut clients, "the first frames", |c| {
        c.iter().all(|c| c.lockstep.frame() >= LATE_JOIN_AT)
    });
    let welcome = clients[0].session.welcome.clone().expect("welcomed");
    let room = welcome.frame_room.expect("a frame room welcome");
    assert_eq!(
        (welcome.world.as_str(), welcome.tick_hz, room.capacity),
        ("duel_lockstep", 100, 4)
    );

    clients.push(Client::join(&node, &tables, "lockstep-late", 99));
    pump_until(&mut clients, "3,000 frames", |c| {
        c.iter().all(|c| c.lockstep.frame() >= FRAMES)
    });

    let late = &clients[3].lockstep;
    assert!(
        late.catch_ups >= 1,
        "the late joiner started from a catch-up"
    );
    let sim = late.sim().unwrap();
    let avatars = sim
        .world()
        .resource::<tessera_sim::players::PlayerIndex>()
        .len();
    assert_eq!(avatars, 4, "the late joiner's sim has all four players");

    // Every client computed the same hash at every checked frame, equal to
    // the server's wherever a bundle carried it.
    let reference = clients[0].lockstep.hashes.clone();
    let checked: Vec<u64> = reference.keys().copied().filter(|f| *f <= FRAMES).collect();
    // A check every `hash_every` frames from the reference's first frame
    // (on a slow machine its first catch-up can come a few checks into the
    // room), none missing unless a second catch-up skipped it ahead.
    let hash_every = tessera_net::relay::RelaySettings::default().hash_every;
    assert!(checked.len() >= 50, "hash checks: {}", checked.len());
    assert!(
        checked
            .last()
            .is_some_and(|last| *last > FRAMES - hash_every),
        "checks up to the last frame: {checked:?}"
    );
    if clients[0].lockstep.catch_ups <= 1 {
        assert!(
            checked
                .windows(2)
                .all(|pair| pair[1] - pair[0] == hash_every),
            "a check frame is missing: {checked:?}"
        );
    }
    for client in &clients {
        let l = &client.lockstep;
        assert_eq!(
            l.desyncs, 0,
            "a bundle's server hash differed from this client's"
        );
        assert!(l.server_desyncs.is_empty(), "{:?}", l.server_desyncs);
        // From the first frame it simulated (a late joiner starts at a
        // checkpoint), every checked frame. Every member starts from one
        // catch-up; a client that fell too far behind on a slow machine gets
        // another and skips to its checkpoint, so only a client (or the
        // reference) with more than one may miss frames.
        let first = *l.hashes.keys().next().expect("hashes");
        let skipped_ahead = l.catch_ups > 1 || clients[0].lockstep.catch_ups > 1;
        let mut compared = 0;
        for frame in checked.iter().filter(|f| **f >= first) {
            match (l.hashes.get(frame), reference.get(frame)) {
                (Some(ours), Some(theirs)) => {
                    assert_eq!(ours, theirs, "frame {frame}");
                    compared += 1;
                }
                _ => assert!(
                    skipped_ahead,
                    "frame {frame} checked by one client only, without a catch-up"
                ),
            }
        }
        assert!(compared >= 50, "frames compared: {compared}");
        let loss = client.session.loss();
        assert!(
            loss.dropped_in > 100 && loss.dropped_out > 100,
            "loss was simulated: {loss:?}"
        );
    }
    let dropped: u64 = clients
        .iter()
        .map(|c| c.session.loss().dropped_in + c.session.loss().dropped_out)
        .sum();
    let (_, metrics) = get(&node.http, "/metrics");
    assert!(
        metrics.contains("tessera_lockstep_desyncs_total 0"),
        "{metrics}"
    );
    let distinct: std::collections::BTreeSet<u64> = reference.values().copied().collect();
    assert!(
        distinct.len() > checked.len() / 2,
        "the state changes from check to check"
    );
    eprintln!(
        "dropped {dropped} datagrams on purpose; {} checked frames, {} distinct hashes; {}",
        checked.len(),
        distinct.len(),
        metrics
            .lines()
            .filter(|l| l.starts_with("tessera_lockstep"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // A wrong hash report: the server says so and resyncs that client.
    let before = clients[1].lockstep.catch_ups;
    clients[1].lockstep.corrupt_reported_hash();
    let target = clients[1].lockstep.frame() + 200;
    pump_until(&mut clients, "the resync", |c| {
        !c[1].lockstep.server_desyncs.is_empty() && c[1].lockstep.catch_ups > before
    });
    // Thousands of frames in, a catch-up is the newest checkpoint and fewer
    // than a checkpoint interval of bundles, not the room's whole history.
    let every = tessera_net::relay::RelaySettings::default().checkpoint_every;
    let resync = clients[1]
        .lockstep
        .last_catch_up
        .expect("the resync's catch-up");
    assert!(
        resync.checkpoint.is_some_and(|at| at >= FRAMES - every) && (resync.bundles as u64) < every,
        "{resync:?}"
    );
    let late_catch_up = clients[3].lockstep.last_catch_up.expect("a catch-up");
    assert!(
        late_catch_up.checkpoint.is_some_and(|at| at >= every),
        "the late joiner started from a checkpoint: {late_catch_up:?}"
    );
    eprintln!(
        "late join's catch-up {:?}; the resync's {resync:?}",
        clients[3].lockstep.last_catch_up
    );
    pump_until(&mut clients, "200 more frames", |c| {
        c.iter().all(|c| c.lockstep.frame() >= target)
    });
    let reference = clients[0].lockstep.hashes.clone();
    for client in &clients {
        assert_eq!(client.lockstep.desyncs, 0);
        let last = reference
            .keys()
            .copied()
            .filter(|f| *f <= target)
            .max()
            .unwrap();
        assert_eq!(
            client.lockstep.hashes.get(&last),
            reference.get(&last),
            "frame {last}"
        );
    }
    let (_, metrics) = get(&node.http, "/metrics");
    assert!(
        metrics.contains("tessera_lockstep_desyncs_total 1"),
        "{metrics}"
    );
}
