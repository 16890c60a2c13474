//! Snapshots respect their budget, always carry the nearest entities, and
//! give everything else in reach its turn.

use std::{collections::BTreeSet, sync::Arc};

use tessera_net::{
    codec::decode_server,
    proto::server_message::Body,
    replication::{Outgoing, ReplicationPlugin},
};
use tessera_sim::{Input, PlayerId, SimWorld, WorldSpec, movement::Position, players::PlayerIndex};
use tessera_tables::generate::default_tables;

#[test]
fn a_crowded_view_is_budgeted_nearest_first_and_nobody_starves() {
    let tables = Arc::new(default_tables());
    let spec = WorldSpec {
        kind: "starter".into(),
        seed: 3,
        tick_hz: 20,
        width: 200_000,
        height: 200_000,
        capacity: 100,
    };
    let mut world = SimWorld::build(spec, |app| {
        app.add_plugins(ReplicationPlugin {
            radius_mm: 60_000,
            max_entities: 16,
        });
    })
    .unwrap();
    world.set_tables(tables);
    world.push_input(
        PlayerId(1),
        Input::Join {
            class: "warrior".into(),
        },
    );
    world.step();
    // Into the middle of the 40 wolves around (50, 50) m.
    let me = world
        .world()
        .resource::<PlayerIndex>()
        .get(PlayerId(1))
        .unwrap();
    *world.world_mut().get_mut::<Position>(me).unwrap() = Position {
        x: 50_000,
        y: 50_000,
    };

    let mut seen = BTreeSet::new();
    let mut always: Option<BTreeSet<u64>> = None;
    for _ in 0..20 {
        world.step();
        let outgoing = std::mem::take(&mut world.world_mut().resource_mut::<Outgoing>().0);
        let snapshot = outgoing
            .iter()
            .filter_map(|(_, _, bytes)| match decode_server(bytes).unwrap().body {
                Some(Body::Snapshot(snapshot)) => Some(snapshot),
                _ => None,
            })
            .next_back()
            .expect("one snapshot per tick");
        assert!(
            snapshot.entities.len() <= 16,
            "over budget: {}",
            snapshot.entities.len()
        );
        assert_eq!(
            snapshot.entities[0].id, snapshot.avatar,
            "the avatar comes first"
        );
        let ids: BTreeSet<u64> = snapshot.entities.iter().map(|e| e.id).collect();
        always = Some(match always {
            None => ids.clone(),
            Some(previous) => previous.intersection(&ids).copied().collect(),
        });
        seen.extend(ids);
    }
    // 40 wolves and the avatar: all seen within 20 ticks, the nearest every tick.
    assert!(seen.len() >= 41, "only {} entities seen", seen.len());
    assert!(
        always.unwrap().len() >= 6,
        "the nearest stay in every snapshot"
    );
}
