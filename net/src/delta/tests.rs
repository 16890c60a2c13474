//! Deltas end to end: the encoder's snapshots, decoded and rebuilt as a
//! client does, against what the server recorded.

use super::baselines::Known;
use super::*;
use proptest::prelude::*;
use prost::Message;

fn seen(x: i32, y: i32, hp: u32) -> Seen {
    Seen {
        kind: 1,
        x_dm: x,
        y_dm: y,
        hp,
        max_hp: 100,
        dead: hp == 0,
        player: 0,
    }
}

/// What a client gets: the encoder's fields, decoded as a snapshot.
fn encode(
    server: &mut Baselines,
    id: u32,
    states: &[(u64, Seen)],
    max_entities: usize,
    budget: usize,
) -> proto::Snapshot {
    let mut out = Vec::new();
    server.encode(id, &candidates(states), max_entities, budget, &mut out);
    let snapshot =
        proto::Snapshot::decode(&out[..]).expect("the encoder writes a snapshot's fields");
    proto::Snapshot { id, ..snapshot }
}

fn candidates(states: &[(u64, Seen)]) -> Vec<Candidate> {
    states
        .iter()
        .map(|(id, seen)| Candidate {
            id: *id,
            seen: *seen,
            distance_sq: i64::from(seen.x_dm)
                .pow(2)
                .saturating_add(i64::from(seen.y_dm).pow(2)),
        })
        .collect()
}

/// An entity's kind and owner in the property test (they never change for
/// an id), from its id counted from 1.
fn identity(id: u64) -> (i32, u64) {
    ((id % 2) as i32, id % 3 * 1000)
}

/// The server's acknowledged view is the client's view of that snapshot.
fn assert_acked_view_matches(server: &Baselines, client: &[(u32, View)]) {
    if let Some((acked, view)) = server.acked_view() {
        let rebuilt = client.iter().find(|(id, _)| *id == acked).map(|(_, view)| {
            view.iter()
                .map(|(id, seen)| (*id, Known::from(seen)))
                .collect::<Vec<_>>()
        });
        assert_eq!(Some(view), rebuilt.as_ref(), "snapshot {acked}");
    }
}

/// A position in the property test: mostly near the origin (moves of a
/// byte), sometimes farther (longer moves), sometimes anywhere (moves that
/// wrap around the integers).
fn coordinate() -> impl Strategy<Value = i32> {
    prop_oneof![6 => -50i32..50, 2 => -50_000i32..50_000, 1 => any::<i32>()]
}

proptest! {
    /// Whatever the world does, whichever snapshots the client gets, and
    /// whenever and in whichever order its acknowledgements arrive, the
    /// client can rebuild every snapshot it gets, and the view the server
    /// deltas against is exactly the client's view of that snapshot.
    #[test]
    fn a_client_always_rebuilds_the_view_the_server_recorded(
        steps in proptest::collection::vec(
            (
                proptest::collection::vec((0u64..12, coordinate(), coordinate(), 0u32..3), 0..12),
                any::<bool>(),
                // Ticks until the acknowledgement arrives (4 and up: never).
                0usize..6,
                // Where the viewer stands.
                (coordinate(), coordinate()),
            ),
            1..40,
        ),
        // Up to room for every member, when the encoder skips its sort.
        budget in 40usize..700,
        // Ids too large to pack into a sort key take the other sort.
        high_ids in any::<bool>(),
    ) {
        let offset = if high_ids { 1u64 << 60 } else { 0 };
        let mut server = Baselines::default();
        let mut client: Vec<(u32, View)> = Vec::new();
        let mut in_flight: Vec<(usize, u32)> = Vec::new();
        for (index, (entities, delivered, ack_delay, (vx, vy))) in steps.into_iter().enumerate() {
            let id = index as u32 + 1;
            in_flight.sort_by_key(|(due, _)| *due);
            while in_flight.first().is_some_and(|(due, _)| *due <= index) {
                let (_, acked) = in_flight.remove(0);
                server.ack(acked);
                assert_acked_view_matches(&server, &client);
            }
            let mut states: Vec<(u64, Seen)> = vec![(offset, seen(vx, vy, 100))];
            for (e, x, y, hp) in entities {
                let id = offset + e + 1;
                if !states.iter().any(|(s, _)| *s == id) {
                    let (kind, player) = identity(id - offset);
                    states.push((id, Seen { kind, player, ..seen(x, y, hp) }));
                }
            }
            let snapshot = encode(&mut server, id, &states, 8, budget);
            if !delivered {
                continue;
            }
            let base = client.iter().find(|(s, _)| *s == snapshot.baseline).map(|(_, v)| v);
            let view = apply(base, &snapshot).expect("the client has every baseline it acked");
            let recorded = server.view(id).map(|v| v.to_vec());
            let rebuilt: Vec<_> = view.iter().map(|(e, seen)| (*e, Known::from(seen))).collect();
            prop_assert_eq!(recorded, Some(rebuilt), "snapshot {}", id);
            for (e, seen) in &view {
                // Kind and owner are not kept by the server: an entity
                // entering a view brings them from its current state.
                let expected = if *e == offset { (1, 0) } else { identity(e - offset) };
                prop_assert_eq!((seen.kind, seen.player), expected, "entity {}", e);
            }
            client.push((id, view));
            if ack_delay < 4 {
                in_flight.push((index + ack_delay, id));
            }
        }
    }
}

