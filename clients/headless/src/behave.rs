//! What a load-test bot does in the world each step, by scenario (the
//! state-sync ones; lockstep bots are stepped by the load test itself).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tessera_net::proto::{self, client_message::Body, room_command};
use tessera_sim::{Input, movement::Position};

use crate::{
    arena::{Arena, WEAPON, Weapon},
    loadtest::Scenario,
    roam::Roam,
    session::Session,
    team::{Role, Team},
};

/// Players per team in the `team` scenario: one side of a default `arena` room.
pub const TEAM_SIZE: usize = 5;

/// roam100: how far a bot wanders from where it appeared, mm.
const ROAM100_RADIUS_MM: i32 = 20_000;

/// Team mates' player ids by team, shared by every worker of a load test
/// (a team's bots may run on different threads).
pub type Rosters = Arc<Mutex<BTreeMap<usize, Vec<u64>>>>;

/// What one bot's behaviour reports from a step.
#[derive(Debug, Default)]
pub struct Stepped {
    /// Events read.
    pub events: u64,
    /// A room result reached this bot.
    pub room_result: bool,
    /// Deaths this bot's avatar caused.
    pub kills: u64,
    /// Skill hits (damage or healing) on this bot's avatar.
    pub hits_taken: u64,
    /// Rooms the node closed without a result with this bot in them (their
    /// world crashed; the node sends the bot back to its zone).
    pub rooms_closed: u64,
}

/// The bot's weapon as its world's welcome describes it.
fn weapon(session: &Session) -> Weapon {
    Weapon::of(session.welcome.as_ref())
}

/// One bot's behaviour state.
pub struct Behaviour {
    scenario: Scenario,
    index: usize,
    seed: u64,
    seq: u32,
    roam: Roam,
    arena: Arena,
    team: Option<Team>,
    /// The world of the last welcome (team bots go back and forth).
    world: Option<String>,
    registered: bool,
    /// roam100: alternate `sting` and `mend` once a second.
    next_pulse: Instant,
    stung: bool,
    /// fight: when the next swing is ready.
    next_slash: Instant,
    left_room: bool,
}

impl Behaviour {
    /// The behaviour of bot number `index` of a run seeded with `seed`.
    pub fn new(scenario: Scenario, index: usize, seed: u64) -> Self {
        let team = (scenario == Scenario::Team).then(|| {
            if index.is_multiple_of(TEAM_SIZE) {
                Team::new(Role::Leader { invite: Vec::new() }, 30).queue_for("arena", TEAM_SIZE)
            } else {
                Team::new(Role::Member, 30)
            }
        });
        Self {
            scenario,
            index,
            seed,
            seq: 0,
            roam: Roam::new(seed ^ index as u64, 200_000, 200_000, 2_000),
            arena: Arena::default(),
            team,
            world: None,
            registered: false,
            next_pulse: Instant::now(),
            next_slash: Instant::now(),
            stung: false,
            left_room: false,
        }
    }

    /// One step (each world tick, at most 60 a second) of a bot in the world.
    pub fn step(&mut self, session: &mut Session, rosters: &Rosters, now: Instant) -> Stepped {
        let events = std::mem::take(&mut session.events);
        let avatar = session.avatar();
        let mut stepped = Stepped {
            events: events.len() as u64,
            ..Stepped::default()
        };
        for event in &events {
            match &event.kind {
                Some(proto::event::Kind::Died(died)) if Some(died.killer) == avatar => {
                    stepped.kills += 1;
                }
                Some(proto::event::Kind::Hit(hit)) if Some(hit.target) == avatar => {
                    stepped.hits_taken += 1;
                }
                Some(proto::event::Kind::RoomClosed(_)) => stepped.rooms_closed += 1,
                _ => {}
            }
        }
        match self.scenario {
            Scenario::Arena => {
                let had = self.arena.result.is_some();
                let weapon = weapon(session);
                for body in self
                    .arena
                    .step(&events, session.snapshot.as_ref(), weapon, now)
                {
                    session.send(body);
                }
                stepped.room_result = !had && self.arena.result.is_some();
            }
            Scenario::Team => stepped.room_result = self.team_step(session, &events, rosters, now),
            Scenario::Roam100 => {
                if now >= self.next_pulse {
                    self.next_pulse = now + Duration::from_secs(1);
                    self.stung = !self.stung;
                    session.send(Body::UseSkill(proto::UseSkill {
                        skill: if self.stung { "sting" } else { "mend" }.into(),
                        target: Some(proto::SkillTarget {
                            kind: Some(proto::skill_target::Kind::Caster(proto::Empty {})),
                        }),
                    }));
                }
                self.walk(session, false, now);
            }
            Scenario::Roam => self.walk(session, false, now),
            Scenario::Fight => self.walk(session, true, now),
            Scenario::Lockstep => {}
        }
        stepped
    }

