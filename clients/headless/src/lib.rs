//! # tessera-bot
//!
//! Headless clients that play Tessera over its real protocol, for tests and
//! load tests. Bots are plain state machines stepped by a driver (many per
//! thread, no thread per bot). The first behaviour is [`roam::Roam`]: walk
//! between random waypoints.

pub mod roam;
