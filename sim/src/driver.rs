//! Seeded synthetic players: a stream of joins, moves and leaves that is a
//! pure function of (seed, tick). Used by tests, benches and the node's
//! synthetic-load option; real players come through the network instead.

use crate::{
    input::{Input, InputEnvelope, PlayerId},
    rng::SimRng,
};

/// Random inputs for `players` synthetic players.
#[derive(Debug, Clone)]
pub struct RandomInputs {
    rng: SimRng,
    players: u64,
    joined: Vec<bool>,
    seq: Vec<u32>,
}

impl RandomInputs {
    /// A driver for player ids `1..=players`, all decided by `seed`.
    pub fn new(seed: u64, players: u64) -> Self {
        Self {
            rng: SimRng::from_seed(seed),
            players,
            joined: vec![false; players as usize],
            seq: vec![0; players as usize],
        }
    }

    /// The inputs to queue for `tick`. Everyone joins on the first call;
    /// afterwards each player steers now and then and rarely leaves and
    /// comes back. Call once per tick, in tick order.
    pub fn inputs_for(&mut self, _tick: u64) -> Vec<InputEnvelope> {
        let mut out = Vec::new();
        for index in 0..self.players as usize {
            let player = PlayerId(index as u64 + 1);
            if !self.joined[index] {
                self.joined[index] = true;
                out.push(InputEnvelope {
                    player,
                    input: Input::Join,
                });
                continue;
            }
            match self.rng.below(1_000) {
                0 => {
                    self.joined[index] = false;
                    out.push(InputEnvelope {
                        player,
                        input: Input::Leave,
                    });
                }
                1..=99 => {
                    self.seq[index] += 1;
                    let dir_x = self.rng.range_i32(-100, 100) as i16;
                    let dir_y = self.rng.range_i32(-100, 100) as i16;
                    out.push(InputEnvelope {
                        player,
                        input: Input::Move {
                            seq: self.seq[index],
                            dir_x,
                            dir_y,
                        },
                    });
                }
                _ => {}
            }
        }
        out
    }
}
