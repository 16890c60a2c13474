//! Seeded synthetic players: a stream of inputs that is a pure function of
//! (seed, tick). Used by tests, benches and the node's synthetic-load
//! option; real players come through the network instead.

use crate::{
    entity::SimId,
    input::{Input, InputEnvelope, PlayerId, SkillTarget},
    rng::SimRng,
};

/// Classes synthetic players cycle through (the default game's).
pub const CLASSES: [&str; 3] = ["warrior", "mage", "cleric"];

/// Random inputs for `players` synthetic players.
#[derive(Debug, Clone)]
pub struct RandomInputs {
    rng: SimRng,
    players: u64,
    joined: Vec<bool>,
    seq: Vec<u32>,
    skills: Vec<String>,
    max_target: u64,
}

impl RandomInputs {
    /// A driver for player ids `1..=players` that only walk, all decided by `seed`.
    pub fn new(seed: u64, players: u64) -> Self {
        Self {
            rng: SimRng::from_seed(seed),
            players,
            joined: vec![false; players as usize],
            seq: vec![0; players as usize],
            skills: Vec::new(),
            max_target: 0,
        }
    }

    /// Players that also use `skills` now and then, at entities with ids up
    /// to `max_target`, at points, or at themselves. Most such attempts are
    /// refused (out of range, not known, cooling down): that is the point,
    /// every check gets exercised.
    pub fn fighting(mut self, skills: &[&str], max_target: u64) -> Self {
        self.skills = skills.iter().map(|s| s.to_string()).collect();
        self.max_target = max_target.max(1);
        self
    }

    /// The inputs to queue for `tick`. Everyone joins on the first call;
    /// afterwards each player steers now and then, sometimes fights, and
    /// rarely leaves and comes back. Call once per tick, in tick order.
    pub fn inputs_for(&mut self, _tick: u64) -> Vec<InputEnvelope> {
        let mut out = Vec::new();
        for index in 0..self.players as usize {
            let player = PlayerId(index as u64 + 1);
            if !self.joined[index] {
                self.joined[index] = true;
                let class = CLASSES[index % CLASSES.len()].to_string();
                out.push(InputEnvelope::new(player, Input::Join { class }));
                continue;
            }
            match self.rng.below(1_000) {
                0 => {
                    self.joined[index] = false;
                    out.push(InputEnvelope::new(player, Input::Leave));
                }
                1..=99 => {
                    self.seq[index] += 1;
                    let dir_x = self.rng.range_i32(-100, 100) as i16;
                    let dir_y = self.rng.range_i32(-100, 100) as i16;
                    out.push(InputEnvelope::new(
                        player,
                        Input::Move {
                            seq: self.seq[index],
                            dir_x,
                            dir_y,
                        },
                    ));
                }
                100..=159 if !self.skills.is_empty() => {
                    let skill =
                        self.skills[self.rng.below(self.skills.len() as u32) as usize].clone();
                    let target = match self.rng.below(10) {
                        0 => SkillTarget::Caster,
                        1 => SkillTarget::Point {
                            x: self.rng.range_i32(0, 200_000),
                            y: self.rng.range_i32(0, 200_000),
                        },
                        _ => SkillTarget::Entity(SimId(1 + self.rng.next_u64() % self.max_target)),
                    };
                    out.push(InputEnvelope::new(
                        player,
                        Input::UseSkill { skill, target },
                    ));
                }
                _ => {}
            }
        }
        out
    }
}
