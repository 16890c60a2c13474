//! The `arena` behaviour: queue for a room kind (by joining it), wait for
//! the match, then fight the nearest living opponent (a player on another
//! side, from the room's side announcements) until the room finishes with a
//! result.

use std::time::{Duration, Instant};

use tessera_net::proto::{self, client_message::Body, event};

/// `slash`'s cooldown in the shipped tables, in its world's ticks.
const SLASH_COOLDOWN_TICKS: u32 = 20;

/// How often a fighter swings in a world ticking at `tick_hz` (0: 20 Hz):
/// `slash`'s cooldown, and a little more, as a player waits for the button
/// to light up (sooner, the node refuses it: `Cooldown`).
pub fn swing_every(tick_hz: u32) -> Duration {
    let hz = if tick_hz == 0 { 20 } else { tick_hz };
    Duration::from_secs(u64::from(SLASH_COOLDOWN_TICKS)) / hz + Duration::from_millis(50)
}

/// The arena behaviour's state.
#[derive(Clone, Debug, Default)]
pub struct Arena {
    /// The room's stage as last announced.
    pub stage: Option<proto::RoomStageKind>,
    /// This player's side, once given.
    pub side: Option<u32>,
    /// The result, once the room finished.
    pub result: Option<proto::RoomResult>,
    /// Skills used.
    pub attacks: u32,
    /// When the next swing is ready (none swung yet).
    next_slash: Option<Instant>,
    /// Sides announced, by player (ours may come before our first snapshot).
    sides: std::collections::BTreeMap<u64, u32>,
    seq: u32,
}

/// Within this distance (decimetres) the bot attacks instead of walking.
const REACH_DM: i64 = 20;

impl Arena {
    /// The messages to send at `now` after reading new `events` and the
    /// latest `snapshot`, in a room ticking at `tick_hz` (its welcome's; 0
    /// when not known).
    pub fn step(
        &mut self,
        events: &[proto::Event],
        snapshot: Option<&proto::Snapshot>,
        tick_hz: u32,
        now: Instant,
    ) -> Vec<Body> {
        let me = snapshot.and_then(|s| s.entities.iter().find(|e| e.id == s.avatar));
        for event in events {
            match &event.kind {
                Some(event::Kind::RoomStage(stage)) => {
                    self.stage = proto::RoomStageKind::try_from(stage.stage).ok();
                }
                Some(event::Kind::RoomSide(side)) => {
                    self.sides.insert(side.player, side.side);
                }
                Some(event::Kind::RoomFinished(result)) => self.result = Some(result.clone()),
                _ => {}
            }
        }
        let (Some(snapshot), Some(me)) = (snapshot, me) else {
            return Vec::new();
        };
        if let Some(side) = self.sides.get(&me.player) {
            self.side = Some(*side);
        }
        if self.stage != Some(proto::RoomStageKind::Running) || self.result.is_some() || me.dead {
            return Vec::new();
        }
        let distance =
            |e: &proto::EntityState| (i64::from(e.x_dm - me.x_dm), i64::from(e.y_dm - me.y_dm));
        let Some(target) = snapshot
            .entities
            .iter()
            // Opponents only: another side (or one not announced yet).
            .filter(|e| {
                e.player != 0
                    && e.player != me.player
                    && !e.dead
                    && (self.side.is_none() || self.sides.get(&e.player) != self.side.as_ref())
            })
            .min_by_key(|e| {
                let (dx, dy) = distance(e);
                (dx * dx + dy * dy, e.id)
            })
        else {
            return Vec::new();
        };
        let (dx, dy) = distance(target);
        self.seq += 1;
        if dx * dx + dy * dy <= REACH_DM * REACH_DM {
            let mut bodies = vec![Body::Move(proto::MoveInput {
                seq: self.seq,
                dir_x: 0,
                dir_y: 0,
            })];
            if self.next_slash.is_none_or(|ready| now >= ready) {
                self.next_slash = Some(now + swing_every(tick_hz));
                self.attacks += 1;
                bodies.push(Body::UseSkill(proto::UseSkill {
                    skill: "slash".into(),
                    target: Some(proto::SkillTarget {
                        kind: Some(proto::skill_target::Kind::Entity(target.id)),
                    }),
                }));
            }
            bodies
        } else {
            let scale = dx.abs().max(dy.abs()).max(1);
            vec![Body::Move(proto::MoveInput {
                seq: self.seq,
                dir_x: (dx * 30_000 / scale) as i32,
                dir_y: (dy * 30_000 / scale) as i32,
            })]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_swing_waits_for_the_cooldown_at_the_rooms_tick_rate() {
        // 20 ticks: a second at 20 Hz, two thirds of one at 30 Hz.
        assert_eq!(swing_every(20), Duration::from_millis(1_050));
        assert_eq!(swing_every(0), swing_every(20), "not known: 20 Hz");
        let at_30 = swing_every(30);
        assert!(at_30 > Duration::from_millis(666) + Duration::from_millis(50));
        assert!(at_30 < Duration::from_millis(667) + Duration::from_millis(50));
    }

    #[test]
    fn a_bot_in_reach_swings_once_per_cooldown_and_keeps_still_between() {
        let snapshot = proto::Snapshot {
            avatar: 1,
            entities: vec![
                proto::EntityState {
                    id: 1,
                    player: 10,
                    ..Default::default()
                },
                proto::EntityState {
                    id: 2,
                    player: 20,
                    x_dm: 10,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let running = [proto::Event {
            kind: Some(event::Kind::RoomStage(proto::RoomStage {
                stage: proto::RoomStageKind::Running as i32,
                ..Default::default()
            })),
        }];
        let mut arena = Arena::default();
        let start = Instant::now();
        let swings = |bodies: &[Body]| {
            bodies
                .iter()
                .filter(|b| matches!(b, Body::UseSkill(_)))
                .count()
        };
        assert_eq!(swings(&arena.step(&running, Some(&snapshot), 30, start)), 1);
        let soon = arena.step(&[], Some(&snapshot), 30, start + Duration::from_millis(500));
        assert_eq!(swings(&soon), 0, "still cooling down");
        assert!(matches!(soon[..], [Body::Move(_)]), "{soon:?}");
        let later = start + swing_every(30);
        assert_eq!(swings(&arena.step(&[], Some(&snapshot), 30, later)), 1);
        assert_eq!(arena.attacks, 2);
    }
}
