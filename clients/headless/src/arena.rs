//! The `arena` behaviour: queue for a room kind (by joining it), wait for
//! the match, then fight the nearest living opponent (a player on another
//! side, from the room's side announcements) until the room finishes with a
//! result.

use tessera_net::proto::{self, client_message::Body, event};

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
    /// Sides announced, by player (ours may come before our first snapshot).
    sides: std::collections::BTreeMap<u64, u32>,
    seq: u32,
}

/// Within this distance (decimetres) the bot attacks instead of walking.
const REACH_DM: i64 = 20;

impl Arena {
    /// The messages to send after reading new `events` and the latest
    /// `snapshot`.
    pub fn step(
        &mut self,
        events: &[proto::Event],
        snapshot: Option<&proto::Snapshot>,
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
            self.attacks += 1;
            vec![
                Body::Move(proto::MoveInput {
                    seq: self.seq,
                    dir_x: 0,
                    dir_y: 0,
                }),
                Body::UseSkill(proto::UseSkill {
                    skill: "slash".into(),
                    target: Some(proto::SkillTarget {
                        kind: Some(proto::skill_target::Kind::Entity(target.id)),
                    }),
                }),
            ]
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
