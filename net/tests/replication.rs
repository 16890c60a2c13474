//! Snapshots in a crowd: a client that acknowledges what it gets rebuilds
//! its view from deltas, every snapshot stays within the byte budget, the
//! viewer is current every tick, and every entity in view catches up.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::Arc,
};

use tessera_net::{
    codec::decode_server,
    delta::{View, apply},
    proto::{Snapshot, server_message::Body},
    replication::{AckBoard, Outgoing, ReplicationPlugin, SnapshotPace},
    transport::packing::MAX_DIRECT,
};
use tessera_sim::{
    Input, PlayerId, SimWorld, WorldSpec, combat::components::Health, movement::Position,
    players::PlayerIndex,
};
use tessera_tables::generate::default_tables;

/// A 200 m starter world on the default tables, replicating with `plugin`.
fn world(seed: u64, plugin: ReplicationPlugin) -> SimWorld {
    let spec = WorldSpec {
        kind: "starter".into(),
        seed,
        tick_hz: 20,
        width: 200_000,
        height: 200_000,
        capacity: 100,
    };
    let mut world = SimWorld::build(spec, |app| {
        app.add_plugins(plugin);
    })
    .unwrap();
    world.set_tables(Arc::new(default_tables()));
    world
}

/// Players 1 to 41 in a world replicating views of 24 in 100 bytes a tick
/// (far less than 40 moving players need), all within 15 m of (100, 100) m,
/// away from the NPCs.
fn crowd(seed: u64, acks: &AckBoard) -> SimWorld {
    crowd_of(
        seed,
        41,
        ReplicationPlugin {
            radius_mm: 60_000,
            max_entities: 24,
            bytes_per_sec: 2_000,
            acks: acks.clone(),
            ..ReplicationPlugin::default()
        },
    )
}

/// Players 1 to `players` in a world replicating with `plugin`, all within
/// 15 m of (100, 100) m, away from the NPCs.
fn crowd_of(seed: u64, players: u64, plugin: ReplicationPlugin) -> SimWorld {
    let mut world = world(seed, plugin);
    for player in 1..=players {
        world.push_input(
            PlayerId(player),
            Input::Join {
                class: "warrior".into(),
            },
        );
    }
    world.step();
    for player in 1..=players {
        let entity = world
            .world()
            .resource::<PlayerIndex>()
            .get(PlayerId(player))
            .unwrap();
        let offset = |k: u64| ((player * k) % 30) as i32 * 1_000 - 15_000;
        *world.world_mut().get_mut::<Position>(entity).unwrap() = Position {
            x: 100_000 + offset(7),
            y: 100_000 + offset(13),
        };
    }
    world
}

#[test]
fn a_crowded_view_stays_in_budget_and_every_entity_catches_up() {
    let acks = AckBoard::default();
    // The viewer and 40 other players, all walking all the time.
    let mut world = crowd(3, &acks);
    let me = world
        .world()
        .resource::<PlayerIndex>()
        .get(PlayerId(1))
        .unwrap();

    let mut views: VecDeque<(u32, View)> = VecDeque::new();
    let mut last_update: BTreeMap<u64, u64> = BTreeMap::new();
    let mut longest_wait = 0;
    for tick in 0..200u64 {
        // Everyone walks back and forth, each on their own axis.
        for player in 1..=41u64 {
            let dir = if (tick + player) % 40 < 20 { 1 } else { -1 };
            let (dir_x, dir_y) = if player % 2 == 0 { (dir, 0) } else { (0, dir) };
            world.push_input(
                PlayerId(player),
                Input::Move {
                    seq: tick as u32 + 1,
                    dir_x,
                    dir_y,
                },
            );
        }
        world.step();
        let (bytes, snapshot) = snapshot_of_1(&mut world);
        // The message as it goes out, framing and all.
        assert!(bytes <= 100, "over budget: {bytes} bytes");
        let base = views
            .iter()
            .find(|(id, _)| *id == snapshot.baseline)
            .map(|(_, v)| v);
        let view = apply(base, &snapshot).expect("every baseline was kept");
        assert!(view.len() <= 24, "{} in view", view.len());
        let now = *world.world().get::<Position>(me).unwrap();
        let mine =
            *tessera_net::delta::lookup(&view, snapshot.avatar).expect("the avatar is in view");
        assert_eq!(
            (mine.x_dm, mine.y_dm),
            (now.x.div_euclid(100), now.y.div_euclid(100)),
            "the avatar is current every tick, whatever the budget"
        );
        for id in tessera_net::delta::updated(base, &snapshot) {
            if let Some(previous) = last_update.insert(id, tick) {
                longest_wait = longest_wait.max(tick - previous);
            }
        }
        acks.ack(PlayerId(1), snapshot.id);
        views.push_back((snapshot.id, view));
    }
    let (_, view) = views.back().unwrap();
    // The nearest set changes as everyone walks; newcomers wait for room in
    // the budget, so the view runs a little under its limit.
    assert!(view.len() >= 18, "the view holds {} of 24", view.len());
    assert!(
        view.iter().all(|(id, _)| last_update.contains_key(id)),
        "every entity in view arrived"
    );
    assert!(longest_wait > 1, "the budget really was tight");
    assert!(longest_wait <= 40, "an entity waited {longest_wait} ticks");
}

