//! A room world's lifecycle: waiting -> countdown -> running -> finished.
//!
//! Players are put on sides as they join (a preset roster from matchmaking,
//! else the smaller side, team mates together). The owner starts the
//! countdown, or a full room starts by itself. While running, skills work
//! and the dead stay dead; the room finishes when one side is left standing
//! or time runs out, and the result goes out for persistence. A room that
//! every player left says so, so the host can end it.

use std::collections::BTreeMap;

use bevy_app::{App, Plugin};
use bevy_ecs::{
    resource::Resource,
    schedule::IntoScheduleConfigs,
    system::{Query, Res, ResMut},
};
use serde::{Deserialize, Serialize};

use crate::{
    combat::components::{Allegiance, CombatStats, Health},
    hash::{StableHasher, StateHash},
    input::{Inbox, Input, PlayerId, RoomCommand},
    movement::Position,
    output::{OutEvent, Outbox, PlayerResult, Rejection, RoomResult, RoomStage},
    players::{Player, PlayerIndex},
    rules::WorldRules,
    schedule::{TickSchedule, TickSystems},
    state_hash::AppStateHashExt,
    teams::apply_team_commands,
    world::{Tick, WorldSpec},
};

/// Where a room is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RoomPhase {
    /// Gathering players.
    Waiting,
    /// Counting down to `starts_at`.
    Countdown {
        /// First running tick.
        starts_at: u64,
    },
    /// Fighting until `ends_at` at the latest.
    Running {
        /// Time limit.
        ends_at: u64,
    },
    /// Over.
    Finished,
}

/// The room state of a room world (inactive in zones).
#[derive(Resource, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    /// Whether this world is a room.
    pub active: bool,
    /// The phase.
    pub phase: RoomPhase,
    /// The first player to join; may start the countdown.
    pub owner: Option<PlayerId>,
    /// Players needed to start.
    pub min_players: usize,
    /// Number of sides.
    pub sides: u8,
    /// Countdown length, ticks.
    pub countdown_ticks: u64,
    /// Time limit once running, ticks.
    pub time_limit_ticks: u64,
    /// Sides decided by the host (matchmaking); others are balanced on join.
    pub roster: BTreeMap<PlayerId, u8>,
    /// Whether anyone ever joined (an empty room only ends after that).
    pub had_players: bool,
    /// Whether `RoomEmpty` was sent.
    pub announced_empty: bool,
    /// The result, once finished.
    pub result: Option<RoomResult>,
}

impl Default for Room {
    fn default() -> Self {
        Self {
            active: false,
            phase: RoomPhase::Waiting,
            owner: None,
            min_players: 2,
            sides: 2,
            countdown_ticks: 0,
            time_limit_ticks: 0,
            roster: BTreeMap::new(),
            had_players: false,
            announced_empty: false,
            result: None,
        }
    }
}

impl Room {
    /// Makes this world a room: 3 s countdown, 5 min limit, skills off until running.
    pub fn activate(&mut self, spec: &WorldSpec, rules: &mut WorldRules) {
        self.active = true;
        self.countdown_ticks = 3 * u64::from(spec.tick_hz);
        self.time_limit_ticks = 300 * u64::from(spec.tick_hz);
        rules.skills_enabled = false;
        rules.pvp = false;
    }
}

impl StateHash for Room {
    fn hash_state(&self, hasher: &mut StableHasher) {
        self.active.hash_state(hasher);
        match self.phase {
            RoomPhase::Waiting => hasher.write_u64(1),
            RoomPhase::Countdown { starts_at } => {
                hasher.write_u64(2);
                hasher.write_u64(starts_at);
            }
            RoomPhase::Running { ends_at } => {
                hasher.write_u64(3);
                hasher.write_u64(ends_at);
            }
            RoomPhase::Finished => hasher.write_u64(4),
        }
        self.owner.hash_state(hasher);
        for (player, side) in &self.roster {
            player.hash_state(hasher);
            side.hash_state(hasher);
        }
    }
}

type Fighters<'w, 's> = Query<
    'w,
    's,
    (
        &'static Player,
        &'static mut Allegiance,
        &'static mut Health,
        &'static mut Position,
        &'static mut CombatStats,
    ),
>;

