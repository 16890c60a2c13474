//! State sync inside a world: each tick (or every few, [`SnapshotPace`],
//! staggered over the players), every player gets a snapshot of the
//! living entities within reach of their avatar (through the world's spatial
//! grid), and the tick's events are turned into messages for the players they
//! concern. Everything goes to [`Outgoing`], which the host drains after the
//! tick and hands to the net thread; the world itself never touches a socket.
//!
//! A player's view is the nearest `max_entities` within reach; each
//! snapshot is a delta against the last view the player acknowledged
//! (see [`crate::delta`]), positions quantised to 10 cm, within
//! `bytes_per_sec / tick_hz` bytes for each tick it covers (at most one
//! datagram's payload, [`MAX_DIRECT`]): the viewer and near changes first,
//! changes that had to wait gaining priority each tick.

use bevy_app::{App, Plugin};
use bevy_ecs::{
    resource::Resource,
    schedule::IntoScheduleConfigs,
    system::{Local, Query, Res, ResMut},
};
use tessera_sim::{
    OutEvent, Outbox, PlayerId, SimId, TickSchedule, TickSystems, WorldSpec,
    combat::components::Health,
    movement::{LastInputSeq, Position},
    npc::Npc,
    players::Player,
    spatial::SpatialGrid,
    world::Tick,
};

use std::sync::{Arc, Mutex};

use crate::{
    delta::{Baselines, Candidate, Seen},
    proto,
    transport::{UNRELIABLE, packing::MAX_DIRECT},
};

mod events;
mod interest;

pub use events::{announce_tables, route_events};

/// Messages for players, produced by this tick: (player, channel, bytes).
#[derive(Resource, Default, Debug)]
pub struct Outgoing(pub Vec<(PlayerId, u8, Vec<u8>)>);

/// How far a player sees, how much a view holds and may cost, and what each
/// client has acknowledged.
#[derive(Resource, Debug)]
pub struct Replication {
    /// Interest radius, mm.
    pub radius_mm: i32,
    /// Most entities in a player's view (the avatar included).
    pub max_entities: usize,
    /// Snapshot bytes per second per player (split over the ticks).
    pub bytes_per_sec: u64,
    next_snapshot: u32,
    /// Each viewer's baselines, sorted by player: aligned with the tick's
    /// avatars, so the viewers' loop walks both together.
    clients: Vec<(PlayerId, Baselines)>,
    /// A snapshot's encoding, reused for the next viewer.
    body: Vec<u8>,
}

/// Ticks between two snapshots of one player: 1, every tick. The host
/// raises it when its workers cannot keep up (the simulation keeps its
/// rate; players see the world less often, in as many bytes a second up
/// to one datagram a snapshot, instead of the whole world slowing down). Players are staggered: with
/// 2, half of them get one on even ticks and half on odd ones.
#[derive(Resource, Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotPace {
    /// Ticks between two snapshots of one player (0 counts as 1).
    pub every: u32,
}

impl Default for SnapshotPace {
    fn default() -> Self {
        Self { every: 1 }
    }
}

impl SnapshotPace {
    /// Whether `player` gets a snapshot at `tick`.
    pub fn due(&self, tick: u64, player: PlayerId) -> bool {
        tick.wrapping_add(player.0)
            .is_multiple_of(u64::from(self.every.max(1)))
    }
}

/// Where this world's refusals are counted.
#[derive(Resource, Clone, Debug)]
pub struct RejectionCounts(pub crate::service::Rejections);

/// Snapshot acknowledgements from the net thread, taken by the world at its
/// next tick (a short lock, never held across a tick).
#[derive(Resource, Clone, Debug, Default)]
pub struct AckBoard(Arc<Mutex<Vec<(PlayerId, u32)>>>);

impl AckBoard {
    /// `player` has snapshot `id`.
    pub fn ack(&self, player: PlayerId, id: u32) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((player, id));
    }

    fn take(&self) -> Vec<(PlayerId, u32)> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Snapshots and events for the players of a world.