/// Viewers who leave, come back or join again in the middle of the sorted
/// order each keep decoding their own deltas: a viewer is never paired with
/// another's baselines, one who leaves or joins again starts over with a
/// full snapshot, and acknowledgements from a player who is gone change
/// nothing for anyone.
#[test]
fn viewers_who_come_and_go_keep_their_own_baselines() {
    let acks = AckBoard::default();
    let mut world = world(
        5,
        ReplicationPlugin {
            radius_mm: 60_000,
            acks: acks.clone(),
            ..ReplicationPlugin::default()
        },
    );
    let join = |world: &mut SimWorld, player: u64| {
        world.push_input(
            PlayerId(player),
            Input::Join {
                class: "warrior".into(),
            },
        );
    };
    for player in 1..=6 {
        join(&mut world, player);
    }
    let mut clients: BTreeMap<u64, VecDeque<(u32, View)>> = BTreeMap::new();
    let mut present: Vec<u64> = (1..=6).collect();
    for tick in 0..40u64 {
        let mut gone = Vec::new();
        match tick {
            // Player 3, in the middle of the order, leaves...
            8 => gone.push(3),
            // ...and comes back; player 5 joins again while still in.
            16 => {
                join(&mut world, 3);
                join(&mut world, 5);
                present.push(3);
            }
            // One leaves as another arrives: as many viewers as before,
            // not the same ones.
            24 => {
                gone.push(2);
                join(&mut world, 7);
                present.push(7);
            }
            _ => {}
        }
        for &player in &gone {
            world.push_input(PlayerId(player), Input::Leave);
            present.retain(|p| *p != player);
            // The leaver's client is gone, but its last acks still arrive.
            clients.remove(&player);
            acks.ack(PlayerId(player), 1);
        }
        present.sort_unstable();
        for &player in &present {
            let dir = if (tick + player) % 10 < 5 { 1 } else { -1 };
            world.push_input(
                PlayerId(player),
                Input::Move {
                    seq: tick as u32 + 1,
                    dir_x: dir,
                    dir_y: 0,
                },
            );
        }
        world.step();
        world.drain_events();
        let outgoing = std::mem::take(&mut world.world_mut().resource_mut::<Outgoing>().0);
        let mut snapshots: BTreeMap<u64, _> = BTreeMap::new();
        for (player, _, bytes) in &outgoing {
            if let Some(Body::Snapshot(snapshot)) = decode_server(bytes).unwrap().body {
                snapshots.insert(player.0, snapshot);
            }
        }
        assert_eq!(
            snapshots.keys().copied().collect::<Vec<_>>(),
            present,
            "tick {tick}: a snapshot for each player in the world"
        );
        for (player, snapshot) in snapshots {
            let views = clients.entry(player).or_default();
            let first = views.is_empty();
            let starts_over = first || (tick == 16 && player == 5);
            if starts_over {
                assert_eq!(
                    snapshot.baseline, 0,
                    "tick {tick}: player {player} starts over"
                );
            } else if tick > 2 {
                assert_ne!(
                    snapshot.baseline, 0,
                    "tick {tick}: player {player} gets deltas"
                );
            }
            if tick == 16 && player == 5 {
                views.clear();
            }
            let view = rebuilt_with_avatar_current(&world, views, tick, player, &snapshot);
            acks.ack(PlayerId(player), snapshot.id);
            views.push_back((snapshot.id, view));
        }
    }
}

