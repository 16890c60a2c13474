//! The relay's tests: rooms stepped frame by frame with scripted members.

use super::*;
use crate::codec::decode_server;
use tessera_tables::generate::default_tables;

/// A lockstep room as the node runs it: a relay and the world it drives.
struct Room {
    tx: mpsc::SyncSender<RelayMessage>,
    relay: FrameRelay,
    sim: SimWorld,
}

fn room(settings: RelaySettings) -> Room {
    let (tx, rx) = mpsc::sync_channel(64);
    let tables = Arc::new(default_tables());
    let zone = tables.zones.get("duel_lockstep").unwrap();
    let spec = WorldSpec {
        kind: "duel_lockstep".into(),
        seed: 1,
        tick_hz: zone.tick_hz as u16,
        width: zone.width.mm as i32,
        height: zone.height.mm as i32,
        capacity: zone.capacity,
    };
    let mut sim = SimWorld::new(spec.clone()).unwrap();
    sim.set_tables(tables.clone());
    let relay = FrameRelay::new(
        spec,
        tables.hash().to_string(),
        rx,
        settings,
        Arc::default(),
    );
    Room { tx, relay, sim }
}

impl Room {
    fn send(&self, message: RelayMessage) {
        self.tx.send(message).unwrap();
    }

    fn join(&self, player: u64) {
        self.send(RelayMessage::Join {
            player: PlayerId(player),
            class: "warrior".into(),
        });
    }

    /// Builds, simulates and relays the next frame: its inputs, and
    /// what the members were sent.
    fn frame(&mut self) -> (Vec<InputEnvelope>, Outgoing) {
        let inputs = self.relay.before_tick(self.sim.tick() + 1);
        self.sim.push_envelopes(inputs.clone());
        self.sim.step();
        self.sim.drain_events();
        (inputs, self.relay.after_tick(&self.sim))
    }
}

fn sent_to(out: &Outgoing, player: u64) -> Vec<Body> {
    out.iter()
        .filter(|(p, ..)| *p == PlayerId(player))
        .filter_map(|(_, _, bytes)| decode_server(bytes).ok()?.body)
        .collect()
}

fn catch_up(out: &Outgoing, player: u64) -> Option<(usize, History)> {
    sent_to(out, player)
        .into_iter()
        .find_map(|body| match body {
            Body::CatchUp(c) => Some((c.history.len(), History::from_bytes(&c.history).ok()?)),
            _ => None,
        })
}

fn command(frame: u64, dir: (i16, i16)) -> FrameCommand {
    FrameCommand {
        frame,
        dir,
        skill: None,
    }
}

#[test]
fn a_late_command_repeats_the_last_move_and_a_room_everyone_left_is_over() {
    let mut room = room(RelaySettings::default());
    assert!(!room.relay.is_over(), "a new room waits for players");
    room.join(1);
    let (_, out) = room.frame();
    assert!(
        out.iter()
            .any(|(p, c, _)| *p == PlayerId(1) && *c == ORDERED),
        "the joiner gets its welcome and a catch-up"
    );
    let (_, history) = catch_up(&out, 1).expect("a catch-up");
    assert_eq!(
        (history.checkpoint, history.bundles.len()),
        (None, 1),
        "no checkpoint yet: the bundles from frame 1"
    );
    room.send(RelayMessage::Uplink {
        player: PlayerId(1),
        uplink: Uplink {
            commands: vec![command(2, (1, 0))],
            ack: 1,
            hash: None,
        },
    });
    room.frame();
    // Nothing arrived for frame 3: the last move repeats.
    let (inputs, _) = room.frame();
    assert_eq!(
        inputs.iter().map(|e| e.input.clone()).collect::<Vec<_>>(),
        vec![tessera_sim::Input::Move {
            seq: 3,
            dir_x: 1,
            dir_y: 0
        }]
    );
    room.send(RelayMessage::Leave {
        player: PlayerId(1),
    });
    room.frame();
    assert!(room.relay.is_over(), "everyone who came has left");
}

#[test]
fn leaving_and_coming_back_before_the_next_frame_is_a_new_member() {
    let mut room = room(RelaySettings::default());
    room.join(1);
    room.join(2);
    for _ in 0..3 {
        room.frame();
    }
    room.send(RelayMessage::Leave {
        player: PlayerId(2),
    });
    room.join(2);
    let (inputs, out) = room.frame();
    // The leave and then the join reach the sim, in that order.
    let presence: Vec<&tessera_sim::Input> = inputs
        .iter()
        .filter(|e| e.player == PlayerId(2))
        .map(|e| &e.input)
        .filter(|i| {
            matches!(
                i,
                tessera_sim::Input::Leave | tessera_sim::Input::Join { .. }
            )
        })
        .collect();
    assert!(
        matches!(
            presence.as_slice(),
            [tessera_sim::Input::Leave, tessera_sim::Input::Join { .. }]
        ),
        "{presence:?}"
    );
    assert_eq!(room.relay.members(), 2);
    assert!(!room.relay.is_over());
    // Welcomed again and caught up, like any newcomer.
    let sent = sent_to(&out, 2);
    assert!(
        sent.iter().any(|b| matches!(b, Body::Welcome(_))),
        "{sent:?}"
    );
    for _ in 0..3 {
        room.frame();
    }
    assert!(
        tessera_sim::players::avatar_id(room.sim.world(), PlayerId(2)).is_some(),
        "back in the room's world"
    );
}

