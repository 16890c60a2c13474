//! The `arena` behaviour: queue for a room kind (by joining it), wait for
//! the match, then fight the nearest living opponent (a player on another
//! side, from the room's side announcements) until the room finishes with a
//! result.

use std::time::{Duration, Instant};

use tessera_net::proto::{self, client_message::Body, event};

/// The skill fighting bots use.
pub const WEAPON: &str = "slash";

/// `slash` in the shipped tables: for a welcome that does not describe it
/// (a node from before welcomes listed skills).
const SHIPPED_COOLDOWN_TICKS: u32 = 20;
const SHIPPED_RANGE_MM: u32 = 2_500;

/// What a fighting bot needs to know of [`WEAPON`]: how long to wait
/// between swings and how close to stand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Weapon {
    /// Between swings: the skill's cooldown and a little more, as a player
    /// waits for the button to light up (sooner, the node refuses it:
    /// `Cooldown`).
    pub every: Duration,
    /// Within this distance (decimetres) the bot swings instead of walking.
    pub reach_dm: i64,
}

impl Weapon {
    /// The weapon as the world's welcome describes it (its tick rate, and
    /// the skill from its tables), else as the shipped tables define it in
    /// a world of 20 Hz.
    pub fn of(welcome: Option<&proto::Welcome>) -> Self {
        let skill = welcome.and_then(|w| w.skills.iter().find(|s| s.id == WEAPON));
        let (cooldown_ticks, range_mm) = skill
            .map_or((SHIPPED_COOLDOWN_TICKS, SHIPPED_RANGE_MM), |skill| {
                (skill.cooldown_ticks, skill.range_mm)
            });
        let hz = welcome.map_or(0, |w| w.tick_hz);
        let hz = if hz == 0 { 20 } else { hz };
        Self {
            every: Duration::from_secs(u64::from(cooldown_ticks)) / hz + Duration::from_millis(50),
            // Four fifths of the range: the target moves between the
            // snapshot the bot aims by and the tick that resolves the swing
            // (`OutOfRange` otherwise).
            reach_dm: i64::from(range_mm) * 4 / 5 / 100,
        }
    }
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
    /// The room's first running tick, from its countdown: the tick that
    /// puts each side on its spawn point, so older snapshots show where
    /// the players no longer are (a swing by them draws `OutOfRange`).
    starts_at: u64,
    /// Sides announced, by player (ours may come before our first snapshot).
    sides: std::collections::BTreeMap<u64, u32>,
    seq: u32,
    /// The node closed the room without a result (its world crashed) and
    /// moves the player to a zone, where nobody is an opponent.
    pub closed: bool,
}