/// `player`'s view after `snapshot`, rebuilt from the views its client
/// kept; its own avatar is in it, where the world has it now.
fn rebuilt_with_avatar_current(
    world: &SimWorld,
    views: &VecDeque<(u32, View)>,
    tick: u64,
    player: u64,
    snapshot: &tessera_net::proto::Snapshot,
) -> View {
    let base = views
        .iter()
        .find(|(id, _)| *id == snapshot.baseline)
        .map(|(_, v)| v);
    let view =
        apply(base, snapshot).unwrap_or_else(|e| panic!("tick {tick}: player {player}: {e}"));
    let avatar = world
        .world()
        .resource::<PlayerIndex>()
        .get(PlayerId(player))
        .unwrap();
    let now = *world.world().get::<Position>(avatar).unwrap();
    let mine = tessera_net::delta::lookup(&view, snapshot.avatar)
        .unwrap_or_else(|| panic!("tick {tick}: player {player}'s avatar is in view"));
    assert_eq!(mine.player, player, "tick {tick}: its own avatar");
    assert_eq!(
        (mine.x_dm, mine.y_dm),
        (now.x.div_euclid(100), now.y.div_euclid(100)),
        "tick {tick}: player {player}'s avatar is current"
    );
    view
}

/// Changes made after movement, as a room's start (a teleport) or a
/// respawn makes them: applied by a system in the social stage.
#[derive(bevy_ecs::resource::Resource, Default)]
struct LateChanges(Vec<(PlayerId, LateChange)>);

enum LateChange {
    MoveTo(Position),
    Die,
    Revive,
}

fn apply_late_changes(
    mut changes: bevy_ecs::system::ResMut<LateChanges>,
    index: bevy_ecs::system::Res<PlayerIndex>,
    mut avatars: bevy_ecs::system::Query<(&mut Position, &mut Health)>,
) {
    for (player, change) in changes.0.drain(..) {
        let entity = index.get(player).unwrap();
        let (mut position, mut health) = avatars.get_mut(entity).unwrap();
        match change {
            LateChange::MoveTo(to) => *position = to,
            LateChange::Die => {
                health.hp = 0;
                health.respawn_at = Some(u64::MAX);
            }
            LateChange::Revive => *health = Health::full(health.max),
        }
    }
}

/// Player 1's snapshot of the tick just stepped, and its size on the wire
/// (the message as it goes out, framing and all); the world's output is
/// drained as the host does after every tick.
fn snapshot_of_1(world: &mut SimWorld) -> (usize, Snapshot) {
    world.drain_events();
    let outgoing = std::mem::take(&mut world.world_mut().resource_mut::<Outgoing>().0);
    outgoing
        .iter()
        .filter(|(to, ..)| *to == PlayerId(1))
        .filter_map(|(_, _, bytes)| match decode_server(bytes).unwrap().body {
            Some(Body::Snapshot(snapshot)) => Some((bytes.len(), snapshot)),
            _ => None,
        })
        .next_back()
        .expect("a snapshot for player 1 every tick")
}

/// Player 1's view after the snapshot of the tick just stepped, rebuilt
/// from `view` (the client acknowledges every snapshot).
fn next_view_of_1(world: &mut SimWorld, acks: &AckBoard, view: &mut Option<(u32, View)>) {
    let (_, snapshot) = snapshot_of_1(world);
    let base = view
        .as_ref()
        .filter(|(id, _)| *id == snapshot.baseline)
        .map(|(_, v)| v);
    let next = apply(base, &snapshot).unwrap();
    acks.ack(PlayerId(1), snapshot.id);
    *view = Some((snapshot.id, next));
}

