//! State sync inside a world: each tick, every player gets a snapshot of the
//! living entities within reach of their avatar (through the world's spatial
//! grid), and the tick's events are turned into messages for the players they
//! concern. Everything goes to [`Outgoing`], which the host drains after the
//! tick and hands to the net thread; the world itself never touches a socket.
//!
//! Snapshots are full (no delta against acknowledged baselines yet) and
//! positions are quantised to 10 cm. A snapshot holds at most
//! `max_entities`: the nearest half always, the rest of what is in reach
//! taking turns in the other half, so near things are current and nothing
//! in reach starves.

use bevy_app::{App, Plugin};
use bevy_ecs::{
    resource::Resource,
    schedule::IntoScheduleConfigs,
    system::{Query, Res, ResMut},
};
use tessera_sim::{
    OutEvent, Outbox, PlayerId, SimId, TickSchedule, TickSystems, WorldSpec,
    combat::components::Health,
    core::GameTables,
    entity::SimIds,
    input::ChatChannel,
    movement::{LastInputSeq, Position},
    npc::Npc,
    players::{Player, PlayerIndex},
    spatial::{SpatialGrid, distance_sq},
    world::Tick,
};

use crate::{
    codec::encode_server,
    proto::{self, event, server_message::Body},
    transport::{ORDERED, RELIABLE, UNRELIABLE},
};

/// Messages for players, produced by this tick: (player, channel, bytes).
#[derive(Resource, Default, Debug)]
pub struct Outgoing(pub Vec<(PlayerId, u8, Vec<u8>)>);

/// How far a player sees, how much one snapshot holds, and the counter.
#[derive(Resource, Debug, Clone)]
pub struct Replication {
    /// Interest radius, mm.
    pub radius_mm: i32,
    /// Most entities in one snapshot (the avatar included).
    pub max_entities: usize,
    next_snapshot: u32,
}

/// Snapshots and events for the players of a world.
#[derive(Debug, Clone)]
pub struct ReplicationPlugin {
    /// Interest radius, mm.
    pub radius_mm: i32,
    /// Most entities in one snapshot (about 20 bytes each on the wire).
    pub max_entities: usize,
}

impl Default for ReplicationPlugin {
    fn default() -> Self {
        Self {
            radius_mm: 60_000,
            max_entities: 48,
        }
    }
}

impl Plugin for ReplicationPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Outgoing>()
            .insert_resource(Replication {
                radius_mm: self.radius_mm,
                max_entities: self.max_entities.max(2),
                next_snapshot: 0,
            })
            .add_systems(
                TickSchedule,
                (route_events, snapshots)
                    .chain()
                    .in_set(TickSystems::Output)
                    .after(tessera_sim::teams::share_team_health),
            );
    }
}

fn message(body: Body) -> Vec<u8> {
    encode_server(&proto::ServerMessage { body: Some(body) })
}

fn owner(id: SimId, ids: &SimIds, players: &Query<&Player>) -> Option<PlayerId> {
    ids.get(id).and_then(|e| players.get(e).ok()).map(|p| p.0)
}

