//! The world's door in: player inputs queued between ticks.

use bevy_ecs::resource::Resource;
use serde::{Deserialize, Serialize};

use crate::{
    entity::SimId,
    hash::{StableHasher, StateHash},
};

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

/// A team, numbered within its world.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TeamId(pub u64);

/// What a skill is aimed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SkillTarget {
    /// An entity.
    Entity(SimId),
    /// A point on the ground, millimetres.
    Point {
        /// East.
        x: i32,
        /// North.
        y: i32,
    },
    /// The caster itself.
    Caster,
}

/// Team management.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TeamCommand {
    /// Found a team and lead it.
    Create,
    /// Invite a player (leader only).
    Invite(PlayerId),
    /// Accept an invitation.
    Accept(TeamId),
    /// Decline an invitation.
    Decline(TeamId),
    /// Leave the team (a leader hands over to the longest-standing member).
    Leave,
    /// Remove a member (leader only).
    Kick(PlayerId),
    /// Hand leadership to a member (leader only).
    Promote(PlayerId),
}

/// Who hears a chat message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChatChannel {
    /// Everyone in the world.
    Say,
    /// The sender's team.
    Team,
}

/// Commands inside a room world.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RoomCommand {
    /// Start the countdown (the room's owner, with enough players).
    Start,
}

/// Something a player asks the world to do. Inputs are the only thing from
/// outside that changes a world, so a replay is exactly the list of them.
///
/// Variants are only ever added at the end: replays encode them by index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Input {
    /// Enter the world as `class` (a `classes` row): spawns the avatar.
    Join {
        /// The class id.
        class: String,
    },
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
    /// Use a skill the avatar's class knows.
    UseSkill {
        /// The `skills` row id.
        skill: String,
        /// What it is aimed at.
        target: SkillTarget,
    },
    /// Team management.
    Team(TeamCommand),
    /// A chat message.
    Chat {
        /// Who hears it.
        channel: ChatChannel,
        /// The text.
        text: String,
    },
    /// A room command.
    Room(RoomCommand),
    /// Enter the world with progress loaded from a store (the class is the
    /// saved one). Carried as input so that replays reproduce it exactly.
    JoinSaved(Box<SavedProgress>),
    /// The player is gone from this node: forget what the world kept for
    /// them (their parked progress). Sent by the host, never by a client.
    Forget,
}

/// A player's progress as loaded from a store. The world trusts none of it
/// blindly: the level is recomputed from XP, positions outside the zone and
/// unknown classes fall back to defaults, HP is clamped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedProgress {
    /// The class id.
    pub class: String,
    /// Total experience.
    pub xp: u64,
    /// Where the avatar was, millimetres (`None`: a spawn point).
    pub position: Option<(i32, i32)>,
    /// HP it had (`None`: full).
    pub hp: Option<i32>,
    /// Kills, deaths, damage and healing so far.
    pub stats: (u32, u32, u64, u64),
}

/// One input from one player, as queued for a tick.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputEnvelope {
    /// Who sent it.
    pub player: PlayerId,
    /// What they asked for.
    pub input: Input,
    /// The client's number for this request (0: none), echoed in a refusal
    /// so the client knows which command it was. Older replays lack it.
    #[serde(default)]
    pub request: u32,
}

impl InputEnvelope {
    /// `input` from `player`, with no request number.
    pub fn new(player: PlayerId, input: Input) -> Self {
        Self {
            player,
            input,
            request: 0,
        }
    }
}

/// Where a player's presence changed in a tick's queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cutoff {
    /// The position of their last `Join`, `JoinSaved` or `Leave`.
    pub at: usize,
    /// That change is a `Leave`.
    pub leaving: bool,
}

impl Cutoff {
    /// Whether an input queued at `position` came before the change: it is
    /// not applied.
    pub fn skips(&self, position: usize) -> bool {
        position < self.at
    }

    /// What a skipped input gets. One before a join is refused `NotJoined`.
    /// One before a leave is dropped without a word: it was sent to an
    /// avatar that is leaving (a host moving the player to another world
    /// sends the leave), and a refusal from here would reach the player in
    /// their new world as noise.
    pub fn refusal(&self) -> Option<crate::output::Rejection> {
        (!self.leaving).then_some(crate::output::Rejection::NotJoined)
    }
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
        self.pending.push(InputEnvelope::new(player, input));
    }

    /// Queues an input with its request number.
    pub fn push_envelope(&mut self, envelope: InputEnvelope) {
        self.pending.push(envelope);
    }

    /// The inputs queued for this tick, oldest first.
    pub fn pending(&self) -> &[InputEnvelope] {
        &self.pending
    }

    /// For each player who joined or left this tick, where their last
    /// `Join`/`JoinSaved`/`Leave` is in the queue. An input queued before
    /// that belongs to an avatar that is gone (or not there yet) and must
    /// not steer the current one: systems that apply inputs after presence
    /// skip it (see [`Cutoff::refusal`]).
    pub fn presence_cutoffs(&self) -> std::collections::BTreeMap<PlayerId, Cutoff> {
        let mut cutoffs = std::collections::BTreeMap::new();
        for (at, envelope) in self.pending.iter().enumerate() {
            let leaving = match envelope.input {
                Input::Join { .. } | Input::JoinSaved(_) => false,
                Input::Leave => true,
                _ => continue,
            };
            cutoffs.insert(envelope.player, Cutoff { at, leaving });
        }
        cutoffs
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