/// What `view` shows of `player`'s avatar.
fn seen(
    world: &SimWorld,
    view: &Option<(u32, View)>,
    player: u64,
) -> Option<tessera_net::delta::Seen> {
    let entity = world
        .world()
        .resource::<PlayerIndex>()
        .get(PlayerId(player))?;
    let id = world.world().get::<tessera_sim::SimId>(entity)?.0;
    tessera_net::delta::lookup(&view.as_ref()?.1, id).copied()
}

/// A snapshot of tick T shows who is in reach as T ended: someone moved
/// into reach after movement (a room's start) or brought back to life (a
/// respawn) is in that tick's snapshot, not the next one's, and someone who
/// dies in such a tick is shown dead.
#[test]
fn who_is_in_reach_is_as_the_tick_ended_not_as_movement_left_it() {
    let acks = AckBoard::default();
    let spec = WorldSpec {
        kind: "starter".into(),
        seed: 5,
        tick_hz: 20,
        width: 200_000,
        height: 200_000,
        capacity: 100,
    };
    let mut world = SimWorld::build(spec, |app| {
        use bevy_ecs::schedule::IntoScheduleConfigs;
        app.add_plugins(ReplicationPlugin {
            acks: acks.clone(),
            ..ReplicationPlugin::default()
        })
        .init_resource::<LateChanges>()
        .add_systems(
            tessera_sim::TickSchedule,
            apply_late_changes.in_set(tessera_sim::TickSystems::Social),
        );
    })
    .unwrap();
    world.set_tables(Arc::new(default_tables()));
    for player in 1..=3 {
        world.push_input(
            PlayerId(player),
            Input::Join {
                class: "warrior".into(),
            },
        );
    }
    world.step();
    // Player 1 at (100, 100) m, player 3 next to it; player 2 far out of
    // the 60 m reach.
    for (player, x, y) in [
        (1, 100_000, 100_000),
        (2, 190_000, 190_000),
        (3, 102_000, 100_000),
    ] {
        let entity = world
            .world()
            .resource::<PlayerIndex>()
            .get(PlayerId(player))
            .unwrap();
        *world.world_mut().get_mut::<Position>(entity).unwrap() = Position { x, y };
    }
    let mut view = None;
    world.step();
    next_view_of_1(&mut world, &acks, &mut view);
    assert_eq!(seen(&world, &view, 2), None, "out of reach");
    assert!(seen(&world, &view, 3).is_some_and(|s| !s.dead));

    // Player 2 is put next to player 1 and player 3 dies, both after movement.
    world.world_mut().resource_mut::<LateChanges>().0 = vec![
        (
            PlayerId(2),
            LateChange::MoveTo(Position {
                x: 105_000,
                y: 100_000,
            }),
        ),
        (PlayerId(3), LateChange::Die),
    ];
    world.step();
    next_view_of_1(&mut world, &acks, &mut view);
    let moved = seen(&world, &view, 2).expect("in reach in the tick it came");
    assert_eq!((moved.x_dm, moved.y_dm), (1_050, 1_000));
    let dying = seen(&world, &view, 3).expect("the dead are shown in the tick they die");
    assert!(dying.dead);

    // The dead leave the next view; a revival after movement is seen at once.
    world.step();
    next_view_of_1(&mut world, &acks, &mut view);
    assert_eq!(seen(&world, &view, 3), None, "the dead leave the view");
    world.world_mut().resource_mut::<LateChanges>().0 = vec![(PlayerId(3), LateChange::Revive)];
    world.step();
    next_view_of_1(&mut world, &acks, &mut view);
    let back = seen(&world, &view, 3).expect("in view in the tick it revived");
    assert!(!back.dead);
}