#[derive(Debug, Clone)]
pub struct ReplicationPlugin {
    /// Interest radius, mm.
    pub radius_mm: i32,
    /// Most entities in a player's view.
    pub max_entities: usize,
    /// Snapshot bytes per second per player (a snapshot takes at most one
    /// datagram, [`MAX_DIRECT`] bytes, whatever this allows).
    pub bytes_per_sec: u64,
    /// Where the net thread leaves acknowledgements.
    pub acks: AckBoard,
    /// Where the world's refusals are counted, by reason.
    pub rejections: crate::service::Rejections,
}

impl Default for ReplicationPlugin {
    fn default() -> Self {
        Self {
            radius_mm: 60_000,
            max_entities: 64,
            bytes_per_sec: 6_000,
            acks: AckBoard::default(),
            rejections: crate::service::Rejections::default(),
        }
    }
}

impl Plugin for ReplicationPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Outgoing>()
            .init_resource::<SnapshotPace>()
            .insert_resource(self.acks.clone())
            .insert_resource(RejectionCounts(self.rejections.clone()))
            .insert_resource(Replication {
                radius_mm: self.radius_mm,
                max_entities: self.max_entities.max(2),
                bytes_per_sec: self.bytes_per_sec,
                next_snapshot: 0,
                clients: Vec::new(),
                body: Vec::new(),
            })
            .add_systems(
                TickSchedule,
                (announce_tables, route_events, snapshots)
                    .chain()
                    .in_set(TickSystems::Output)
                    .after(tessera_sim::teams::share_team_health),
            );
    }
}

/// `ServerMessage.snapshot`'s field number.
const SERVER_SNAPSHOT: u32 = 11;

/// A `ServerMessage` whose body is field `field` holding the encoded
/// message `body`.
fn frame(field: u32, body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(body.len() + 6);
    prost::encoding::encode_key(
        field,
        prost::encoding::WireType::LengthDelimited,
        &mut message,
    );
    prost::encoding::encode_varint(body.len() as u64, &mut message);
    message.extend_from_slice(body);
    message
}

