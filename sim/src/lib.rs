//! # tessera-sim
//!
//! The simulation: every room and zone is a fixed-tick `bevy_ecs` world,
//! assembled from plugins as a `bevy_app::App` and then stepped by hand, one
//! tick per call, on whichever worker thread owns it ([`SimWorld`]).
//!
//! Data flows one way through a tick: the host queues inputs in the
//! [`Inbox`]; [`SimWorld::step`] runs the [`TickSchedule`] (its stages are
//! listed on [`TickSystems`]); events come out of the [`Outbox`]; the tick
//! ends with a 64-bit state hash ([`state_hash`]). Those doors are the only
//! way in or out: no clock, socket, unseeded RNG or hash-map order reaches
//! gameplay state, which is integer-only, so the same spec and inputs give
//! the same hashes on any machine. [`replay`] records and re-checks that;
//! [`checkpoint`] captures a world between ticks, entity order included, so
//! that a world rebuilt from it goes on exactly as the original would.

pub mod chat;
pub mod checkpoint;
pub mod combat;
pub mod core;
pub mod directory;
pub mod driver;
pub mod entity;
pub mod hash;
pub mod input;
pub mod matchmaking;
pub mod movement;
pub mod npc;
pub mod output;
pub mod players;
pub mod replay;
pub mod rng;
pub mod room;
pub mod rules;
pub mod schedule;
pub mod spatial;
pub mod state_hash;
pub mod teams;
pub mod world;
pub mod zone;

pub use crate::{
    checkpoint::{Checkpoint, CheckpointError},
    entity::SimId,
    input::{
        ChatChannel, Inbox, Input, InputEnvelope, PlayerId, RoomCommand, SkillTarget, TeamCommand,
        TeamId,
    },
    output::{OutEvent, Outbox, Rejection},
    schedule::{TickSchedule, TickSystems},
    world::{SimWorld, SpecError, Tick, TickReport, WorldSpec},
};