/// A world told to thin its snapshots ([`SnapshotPace`], as an overloaded
/// node does) sends each player one every 2nd or 4th tick, the players
/// staggered over the ticks, each in the bytes of the ticks it covers, and
/// every client still decodes its deltas and sees its avatar current; back
/// at 1, everyone gets one every tick again.
#[test]
fn a_thinned_pace_staggers_players_and_keeps_their_deltas_and_bytes() {
    let acks = AckBoard::default();
    let mut world = crowd(7, &acks);
    let players = 1..=41u64;
    let mut clients: BTreeMap<u64, VecDeque<(u32, View)>> = BTreeMap::new();
    for (every, ticks) in [(1u32, 10u64), (2, 20), (4, 20), (1, 10)] {
        world.world_mut().resource_mut::<SnapshotPace>().every = every;
        let pace = SnapshotPace { every };
        let mut largest = 0;
        let mut got: BTreeMap<u64, u64> = BTreeMap::new();
        for _ in 0..ticks {
            for player in players.clone() {
                let dir = if (world.tick() + player) % 40 < 20 {
                    1
                } else {
                    -1
                };
                world.push_input(
                    PlayerId(player),
                    Input::Move {
                        seq: world.tick() as u32 + 1,
                        dir_x: dir,
                        dir_y: if player % 2 == 0 { 0 } else { dir },
                    },
                );
            }
            world.step();
            world.drain_events();
            let tick = world.tick();
            let outgoing = std::mem::take(&mut world.world_mut().resource_mut::<Outgoing>().0);
            let mut snapshots = BTreeMap::new();
            for (player, _, bytes) in &outgoing {
                if let Some(Body::Snapshot(snapshot)) = decode_server(bytes).unwrap().body {
                    largest = largest.max(bytes.len());
                    snapshots.insert(player.0, snapshot);
                }
            }
            let due: Vec<u64> = players
                .clone()
                .filter(|p| pace.due(tick, PlayerId(*p)))
                .collect();
            assert_eq!(
                snapshots.keys().copied().collect::<Vec<_>>(),
                due,
                "tick {tick}, every {every}: the players due"
            );
            assert!(
                every == 1 || due.len() < 41 / every as usize + 2,
                "tick {tick}: staggered, {} due",
                due.len()
            );
            for (player, snapshot) in snapshots {
                *got.entry(player).or_default() += 1;
                let views = clients.entry(player).or_default();
                let view = rebuilt_with_avatar_current(&world, views, tick, player, &snapshot);
                acks.ack(PlayerId(player), snapshot.id);
                views.push_back((snapshot.id, view));
                if views.len() > 8 {
                    views.pop_front();
                }
            }
        }
        assert!(
            got.len() == 41 && got.values().all(|n| *n == ticks / u64::from(every)),
            "every {every}: each player got one every {every} ticks: {got:?}"
        );
        // Within the budget of the ticks a snapshot covers, framing and
        // all; a thinned one uses more than one tick's (the crowd's full
        // view fits in two ticks' worth).
        let budget = 100 * every as usize;
        let least = if every == 1 { 80 } else { 101 };
        assert!(
            largest <= budget && largest >= least,
            "every {every}: the largest snapshot was {largest} bytes of {budget}"
        );
    }
}

/// A budget of more than a datagram a snapshot (a generous
/// `bytes_per_sec`, or a thinned pace at a low tick rate) still sends each
/// snapshot in one datagram: a sliced one is lost whole with any slice.
/// What does not fit comes in the next ones.
#[test]
fn a_snapshot_never_outgrows_one_datagram_and_the_rest_follows() {
    let acks = AckBoard::default();
    // 5,000 bytes a tick, and 90 players whose full states take more than
    // one datagram.
    let mut world = crowd_of(
        5,
        90,
        ReplicationPlugin {
            radius_mm: 60_000,
            max_entities: 100,
            bytes_per_sec: 100_000,
            acks: acks.clone(),
            ..ReplicationPlugin::default()
        },
    );
    let mut views: VecDeque<(u32, View)> = VecDeque::new();
    let mut largest = 0;
    for _ in 0..10 {
        world.step();
        let (bytes, snapshot) = snapshot_of_1(&mut world);
        largest = largest.max(bytes);
        assert!(bytes <= MAX_DIRECT, "{bytes} bytes: more than a datagram");
        let base = views
            .iter()
            .find(|(id, _)| *id == snapshot.baseline)
            .map(|(_, v)| v);
        let view = apply(base, &snapshot).expect("every baseline was kept");
        acks.ack(PlayerId(1), snapshot.id);
        views.push_back((snapshot.id, view));
    }
    assert!(largest > MAX_DIRECT - 100, "the cap was reached: {largest}");
    let (_, view) = views.back().unwrap();
    let players = view.iter().filter(|(_, seen)| seen.player != 0).count();
    assert_eq!(players, 90, "everyone arrived over a few snapshots");
}