#[test]
fn a_room_is_over_at_its_longest_length() {
    let mut room = room(RelaySettings {
        max_frames: 5,
        ..RelaySettings::default()
    });
    room.join(1);
    for _ in 1..=4 {
        room.frame();
        assert!(!room.relay.is_over());
    }
    room.relay.before_tick(5);
    assert!(room.relay.is_over());
}

#[test]
fn a_wrong_hash_from_before_the_resync_is_not_another_desync() {
    let mut room = room(RelaySettings::default());
    room.join(1);
    let uplink = |ack: u64, hash: Option<(u64, u64)>| RelayMessage::Uplink {
        player: PlayerId(1),
        uplink: Uplink {
            commands: Vec::new(),
            ack,
            hash,
        },
    };
    let desyncs = |room: &Room| room.relay.stats.desyncs.load(Ordering::Relaxed);
    // Past the joining catch-up's half gap, so a resync goes out at once.
    for _ in 0..90 {
        let frame = room.sim.tick();
        room.send(uplink(frame, None));
        room.frame();
    }
    room.send(uplink(90, Some((90, 1))));
    let (_, out) = room.frame();
    assert_eq!(desyncs(&room), 1);
    assert!(catch_up(&out, 1).is_some(), "resynced at once");
    // Sent before the catch-up arrived: about state it replaced.
    room.send(uplink(90, Some((90, 1))));
    room.frame();
    assert_eq!(desyncs(&room), 1);
    for _ in 0..30 {
        let frame = room.sim.tick();
        room.send(uplink(frame, None));
        room.frame();
    }
    room.send(uplink(room.sim.tick(), Some((120, 1))));
    room.frame();
    assert_eq!(desyncs(&room), 2, "a wrong hash after the catch-up counts");
}

#[test]
fn a_catch_up_after_many_frames_is_the_newest_checkpoint_and_the_bundles_since() {
    let settings = RelaySettings::default();
    let every = settings.checkpoint_every;
    let mut room = room(settings);
    room.join(1);
    room.join(2);
    // Player 1 acknowledges everything, player 2 lags a few frames.
    let lag = [0, 3];
    for frame in 1..2 * every + 100 {
        if frame > 1 {
            for (player, lag) in [1, 2].into_iter().zip(lag) {
                let dir = ((frame / 40 % 3) as i16 - 1, (frame / 70 % 3) as i16 - 1);
                room.send(RelayMessage::Uplink {
                    player: PlayerId(player),
                    uplink: Uplink {
                        commands: (frame..frame + 3).map(|f| command(f, dir)).collect(),
                        ack: (frame - 1).saturating_sub(lag),
                        hash: None,
                    },
                });
            }
        }
        let (_, out) = room.frame();
        assert!(room.relay.bundles_kept() as u64 <= every + 1);
        if frame == 2 * every + 1 {
            // Bundles from before the checkpoint still stream to a member a little behind.
            let first = sent_to(&out, 2).into_iter().find_map(|body| match body {
                Body::Frames(frames) => frames.bundles.first().map(|b| b.frame),
                _ => None,
            });
            assert_eq!(first, Some(2 * every - 2));
        }
    }
    room.join(3);
    let (_, out) = room.frame();
    let frame = room.sim.tick();
    let (size, history) = catch_up(&out, 3).expect("the joiner's catch-up");
    let checkpoint = history.checkpoint.clone().expect("a checkpoint");
    assert_eq!(checkpoint.tick(), 2 * every);
    assert_eq!(history.start(), 2 * every);
    assert!(history.is_contiguous());
    assert_eq!(history.bundles.len() as u64, frame - 2 * every);
    assert!(history.bundles.len() < every as usize);

    // A client built from it is where the server is.
    let mut client = SimWorld::from_checkpoint(room.sim.tables().clone(), &checkpoint).unwrap();
    for bundle in &history.bundles {
        for (player, input) in bundle.inputs() {
            client.push_input(player, input);
        }
        client.step();
    }
    assert_eq!(
        (client.tick(), client.last_hash()),
        (room.sim.tick(), room.sim.last_hash())
    );
    let checkpoint_bytes = checkpoint.to_bytes().unwrap().len();
    eprintln!(
        "frame {frame}: catch-up {size} B (checkpoint {checkpoint_bytes} B, {} bundles)",
        history.bundles.len()
    );
}
