//! # tessera-bot
//!
//! Headless clients that play Tessera over its real protocol, for tests and
//! load tests. Bots are plain state machines stepped by a driver (many per
//! thread, no thread per bot). [`session`] logs in over HTTP and plays over
//! UDP; [`roam::Roam`] walks between random waypoints; [`lockstep::Lockstep`]
//! plays a frame-sync room by running the same `sim` from the server's bundles;
//! [`team::Team`] forms or joins a team and follows the leader; [`arena::Arena`]
//! queues for a room and fights until it finishes.

pub mod arena;
pub mod behave;
pub mod loadtest;
pub mod lockstep;
pub mod roam;
pub mod session;
pub mod team;
