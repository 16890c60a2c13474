//! The world's door out: events for players and the host, drained after each tick.

use bevy_ecs::resource::Resource;
use serde::{Deserialize, Serialize};

use crate::{entity::SimId, input::PlayerId};

/// Why the world refused an input. Every refusal reaches the sender as data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Rejection {
    /// `Join` from a player who is already in this world.
    AlreadyJoined,
    /// An input from a player who has not joined this world.
    NotJoined,
    /// The world is at capacity.
    WorldFull,
}

/// Something that happened during a tick that someone outside should hear about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum OutEvent {
    /// A player's avatar entered the world.
    Joined {
        /// The player.
        player: PlayerId,
        /// Their avatar's stable id in this world.
        id: SimId,
    },
    /// A player's avatar left the world.
    Left {
        /// The player.
        player: PlayerId,
    },
    /// An input was refused; goes back to `player` only.
    Rejected {
        /// The sender of the refused input.
        player: PlayerId,
        /// Why.
        reason: Rejection,
    },
}

/// Events produced this tick, drained by the host after the tick ends.
#[derive(Resource, Default, Debug)]
pub struct Outbox {
    events: Vec<OutEvent>,
}

impl Outbox {
    /// Queues an event for the host.
    pub fn push(&mut self, event: OutEvent) {
        self.events.push(event);
    }

    /// Events queued so far this tick.
    pub fn events(&self) -> &[OutEvent] {
        &self.events
    }

    /// Takes every queued event.
    pub fn take(&mut self) -> Vec<OutEvent> {
        std::mem::take(&mut self.events)
    }
}
