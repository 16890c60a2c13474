//! The world's door in: player inputs queued between ticks.

use bevy_ecs::resource::Resource;
use serde::{Deserialize, Serialize};

use crate::hash::{StableHasher, StateHash};

/// A player's account-wide identity (stable across sessions and worlds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PlayerId(pub u64);

impl StateHash for PlayerId {
    fn hash_state(&self, hasher: &mut StableHasher) {
        hasher.write_u64(self.0);
    }
}

impl std::fmt::Display for PlayerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "player:{}", self.0)
    }
}

/// Something a player asks the world to do. Inputs are the only thing from
/// outside that changes a world, so a replay is exactly the list of them.
///
/// Variants are only ever added at the end: replays encode them by index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Input {
    /// Enter the world: spawns the player's avatar.
    Join,
    /// Leave the world: despawns the player's avatar.
    Leave,
    /// Steer. `dir_x`/`dir_y` give a direction (any length; zero stops);
    /// the server normalises it and applies the avatar's own speed.
    Move {
        /// Client-side sequence number; older or repeated ones are ignored.
        seq: u32,
        /// Direction, x component.
        dir_x: i16,
        /// Direction, y component.
        dir_y: i16,
    },
}

/// One input from one player, as queued for a tick.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputEnvelope {
    /// Who sent it.
    pub player: PlayerId,
    /// What they asked for.
    pub input: Input,
}

/// Inputs waiting for the next tick, in arrival order (that order is part of
/// what a replay records). Filled by the host, drained by the input systems.
#[derive(Resource, Default, Debug)]
pub struct Inbox {
    pending: Vec<InputEnvelope>,
}

impl Inbox {
    /// Queues an input for the next tick.
    pub fn push(&mut self, player: PlayerId, input: Input) {
        self.pending.push(InputEnvelope { player, input });
    }

    /// The inputs queued for this tick, oldest first.
    pub fn pending(&self) -> &[InputEnvelope] {
        &self.pending
    }

    /// Takes every queued input, leaving the inbox empty.
    pub fn take(&mut self) -> Vec<InputEnvelope> {
        std::mem::take(&mut self.pending)
    }

    /// Replaces the queue (used by the world to hand a tick its inputs).
    pub(crate) fn set(&mut self, inputs: Vec<InputEnvelope>) {
        self.pending = inputs;
    }
}