/// Two snapshots encoded against the same baseline, acknowledged in turn:
/// the second one's own view becomes the baseline (not the first one's
/// with the second's changes on top), and the first one's acknowledgement
/// arriving again, late, changes nothing.
#[test]
fn a_later_acknowledgement_makes_its_own_view_the_baseline() {
    let mut server = Baselines::default();
    let mut client: Vec<(u32, View)> = Vec::new();
    let mut receive = |server: &mut Baselines, id: u32, states: &[(u64, Seen)]| {
        let snapshot = encode(server, id, states, 16, 1000);
        let base = client
            .iter()
            .find(|(s, _)| *s == snapshot.baseline)
            .map(|(_, v)| v);
        let view = apply(base, &snapshot).expect("a baseline the client has");
        client.push((id, view));
        (snapshot.baseline, client.clone())
    };
    let (baseline, _) = receive(
        &mut server,
        1,
        &[
            (0, seen(0, 0, 100)),
            (3, seen(5, 5, 100)),
            (4, seen(9, 9, 100)),
        ],
    );
    assert_eq!(baseline, 0);
    server.ack(1);
    // Both against snapshot 1. The first hurts entity 3; by the second it
    // has healed (so that one does not mention it), entity 2 came in and
    // entity 4 left.
    let (baseline, _) = receive(
        &mut server,
        2,
        &[
            (0, seen(1, 0, 100)),
            (3, seen(5, 5, 90)),
            (4, seen(9, 9, 100)),
        ],
    );
    assert_eq!(baseline, 1);
    let (baseline, client) = receive(
        &mut server,
        3,
        &[
            (0, seen(2, 0, 100)),
            (2, seen(7, 0, 100)),
            (3, seen(5, 5, 100)),
        ],
    );
    assert_eq!(baseline, 1);
    server.ack(2);
    assert_eq!(server.acked_view().map(|(id, _)| id), Some(2));
    assert_acked_view_matches(&server, &client);
    server.ack(3);
    assert_eq!(server.acked_view().map(|(id, _)| id), Some(3));
    assert_acked_view_matches(&server, &client);
    server.ack(2);
    assert_eq!(server.acked_view().map(|(id, _)| id), Some(3));
    let mut out = Vec::new();
    server.encode(
        4,
        &candidates(&[(0, seen(2, 0, 100)), (3, seen(5, 5, 100))]),
        16,
        1000,
        &mut out,
    );
    let snapshot = proto::Snapshot::decode(&out[..]).expect("a snapshot");
    assert_eq!(snapshot.baseline, 3);
    assert_eq!(snapshot.removed, vec![2]);
    assert!(snapshot.changed.is_empty(), "{:?}", snapshot.changed);
    assert!(snapshot.moves.is_empty(), "{:?}", snapshot.moves);
}