/// One snapshot per player due one this tick ([`SnapshotPace`]): the
/// living entities within reach, and itself, as a delta against the last
/// view that player acknowledged, within the byte budget.
#[allow(clippy::too_many_arguments)]
pub fn snapshots(
    tick: Res<Tick>,
    spec: Res<WorldSpec>,
    grid: Res<SpatialGrid>,
    located: Query<interest::Located>,
    mut fresh_grid: Local<Option<SpatialGrid>>,
    acks: Res<AckBoard>,
    pace: Res<SnapshotPace>,
    outbox: Res<Outbox>,
    mut replication: ResMut<Replication>,
    avatars: Query<(&Player, &SimId, &Position, &LastInputSeq, &Health)>,
    entities: Query<(&Health, &Position, Option<&Player>, Option<&Npc>)>,
    mut outgoing: ResMut<Outgoing>,
) {
    let quantise = |mm: i32| mm.div_euclid(100);
    let seen = |position: Position, health: &Health, player: Option<&Player>, npc: bool| Seen {
        kind: if npc {
            proto::EntityKind::Npc
        } else {
            proto::EntityKind::Player
        } as i32,
        x_dm: quantise(position.x),
        y_dm: quantise(position.y),
        hp: health.hp.max(0) as u32,
        max_hp: health.max.max(0) as u32,
        dead: !health.alive(),
        player: player.map_or(0, |p| p.0.0),
    };
    let replication = &mut *replication;
    // A (re)joining player's client starts with no views: its old
    // baselines (a dropped connection's) would never match.
    fn client<'a>(
        clients: &'a mut [(PlayerId, Baselines)],
        player: &PlayerId,
    ) -> Option<&'a mut Baselines> {
        let at = clients.binary_search_by_key(player, |(p, _)| *p).ok()?;
        Some(&mut clients[at].1)
    }
    for event in outbox.events() {
        if let OutEvent::Joined { player, .. } = event
            && let Some(baselines) = client(&mut replication.clients, player)
        {
            *baselines = Baselines::default();
        }
    }
    for (player, snapshot) in acks.take() {
        if let Some(baselines) = client(&mut replication.clients, &player) {
            baselines.ack(snapshot);
        }
    }
    let mut order: Vec<_> = avatars.iter().collect();
    order.sort_by_key(|(player, ..)| player.0);
    // One client per avatar, in the same order (a map lookup per viewer
    // per tick otherwise): rebuilt only when someone came or went.
    let clients = &mut replication.clients;
    let aligned = clients.len() == order.len()
        && clients
            .iter()
            .zip(&order)
            .all(|((p, _), (player, ..))| *p == player.0);
    if !aligned {
        let mut old = std::mem::take(clients).into_iter().peekable();
        for (player, ..) in &order {
            while old.next_if(|(p, _)| *p < player.0).is_some() {}
            let baselines = old
                .next_if(|(p, _)| *p == player.0)
                .map_or_else(Baselines::default, |(_, b)| b);
            clients.push((player.0, baselines));
        }
    }
    let max_entities = replication.max_entities;
    // A player's bytes per second, over the snapshots it gets in one; never
    // more than one datagram carries: a larger snapshot would go sliced,
    // lost whole with any one slice (a thinned pace at a low tick rate, or
    // a generous `bytes_per_sec`, would get there).
    let budget = (replication
        .bytes_per_sec
        .saturating_mul(u64::from(pace.every.max(1)))
        / u64::from(spec.tick_hz.max(1)))
    .min(MAX_DIRECT as u64) as usize;
    let others = max_entities.saturating_sub(1);
    let grid: &SpatialGrid = if interest::is_current(&grid, &located) {
        &grid
    } else {
        interest::rebuilt(&grid, &mut fresh_grid, &located)
    };
    // What each entity looks like this tick, once, by grid index: a crowd
    // of viewers who all see each other would otherwise look up every
    // entity once per viewer.
    let states: Vec<Option<Seen>> = grid
        .entries()
        .iter()
        .map(|entry| {
            entities
                .get(entry.entity)
                .ok()
                .map(|(health, position, owner, npc)| seen(*position, health, owner, npc.is_some()))
        })
        .collect();
    let mut in_reach: Vec<(i64, u64, usize)> = Vec::new();
    let mut candidates: Vec<Candidate> = Vec::new();
    for ((player, id, position, last_seq, health), (_, baselines)) in
        order.into_iter().zip(replication.clients.iter_mut())
    {
        if !pace.due(tick.0, player.0) {
            continue;
        }
        replication.next_snapshot = replication.next_snapshot.wrapping_add(1).max(1);
        // The nearest `others`, read from the cells around the viewer
        // outwards: in a crowd, a few cells rather than every one in reach.
        grid.nearest_k_within(
            *position,
            replication.radius_mm,
            others,
            |entry| entry.id != *id,
            &mut in_reach,
        );
        // No sort: the encoder orders the view by its own priority.
        candidates.clear();
        candidates.push(Candidate {
            id: id.0,
            seen: seen(*position, health, Some(player), false),
            distance_sq: 0,
        });
        for (distance, entry_id, index) in &in_reach {
            if let Some(seen) = states[*index] {
                candidates.push(Candidate {
                    id: *entry_id,
                    seen,
                    distance_sq: *distance,
                });
            }
        }
        // The snapshot is written as its fields are decided (see
        // `Baselines::encode`), then framed as a `ServerMessage`.
        let body = &mut replication.body;
        body.clear();
        let snapshot = replication.next_snapshot;
        prost::encoding::uint32::encode(1, &snapshot, body);
        prost::encoding::uint64::encode(2, &tick.0, body);
        prost::encoding::uint64::encode(3, &id.0, body);
        if last_seq.0 != 0 {
            prost::encoding::uint32::encode(4, &last_seq.0, body);
        }
        baselines.encode(snapshot, &candidates, max_entities, budget, body);
        outgoing
            .0
            .push((player.0, UNRELIABLE, frame(SERVER_SNAPSHOT, body)));
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::{codec::encode_server, proto::server_message::Body};

    #[test]
    fn a_framed_snapshot_is_the_server_message_prost_would_write() {
        let snapshot = proto::Snapshot {
            id: 7,
            tick: 300,
            avatar: 12,
            last_input_seq: 41,
            baseline: 5,
            removed: vec![3, 1 << 40],
            ..Default::default()
        };
        let expected = encode_server(&proto::ServerMessage {
            body: Some(Body::Snapshot(snapshot.clone())),
        });
        let framed = frame(SERVER_SNAPSHOT, &snapshot.encode_to_vec());
        assert_eq!(framed, expected);
    }
}