/// Turns this tick's events into messages for the players they concern.
#[allow(clippy::too_many_arguments)]
pub fn route_events(
    outbox: Res<Outbox>,
    ids: Res<SimIds>,
    index: Res<PlayerIndex>,
    spec: Res<WorldSpec>,
    tables: Res<GameTables>,
    players: Query<&Player>,
    mut outgoing: ResMut<Outgoing>,
) {
    let mut push =
        |to: PlayerId, channel: u8, body: Body| outgoing.0.push((to, channel, message(body)));
    let event = |kind: event::Kind| Body::Event(proto::Event { kind: Some(kind) });
    for out in outbox.events() {
        match out {
            OutEvent::Joined { player, id } => {
                push(
                    *player,
                    ORDERED,
                    Body::Welcome(proto::Welcome {
                        player: player.0,
                        world: spec.kind.clone(),
                        tick_hz: u32::from(spec.tick_hz),
                        tables_hash: tables.0.hash().to_string(),
                        frame_room: None,
                    }),
                );
                push(*player, RELIABLE, event(event::Kind::Joined(id.0)));
            }
            OutEvent::Rejected { player, reason } => push(
                *player,
                ORDERED,
                Body::Response(proto::Response {
                    request: 0,
                    code: proto::ResultCode::Rejected as i32,
                    reason: format!("{reason:?}"),
                }),
            ),
            OutEvent::SkillHit {
                caster,
                target,
                skill,
                amount,
                hp,
            } => {
                let hit = proto::SkillHit {
                    caster: caster.0,
                    target: target.0,
                    skill: skill.clone(),
                    amount: *amount,
                    hp: *hp,
                };
                let mut to: Vec<PlayerId> = [*caster, *target]
                    .iter()
                    .filter_map(|id| owner(*id, &ids, &players))
                    .collect();
                to.dedup();
                for player in to {
                    push(player, RELIABLE, event(event::Kind::Hit(hit.clone())));
                }
            }
            OutEvent::Died { id, killer } => {
                let died = proto::Died {
                    id: id.0,
                    killer: killer.map_or(0, |k| k.0),
                };
                let mut to: Vec<PlayerId> = [Some(*id), *killer]
                    .into_iter()
                    .flatten()
                    .filter_map(|id| owner(id, &ids, &players))
                    .collect();
                to.dedup();
                for player in to {
                    push(player, RELIABLE, event(event::Kind::Died(died)));
                }
            }
            OutEvent::Respawned { id } => {
                if let Some(player) = owner(*id, &ids, &players) {
                    push(player, RELIABLE, event(event::Kind::Respawned(id.0)));
                }
            }
            OutEvent::LevelUp { player, level } => {
                push(*player, RELIABLE, event(event::Kind::LevelUp(*level)))
            }
            OutEvent::Chat {
                to,
                from,
                channel,
                text,
            } => {
                let chat = proto::ChatMessage {
                    from: from.0,
                    channel: match channel {
                        ChatChannel::Say => proto::ChatChannel::Say,
                        ChatChannel::Team => proto::ChatChannel::Team,
                    } as i32,
                    text: text.clone(),
                };
                let recipients: Vec<PlayerId> = match to {
                    Some(list) => list.clone(),
                    None => index.players().collect(),
                };
                for player in recipients {
                    push(player, RELIABLE, event(event::Kind::Chat(chat.clone())));
                }
            }
            _ => {}
        }
    }
}

/// One snapshot per player: the living entities within reach, and itself.
#[allow(clippy::too_many_arguments)]
pub fn snapshots(
    tick: Res<Tick>,
    grid: Res<SpatialGrid>,
    mut replication: ResMut<Replication>,
    avatars: Query<(&Player, &SimId, &Position, &LastInputSeq, &Health)>,
    entities: Query<(&Health, Option<&Player>, Option<&Npc>)>,
    mut outgoing: ResMut<Outgoing>,
) {
    let quantise = |mm: i32| mm.div_euclid(100);
    let state =
        |id: SimId, position: Position, health: &Health, player: Option<&Player>, npc: bool| {
            proto::EntityState {
                id: id.0,
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
            }
        };
    let mut order: Vec<_> = avatars.iter().collect();
    order.sort_by_key(|(player, ..)| player.0);
    let budget = replication.max_entities.saturating_sub(1).max(1);
    let (near_slots, turn_slots) = (budget.div_ceil(2), budget / 2);
    for (player, id, position, last_seq, health) in order {
        replication.next_snapshot = replication.next_snapshot.wrapping_add(1);
        let mut in_reach = Vec::new();
        grid.for_each_within(*position, replication.radius_mm, |entry| {
            if entry.id != *id {
                in_reach.push((distance_sq(entry.position, *position), entry.id, *entry));
            }
        });
        let chosen: Vec<_> = if in_reach.len() <= budget {
            in_reach
        } else {
            // Only the nearest need ordering: a partial selection, not a
            // sort of everything in reach (hundreds in a crowd).
            in_reach.select_nth_unstable_by_key(near_slots, |(distance, id, _)| (*distance, *id));
            in_reach[..near_slots].sort_unstable_by_key(|(distance, id, _)| (*distance, *id));
            // The rest take turns in id order, so each gets its turn.
            in_reach[near_slots..].sort_unstable_by_key(|(_, id, _)| *id);
            let rest = &in_reach[near_slots..];
            let start = (tick.0 as usize).wrapping_mul(turn_slots) % rest.len();
            let turn = (0..turn_slots).map(|i| rest[(start + i) % rest.len()]);
            in_reach[..near_slots].iter().copied().chain(turn).collect()
        };
        let mut entities_in_view = vec![state(*id, *position, health, Some(player), false)];
        for (_, entry_id, entry) in chosen {
            if let Ok((health, owner, npc)) = entities.get(entry.entity) {
                entities_in_view.push(state(
                    entry_id,
                    entry.position,
                    health,
                    owner,
                    npc.is_some(),
                ));
            }
        }
        let snapshot = proto::Snapshot {
            id: replication.next_snapshot,
            tick: tick.0,
            avatar: id.0,
            last_input_seq: last_seq.0,
            entities: entities_in_view,
        };
        outgoing
            .0
            .push((player.0, UNRELIABLE, message(Body::Snapshot(snapshot))));
    }
}