/// A client that stops acknowledging gets a full snapshot once its last
/// acknowledged one is no longer remembered, and deltas again after it
/// acknowledges that.
#[test]
fn a_client_silent_too_long_gets_a_full_snapshot() {
    let mut server = Baselines::default();
    let states = [(0, seen(0, 0, 100)), (1, seen(3, 0, 100))];
    encode(&mut server, 1, &states, 16, 1000);
    server.ack(1);
    let kept = BASELINES_KEPT as u32;
    // Snapshot 1 is among the last `kept` sent up to snapshot `kept + 1`.
    for id in 2..=kept + 1 {
        assert_eq!(encode(&mut server, id, &states, 16, 1000).baseline, 1);
    }
    let full = encode(&mut server, kept + 2, &states, 16, 1000);
    assert_eq!(full.baseline, 0);
    assert_eq!(full.entities.len(), 2);
    // An acknowledgement of a forgotten snapshot changes nothing.
    server.ack(2);
    assert_eq!(encode(&mut server, kept + 3, &states, 16, 1000).baseline, 0);
    server.ack(kept + 2);
    let delta = encode(&mut server, kept + 4, &states, 16, 1000);
    assert_eq!(delta.baseline, kept + 2);
    assert!(delta.entities.is_empty() && delta.changed.is_empty() && delta.moves.is_empty());
}

/// Once a client acknowledged a snapshot, older views are forgotten (no
/// acknowledgement can make them a baseline again), later ones kept; a
/// late acknowledgement of a forgotten one changes nothing.
#[test]
fn views_older_than_the_acknowledged_one_are_forgotten() {
    let mut server = Baselines::default();
    let states = [(0, seen(0, 0, 100)), (1, seen(3, 0, 100))];
    for id in 1..=5 {
        encode(&mut server, id, &states, 16, 1000);
    }
    server.ack(2);
    server.ack(4);
    for id in 1..=3 {
        assert!(server.view(id).is_none(), "view {id} kept");
    }
    assert!(server.view(4).is_some() && server.view(5).is_some());
    server.ack(3);
    assert_eq!(server.acked_view().map(|(id, _)| id), Some(4));
    assert_eq!(encode(&mut server, 6, &states, 16, 1000).baseline, 4);
}

#[test]
fn deltas_stay_in_budget_and_a_waiting_change_gets_through() {
    let mut server = Baselines::default();
    let far: Vec<(u64, Seen)> = (1..=40).map(|i| (i, seen(i as i32 * 10, 0, 100))).collect();
    let mut states = vec![(0, seen(0, 0, 100))];
    states.extend(far.iter().copied());
    let mut sent_to_40 = false;
    let mut view: Option<View> = None;
    for tick in 1..=60u32 {
        // Everything moves a little every tick.
        for (_, s) in states.iter_mut() {
            s.y_dm += 1;
        }
        let snapshot = encode(&mut server, tick, &states, 64, 120);
        // What the encoder wrote (the helper adds the id), framed as it
        // goes out: within the budget, to the byte.
        let written = proto::Snapshot {
            id: 0,
            ..snapshot.clone()
        }
        .encoded_len();
        let framed = 1 + prost::encoding::encoded_len_varint(written as u64) + written;
        assert!(framed <= 120, "{framed} bytes");
        server.ack(tick);
        let updated = updated(view.as_ref(), &snapshot);
        sent_to_40 |= updated.contains(&40);
        if tick > 1 {
            assert!(updated.contains(&0), "the viewer is updated every tick");
        }
        view = Some(apply(view.as_ref(), &snapshot).expect("the last view is the baseline"));
    }
    assert!(sent_to_40, "the farthest entity got its turn");
}