/// Sides for newcomers, the owner's start command, and phase changes.
#[allow(clippy::too_many_arguments)]
pub fn run_room(
    tick: Res<Tick>,
    spec: Res<WorldSpec>,
    inbox: Res<Inbox>,
    index: Res<PlayerIndex>,
    mut room: ResMut<Room>,
    mut rules: ResMut<WorldRules>,
    mut fighters: Fighters,
    mut outbox: ResMut<Outbox>,
) {
    if !room.active {
        return;
    }
    let now = tick.0;
    // Sides for players who have none yet, in player order.
    let mut unsided: Vec<PlayerId> = fighters
        .iter()
        .filter(|(_, a, ..)| a.side.is_none())
        .map(|(p, ..)| p.0)
        .collect();
    unsided.sort();
    for player in unsided {
        room.had_players = true;
        room.owner.get_or_insert(player);
        let mut counts = vec![0usize; room.sides as usize];
        let mut mate_side = None;
        let my_team = index
            .get(player)
            .and_then(|e| fighters.get(e).ok())
            .and_then(|(_, a, ..)| a.team);
        for (_, allegiance, ..) in fighters.iter() {
            if let Some(side) = allegiance.side {
                counts[side as usize] += 1;
                if my_team.is_some() && allegiance.team == my_team {
                    mate_side = Some(side);
                }
            }
        }
        let smallest = (0..room.sides)
            .min_by_key(|s| (counts[*s as usize], *s))
            .unwrap_or(0);
        let side = room
            .roster
            .get(&player)
            .copied()
            .or(mate_side)
            .unwrap_or(smallest);
        if let Some(entity) = index.get(player)
            && let Ok((_, mut allegiance, ..)) = fighters.get_mut(entity)
        {
            allegiance.side = Some(side);
            outbox.push(OutEvent::RoomSide { player, side });
        }
    }

    for envelope in inbox.pending() {
        let Input::Room(RoomCommand::Start) = envelope.input else {
            continue;
        };
        let reason = if room.phase != RoomPhase::Waiting {
            Some(Rejection::NotRunning)
        } else if room.owner != Some(envelope.player) {
            Some(Rejection::NotOwner)
        } else if index.len() < room.min_players {
            Some(Rejection::NotEnoughPlayers)
        } else {
            None
        };
        match reason {
            Some(reason) => outbox.reject(envelope.player, envelope.request, reason),
            None => {
                room.phase = RoomPhase::Countdown {
                    starts_at: now + room.countdown_ticks,
                };
                outbox.push(OutEvent::RoomStage {
                    stage: RoomStage::Countdown {
                        starts_at: now + room.countdown_ticks,
                    },
                });
            }
        }
    }

    match room.phase {
        RoomPhase::Waiting
            if index.len() >= room.min_players
                && (index.len() >= spec.capacity as usize || roster_complete(&room, &index)) =>
        {
            // A full room, or a matchmade one whose whole roster is in, starts by itself.
            room.phase = RoomPhase::Countdown {
                starts_at: now + room.countdown_ticks,
            };
            outbox.push(OutEvent::RoomStage {
                stage: RoomStage::Countdown {
                    starts_at: now + room.countdown_ticks,
                },
            });
        }
        RoomPhase::Countdown { starts_at } if now >= starts_at => {
            room.phase = RoomPhase::Running {
                ends_at: now + room.time_limit_ticks,
            };
            rules.skills_enabled = true;
            rules.respawn = false;
            let points = rules.spawn_points.clone();
            for (_, allegiance, mut health, mut position, mut stats) in &mut fighters {
                *health = Health::full(health.max);
                *stats = CombatStats::default();
                if let (Some(side), false) = (allegiance.side, points.is_empty()) {
                    *position = points[side as usize % points.len()];
                }
            }
            outbox.push(OutEvent::RoomStage {
                stage: RoomStage::Running,
            });
        }
        RoomPhase::Running { ends_at } => {
            let mut alive = vec![0usize; room.sides as usize];
            for (_, allegiance, health, ..) in fighters.iter() {
                if let (Some(side), true) = (allegiance.side, health.alive()) {
                    alive[side as usize] += 1;
                }
            }
            let standing: Vec<u8> = (0..room.sides).filter(|s| alive[*s as usize] > 0).collect();
            if standing.len() <= 1 || now >= ends_at {
                let best = alive.iter().copied().max().unwrap_or(0);
                let leaders: Vec<u8> = (0..room.sides)
                    .filter(|s| alive[*s as usize] == best && best > 0)
                    .collect();
                let winner = if leaders.len() == 1 {
                    Some(leaders[0])
                } else {
                    None
                };
                let mut players: Vec<PlayerResult> = fighters
                    .iter()
                    .map(|(player, allegiance, _, _, stats)| PlayerResult {
                        player: player.0,
                        side: allegiance.side.unwrap_or(0),
                        kills: stats.kills,
                        deaths: stats.deaths,
                        damage: stats.damage,
                        healing: stats.healing,
                    })
                    .collect();
                players.sort_by_key(|p| p.player);
                let result = RoomResult {
                    winner,
                    finished_at: now,
                    players,
                };
                room.phase = RoomPhase::Finished;
                room.result = Some(result.clone());
                rules.skills_enabled = false;
                outbox.push(OutEvent::RoomStage {
                    stage: RoomStage::Finished,
                });
                outbox.push(OutEvent::RoomFinished(result));
            }
        }
        _ => {}
    }

    if room.had_players && index.is_empty() && !room.announced_empty {
        room.announced_empty = true;
        outbox.push(OutEvent::RoomEmpty);
    }
}

fn roster_complete(room: &Room, index: &PlayerIndex) -> bool {
    !room.roster.is_empty() && room.roster.keys().all(|p| index.get(*p).is_some())
}

/// Room lifecycle (inert in zone worlds).
#[derive(Debug, Clone, Default)]
pub struct RoomPlugin;

impl Plugin for RoomPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Room>()
            .add_systems(
                TickSchedule,
                run_room
                    .in_set(TickSystems::Social)
                    .after(apply_team_commands),
            )
            .hash_resource::<Room>();
    }
}
