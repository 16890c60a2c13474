//! The tick's events as messages for the players they concern: hits and
//! deaths to both sides, chat to its recipients, team and room changes,
//! refusals back to their sender as typed responses.

use bevy_ecs::{
    change_detection::DetectChanges,
    system::{Query, Res, ResMut},
};
use tessera_sim::{
    OutEvent, Outbox, PlayerId, SimId, WorldSpec,
    combat::components::KnownSkills,
    core::GameTables,
    entity::SimIds,
    input::ChatChannel,
    players::{Player, PlayerIndex},
};

use super::{Outgoing, RejectionCounts};
use crate::{
    codec::encode_server,
    proto::{self, event, server_message::Body},
    transport::{ORDERED, RELIABLE, UNRELIABLE},
};

fn message(body: Body) -> Vec<u8> {
    encode_server(&proto::ServerMessage { body: Some(body) })
}

fn owner(id: SimId, ids: &SimIds, players: &Query<&Player>) -> Option<PlayerId> {
    ids.get(id).and_then(|e| players.get(e).ok()).map(|p| p.0)
}

/// The skills avatar `id` knows, as this world's tables define them.
fn skills_of(
    id: SimId,
    ids: &SimIds,
    known: &Query<&KnownSkills>,
    tables: &GameTables,
) -> Vec<proto::SkillInfo> {
    ids.get(id)
        .and_then(|e| known.get(e).ok())
        .map_or_else(Vec::new, |known| skill_infos(known, tables))
}

/// `known` as `tables` define them (a skill the tables lack is left out:
/// the sim refuses it anyway).
fn skill_infos(known: &KnownSkills, tables: &GameTables) -> Vec<proto::SkillInfo> {
    known
        .0
        .iter()
        .filter_map(|skill| tables.0.skills.get(&skill.0))
        .map(|skill| proto::SkillInfo {
            id: skill.id.0.clone(),
            cooldown_ticks: skill.cooldown_ticks,
            range_mm: u32::try_from(skill.range.mm.max(0)).unwrap_or(u32::MAX),
            cast_ticks: skill.cast_ticks,
        })
        .collect()
}

/// After a hot reload swapped this world's tables, tells each player the
/// new tables' hash and its avatar's skills as they now are: a client
/// paces a skill by the cooldown its welcome gave, and a designer's new
/// cooldown would otherwise draw `Cooldown` refusals (or waste time)
/// until the player's next welcome.
pub fn announce_tables(
    tables: Res<GameTables>,
    avatars: Query<(&Player, &KnownSkills)>,
    mut outgoing: ResMut<Outgoing>,
) {
    // Inserted with the world: the welcome already says all of it.
    if !tables.is_changed() || tables.is_added() {
        return;
    }
    let tables_hash = tables.0.hash().to_string();
    for (player, known) in &avatars {
        let changed = proto::TablesChanged {
            tables_hash: tables_hash.clone(),
            skills: skill_infos(known, &tables),
        };
        // Ordered with the welcome: a player that moved on meanwhile gets
        // this before its next world's welcome, which replaces it.
        let body = Body::Event(proto::Event {
            kind: Some(event::Kind::TablesChanged(changed)),
        });
        outgoing.0.push((player.0, ORDERED, message(body)));
    }
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
    known: Query<&KnownSkills>,
    counts: Res<RejectionCounts>,
    mut outgoing: ResMut<Outgoing>,
) {
    let rejections = &counts.0;
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
                        protocol: crate::PROTOCOL_VERSION,
                        skills: skills_of(*id, &ids, &known, &tables),
                    }),
                );
                push(*player, RELIABLE, event(event::Kind::Joined(id.0)));
            }
            OutEvent::Rejected {
                player,
                request,
                reason,
            } => {
                let reason = format!("{reason:?}");
                rejections.count(&reason);
                push(
                    *player,
                    ORDERED,
                    Body::Response(proto::Response {
                        request: *request,
                        code: proto::ResultCode::Rejected as i32,
                        reason,
                        ..proto::Response::default()
                    }),
                )
            }
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
            OutEvent::TeamInvite { to, team, by } => push(
                *to,
                RELIABLE,
                event(event::Kind::TeamInvite(proto::TeamInvite {
                    team: team.0,
                    by: by.0,
                })),
            ),
            OutEvent::TeamChanged { to, view } => {
                let view = proto::TeamView {
                    team: view.team.0,
                    leader: view.leader.0,
                    members: view.members.iter().map(|p| p.0).collect(),
                };
                for player in to {
                    push(*player, RELIABLE, event(event::Kind::Team(view.clone())));
                }
            }
            OutEvent::TeamLeft { to, team, kicked } => push(
                *to,
                RELIABLE,
                event(event::Kind::TeamLeft(proto::TeamLeft {
                    team: team.0,
                    kicked: *kicked,
                    reason: String::new(),
                })),
            ),
            OutEvent::TeamMemberHp {
                to,
                member,
                hp,
                max_hp,
            } => {
                let hp = proto::TeamMemberHp {
                    member: member.0,
                    hp: *hp,
                    max_hp: *max_hp,
                };
                for player in to {
                    // Latest wins: a lost update is replaced by the next.
                    push(*player, UNRELIABLE, event(event::Kind::MemberHp(hp)));
                }
            }
            OutEvent::RoomStage { stage } => {
                let (kind, starts_at) = match stage {
                    tessera_sim::output::RoomStage::Waiting => (proto::RoomStageKind::Waiting, 0),
                    tessera_sim::output::RoomStage::Countdown { starts_at } => {
                        (proto::RoomStageKind::Countdown, *starts_at)
                    }
                    tessera_sim::output::RoomStage::Running => (proto::RoomStageKind::Running, 0),
                    tessera_sim::output::RoomStage::Finished => (proto::RoomStageKind::Finished, 0),
                };
                let stage = proto::RoomStage {
                    stage: kind as i32,
                    starts_at,
                };
                for player in index.players() {
                    push(player, RELIABLE, event(event::Kind::RoomStage(stage)));
                }
            }
            OutEvent::RoomSide { player, side } => {
                let side = proto::RoomSide {
                    player: player.0,
                    side: u32::from(*side),
                };
                for to in index.players() {
                    push(to, RELIABLE, event(event::Kind::RoomSide(side)));
                }
            }
            OutEvent::RoomFinished(result) => {
                let result = proto::RoomResult {
                    has_winner: result.winner.is_some(),
                    winner: result.winner.map_or(0, u32::from),
                    finished_at: result.finished_at,
                    players: result
                        .players
                        .iter()
                        .map(|p| proto::PlayerResult {
                            player: p.player.0,
                            side: u32::from(p.side),
                            kills: p.kills,
                            deaths: p.deaths,
                            damage: p.damage,
                            healing: p.healing,
                        })
                        .collect(),
                };
                for player in index.players() {
                    push(
                        player,
                        RELIABLE,
                        event(event::Kind::RoomFinished(result.clone())),
                    );
                }
            }
            _ => {}
        }
    }
}