#[test]
fn an_unknown_baseline_or_entity_is_an_error() {
    let snapshot = proto::Snapshot {
        baseline: 9,
        ..Default::default()
    };
    assert_eq!(apply(None, &snapshot), Err(DeltaError::UnknownBaseline(9)));
    let snapshot = proto::Snapshot {
        baseline: 9,
        changed: vec![proto::EntityDelta {
            id: 5,
            dx_dm: 1,
            ..Default::default()
        }],
        ..Default::default()
    };
    assert_eq!(
        apply(Some(&View::new()), &snapshot),
        Err(DeltaError::UnknownEntity(5))
    );
}

/// An entry that takes the very last bytes of the budget is still sent,
/// and one byte less makes it wait: skipping the members nothing of which
/// can fit any more never skips one that would have.
#[test]
fn the_last_bytes_of_the_budget_still_carry_the_smallest_entry() {
    let cost = |state: &proto::EntityState| {
        let len = state.encoded_len();
        1 + prost::encoding::encoded_len_varint(len as u64) + len
    };
    let viewer = seen(0, 0, 100);
    let near = seen(1_000, -700, 55);
    // The smallest entry there is: an entity whose every field but its id
    // is the default, so its entry costs exactly the least any could.
    let bare = Seen {
        kind: 0,
        x_dm: 0,
        y_dm: 0,
        hp: 0,
        max_hp: 0,
        dead: false,
        player: 0,
    };
    let members = [
        Candidate {
            id: 1,
            seen: viewer,
            distance_sq: 0,
        },
        Candidate {
            id: 2,
            seen: near,
            distance_sq: 100,
        },
        Candidate {
            id: 300,
            seen: bare,
            distance_sq: 1_000_000,
        },
    ];
    // Framing a message under 128 bytes takes a key and a one-byte length.
    let exact = 2 + cost(&viewer.to_state(1)) + cost(&near.to_state(2)) + cost(&bare.to_state(300));
    assert!(exact < 128);
    for (budget, sent) in [(exact, true), (exact - 1, false)] {
        let mut out = Vec::new();
        Baselines::default().encode(1, &members, 16, budget, &mut out);
        let snapshot = proto::Snapshot::decode(&out[..]).expect("a snapshot");
        let ids: Vec<u64> = snapshot.entities.iter().map(|e| e.id).collect();
        let expected: &[u64] = if sent { &[1, 2, 300] } else { &[1, 2] };
        assert_eq!(ids, expected, "budget {budget}");
    }
}

/// An entity that only moved is sent as a move, a few bytes naming its
/// place in the baseline; one whose health changed too is sent as a change.
#[test]
fn an_entity_that_only_moved_is_sent_as_a_move() {
    let mut server = Baselines::default();
    let first = [
        (0, seen(0, 0, 100)),
        (300, seen(10, 10, 100)),
        (400, seen(20, 20, 100)),
    ];
    let full = encode(&mut server, 1, &first, 16, 1000);
    let base = apply(None, &full).expect("a full snapshot");
    server.ack(1);
    let second = [
        (0, seen(0, 0, 100)),
        (300, seen(13, 8, 100)),
        (400, seen(21, 20, 90)),
    ];
    let delta = encode(&mut server, 2, &second, 16, 1000);
    assert_eq!(delta.baseline, 1);
    // Entity 300 is second in the baseline (sorted by id): +3, -2.
    assert_eq!(delta.moves, vec![1, zigzag(3), zigzag(-2)]);
    assert_eq!(delta.changed.len(), 1);
    assert_eq!((delta.changed[0].id, delta.changed[0].hp), (400, 90));
    assert_eq!(updated(Some(&base), &delta), vec![400, 300]);
    let view = apply(Some(&base), &delta).expect("a delta on the acked view");
    assert_eq!(lookup(&view, 300), Some(&seen(13, 8, 100)));
    assert_eq!(lookup(&view, 400), Some(&seen(21, 20, 90)));
    // Key, length and three one-byte numbers.
    assert_eq!(
        prost::encoding::uint32::encoded_len_packed(9, &delta.moves),
        5
    );
}