    /// The team scenario: form the team in the zone (the leader invites its
    /// mates as they arrive and walks; they follow), the leader queues it
    /// for the arena when complete, the team fights there, and after the
    /// result everyone goes back to the zone and starts again.
    fn team_step(
        &mut self,
        session: &mut Session,
        events: &[proto::Event],
        rosters: &Rosters,
        now: Instant,
    ) -> bool {
        let Some(team) = self.team.as_mut() else {
            return false;
        };
        let world = session.welcome.as_ref().map(|w| w.world.clone());
        if world != self.world {
            // Moved: into the room, or back in the zone to form again.
            self.world = world.clone();
            team.reset();
            self.arena = Arena::default();
            self.left_room = false;
        }
        let squad = self.index / TEAM_SIZE;
        if world.as_deref() == Some("arena") {
            let had = self.arena.result.is_some();
            let weapon = weapon(session);
            for body in self
                .arena
                .step(events, session.snapshot.as_ref(), weapon, now)
            {
                session.send(body);
            }
            if self.arena.result.is_some() && !self.left_room {
                self.left_room = true;
                session.send(Body::Room(proto::RoomCommand {
                    kind: Some(room_command::Kind::Leave(proto::Empty {})),
                }));
            }
            return !had && self.arena.result.is_some();
        }
        let leader = self.index.is_multiple_of(TEAM_SIZE);
        if leader {
            let mates = rosters
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&squad)
                .cloned()
                .unwrap_or_default();
            team.invite(mates);
        } else if !self.registered {
            self.registered = true;
            rosters
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(squad)
                .or_default()
                .push(session.player);
        }
        for body in team.step(events, session.snapshot.as_ref()) {
            session.send(body);
        }
        if leader {
            self.walk(session, false, now);
        }
        false
    }

    /// Roam (or, `fight`ing, walk to the nearest NPC in view and hit it).
    fn walk(&mut self, session: &mut Session, fight: bool, now: Instant) {
        let Some(me) = session.avatar().and_then(|id| session.entity(id)).cloned() else {
            return;
        };
        if me.dead {
            // Nothing to do until the node respawns it.
            return;
        }
        let at = Position {
            x: me.x_dm * 100,
            y: me.y_dm * 100,
        };
        if self.scenario == Scenario::Roam100 && self.world.is_none() {
            // Wander around where we appeared: that is our group.
            self.world = Some(String::new());
            self.roam = Roam::around(self.seed ^ self.index as u64, at, ROAM100_RADIUS_MM, 2_000);
        }
        let target = fight
            .then(|| {
                session.snapshot.as_ref().and_then(|s| {
                    s.entities
                        .iter()
                        .filter(|e| e.kind == proto::EntityKind::Npc as i32 && !e.dead)
                        .min_by_key(|e| {
                            (i64::from(e.x_dm - me.x_dm)).pow(2)
                                + (i64::from(e.y_dm - me.y_dm)).pow(2)
                        })
                        .cloned()
                })
            })
            .flatten();
        self.seq += 1;
        let seq = self.seq;
        match target {
            Some(npc) => {
                let (dx, dy) = (npc.x_dm - me.x_dm, npc.y_dm - me.y_dm);
                let weapon = weapon(session);
                if i64::from(dx).pow(2) + i64::from(dy).pow(2) <= weapon.reach_dm.pow(2) {
                    if now >= self.next_slash {
                        self.next_slash = now + weapon.every;
                        session.send(Body::UseSkill(proto::UseSkill {
                            skill: WEAPON.into(),
                            target: Some(proto::SkillTarget {
                                kind: Some(proto::skill_target::Kind::Entity(npc.id)),
                            }),
                        }));
                    }
                    session.send(Body::Move(proto::MoveInput {
                        seq,
                        dir_x: 0,
                        dir_y: 0,
                    }));
                } else {
                    let scale = dx.abs().max(dy.abs()).max(1);
                    session.send(Body::Move(proto::MoveInput {
                        seq,
                        dir_x: dx * 30_000 / scale,
                        dir_y: dy * 30_000 / scale,
                    }));
                }
            }
            None => {
                if let Input::Move { dir_x, dir_y, .. } = self.roam.next_input(at) {
                    session.send(Body::Move(proto::MoveInput {
                        seq,
                        dir_x: i32::from(dir_x),
                        dir_y: i32::from(dir_y),
                    }));
                }
            }
        }
    }
}