impl Arena {
    /// The messages to send at `now` after reading new `events` and the
    /// latest `snapshot`, fighting with `weapon`.
    pub fn step(
        &mut self,
        events: &[proto::Event],
        snapshot: Option<&proto::Snapshot>,
        weapon: Weapon,
        now: Instant,
    ) -> Vec<Body> {
        let me = snapshot.and_then(|s| s.entities.iter().find(|e| e.id == s.avatar));
        for event in events {
            match &event.kind {
                Some(event::Kind::RoomStage(stage)) => {
                    self.stage = proto::RoomStageKind::try_from(stage.stage).ok();
                    if self.stage == Some(proto::RoomStageKind::Countdown) {
                        self.starts_at = stage.starts_at;
                    }
                }
                Some(event::Kind::RoomSide(side)) => {
                    self.sides.insert(side.player, side.side);
                }
                Some(event::Kind::RoomFinished(result)) => self.result = Some(result.clone()),
                Some(event::Kind::RoomClosed(_)) => self.closed = true,
                _ => {}
            }
        }
        let (Some(snapshot), Some(me)) = (snapshot, me) else {
            return Vec::new();
        };
        if let Some(side) = self.sides.get(&me.player) {
            self.side = Some(*side);
        }
        if self.stage != Some(proto::RoomStageKind::Running)
            || snapshot.tick < self.starts_at
            || self.result.is_some()
            || self.closed
            || me.dead
        {
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
        if dx * dx + dy * dy <= weapon.reach_dm * weapon.reach_dm {
            let mut bodies = vec![Body::Move(proto::MoveInput {
                seq: self.seq,
                dir_x: 0,
                dir_y: 0,
            })];
            if self.next_slash.is_none_or(|ready| now >= ready) {
                self.next_slash = Some(now + weapon.every);
                self.attacks += 1;
                bodies.push(Body::UseSkill(proto::UseSkill {
                    skill: WEAPON.into(),
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

    fn welcome(tick_hz: u32, skills: Vec<proto::SkillInfo>) -> proto::Welcome {
        proto::Welcome {
            tick_hz,
            skills,
            ..Default::default()
        }
    }

    fn slash(cooldown_ticks: u32, range_mm: u32) -> proto::SkillInfo {
        proto::SkillInfo {
            id: WEAPON.into(),
            cooldown_ticks,
            range_mm,
            cast_ticks: 0,
        }
    }

    #[test]
    fn the_weapon_is_the_welcomes_skill_at_the_worlds_tick_rate() {
        // 45 ticks: three seconds at 15 Hz, one and a half at 30 Hz.
        let at_15 = Weapon::of(Some(&welcome(15, vec![slash(45, 4_000)])));
        assert_eq!(at_15.every, Duration::from_millis(3_050));
        assert_eq!(at_15.reach_dm, 32, "four fifths of 4 m");
        let at_30 = Weapon::of(Some(&welcome(30, vec![slash(45, 4_000)])));
        assert_eq!(at_30.every, Duration::from_millis(1_550));
        // Other skills are not the weapon.
        let other = proto::SkillInfo {
            id: "war_cry".into(),
            ..slash(400, 30_000)
        };
        let both = Weapon::of(Some(&welcome(20, vec![other, slash(10, 2_000)])));
        assert_eq!(both.every, Duration::from_millis(550));
        assert_eq!(both.reach_dm, 16);
    }

    #[test]
    fn without_the_skill_in_the_welcome_the_weapon_is_the_shipped_slash() {
        let shipped = Weapon {
            every: Duration::from_millis(1_050),
            reach_dm: 20,
        };
        assert_eq!(Weapon::of(None), shipped, "no welcome: 20 Hz");
        assert_eq!(Weapon::of(Some(&welcome(0, Vec::new()))), shipped);
        let at_30 = Weapon::of(Some(&welcome(30, Vec::new()))).every;
        assert!(at_30 > Duration::from_millis(666) + Duration::from_millis(50));
        assert!(at_30 < Duration::from_millis(667) + Duration::from_millis(50));
    }

    fn stage(stage: proto::RoomStageKind, starts_at: u64) -> proto::Event {
        proto::Event {
            kind: Some(event::Kind::RoomStage(proto::RoomStage {
                stage: stage as i32,
                starts_at,
            })),
        }
    }

    /// A snapshot of `tick` from player 10's avatar (1), with player 20's
    /// (2) a metre away.
    fn duel(tick: u64) -> proto::Snapshot {
        proto::Snapshot {
            tick,
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
        }
    }

    /// The running tick moves each side to its spawn point: a snapshot from
    /// before it shows an opponent in reach who no longer is.
    #[test]
    fn a_bot_waits_for_a_snapshot_of_the_first_running_tick() {
        let mut snapshot = duel(99);
        let weapon = Weapon::of(Some(&welcome(30, vec![slash(20, 2_500)])));
        let now = Instant::now();
        let mut arena = Arena::default();
        let countdown = [stage(proto::RoomStageKind::Countdown, 100)];
        assert!(
            arena
                .step(&countdown, Some(&snapshot), weapon, now)
                .is_empty()
        );
        let running = [stage(proto::RoomStageKind::Running, 0)];
        assert!(
            arena
                .step(&running, Some(&snapshot), weapon, now)
                .is_empty(),
            "the snapshot is from before the teleport"
        );
        snapshot.tick = 100;
        let swing = arena.step(&[], Some(&snapshot), weapon, now);
        assert!(
            swing.iter().any(|b| matches!(b, Body::UseSkill(_))),
            "{swing:?}"
        );
    }

    #[test]
    fn a_bot_in_reach_swings_once_per_cooldown_and_keeps_still_between() {
        let snapshot = duel(0);
        let running = [stage(proto::RoomStageKind::Running, 0)];
        let mut arena = Arena::default();
        let start = Instant::now();
        let swings = |bodies: &[Body]| {
            bodies
                .iter()
                .filter(|b| matches!(b, Body::UseSkill(_)))
                .count()
        };
        let weapon = Weapon::of(Some(&welcome(30, vec![slash(20, 2_500)])));
        assert_eq!(
            swings(&arena.step(&running, Some(&snapshot), weapon, start)),
            1
        );
        let soon = start + Duration::from_millis(500);
        let soon = arena.step(&[], Some(&snapshot), weapon, soon);
        assert_eq!(swings(&soon), 0, "still cooling down");
        assert!(matches!(soon[..], [Body::Move(_)]), "{soon:?}");
        let later = start + weapon.every;
        assert_eq!(swings(&arena.step(&[], Some(&snapshot), weapon, later)), 1);
        assert_eq!(arena.attacks, 2);
        // Out of a shorter reach, it walks to the target instead.
        let short = Weapon::of(Some(&welcome(30, vec![slash(20, 1_000)])));
        let walk = arena.step(&[], Some(&snapshot), short, later + weapon.every);
        assert!(
            matches!(&walk[..], [Body::Move(m)] if m.dir_x > 0),
            "{walk:?}"
        );
    }

    #[test]
    fn a_bot_whose_room_closed_fights_no_more() {
        let snapshot = duel(0);
        let weapon = Weapon::of(Some(&welcome(30, vec![slash(20, 2_500)])));
        let mut arena = Arena::default();
        let running = [stage(proto::RoomStageKind::Running, 0)];
        let now = Instant::now();
        assert!(
            !arena
                .step(&running, Some(&snapshot), weapon, now)
                .is_empty()
        );
        let closed = [proto::Event {
            kind: Some(event::Kind::RoomClosed(proto::RoomClosed {
                room: 7,
                reason: "crashed".into(),
            })),
        }];
        // Whoever the next snapshots show (the zone's players) is no opponent.
        let later = now + weapon.every * 2;
        assert!(
            arena
                .step(&closed, Some(&snapshot), weapon, later)
                .is_empty()
        );
        assert!(arena.closed && arena.result.is_none());
    }
}