/// A move that takes the very last bytes of the budget is still sent, and
/// one byte less makes it wait.
#[test]
fn the_last_bytes_of_the_budget_still_carry_the_smallest_move() {
    let mut server = Baselines::default();
    let first = [
        (0, seen(0, 0, 100)),
        (1, seen(1, 1, 100)),
        (2, seen(2, 2, 100)),
    ];
    encode(&mut server, 1, &first, 16, 1000);
    server.ack(1);
    let moved = [
        (0, seen(0, 0, 100)),
        (1, seen(1, 2, 100)),
        (2, seen(2, 3, 100)),
    ];
    // The framing (a key and a length prefix sized for the budget) and the
    // baseline field, then the packed moves: key and a length prefix sized
    // for the budget, three bytes per move.
    let exact = |budget: usize| {
        let prefix = |n: usize| prost::encoding::encoded_len_varint(n as u64);
        1 + prefix(budget) + 2 + 1 + prefix(budget + 15) + 6
    };
    let budget = exact(100);
    assert_eq!(exact(budget), budget);
    for (budget, moves) in [(budget, 2), (budget - 1, 1)] {
        let mut probe = Baselines::default();
        encode(&mut probe, 1, &first, 16, 1000);
        probe.ack(1);
        let delta = encode(&mut probe, 2, &moved, 16, budget);
        assert_eq!(delta.moves.len(), moves * 3, "budget {budget}");
    }
}

#[test]
fn a_move_outside_the_baseline_or_not_a_triple_is_an_error() {
    let base: View = vec![(7, seen(0, 0, 100))];
    let snapshot = proto::Snapshot {
        baseline: 1,
        moves: vec![1, 2, 2],
        ..Default::default()
    };
    assert_eq!(
        apply(Some(&base), &snapshot),
        Err(DeltaError::UnknownIndex(1))
    );
    let snapshot = proto::Snapshot {
        baseline: 1,
        moves: vec![0, 2],
        ..Default::default()
    };
    assert_eq!(
        apply(Some(&base), &snapshot),
        Err(DeltaError::PartialMove(2))
    );
    let snapshot = proto::Snapshot {
        baseline: 1,
        moves: vec![0, zigzag(-4), zigzag(5)],
        ..Default::default()
    };
    let view = apply(Some(&base), &snapshot).expect("a move inside the baseline");
    assert_eq!(lookup(&view, 7), Some(&seen(-4, 5, 100)));
}

proptest! {
    /// Moves are zigzag-encoded as protobuf's sint32 is, and decode back.
    #[test]
    fn zigzag_is_sint32s_mapping(value in any::<i32>()) {
        prop_assert_eq!(unzigzag(zigzag(value)), value);
        let mut sint = Vec::new();
        prost::encoding::sint32::encode(1, &value, &mut sint);
        let mut ours = Vec::new();
        prost::encoding::uint32::encode(1, &zigzag(value), &mut ours);
        prop_assert_eq!(sint, ours);
    }
}

/// The snapshot's fields its caller wrote first (id, tick, avatar,
/// sequence) count against the budget as they are: the whole framed
/// message stays within it, and a longer header leaves less for entries.
#[test]
fn the_fields_written_first_count_against_the_budget() {
    let states: Vec<(u64, Seen)> = (0..30).map(|i| (i, seen(i as i32, 0, 100))).collect();
    let budget = 200;
    let mut written = Vec::new();
    for header in [0usize, 20, 40] {
        let mut out = vec![0u8; header];
        Baselines::default().encode(1, &candidates(&states), 64, budget, &mut out);
        // The key and a length prefix of `ServerMessage.snapshot` frame it.
        let framed = 1 + prost::encoding::encoded_len_varint(out.len() as u64) + out.len();
        assert!(framed <= budget, "{header} header bytes: {framed} framed");
        assert!(
            framed + 25 > budget,
            "{header} header bytes: only {framed} of {budget} used"
        );
        written.push(out.len() - header);
    }
    assert!(written.windows(2).all(|w| w[0] > w[1]), "{written:?}");
}
