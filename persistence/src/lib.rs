//! # tessera-persistence
//!
//! Turns the simulation's change detection into versioned writes to the
//! stores. The rule every store obeys is here from day one: a record carries
//! a version, and a write applies only if it is newer ([`version`]), so a
//! late retry can never roll a player back. [`services`] locates the Redis
//! and MongoDB servers that `scripts/test.sh` starts for the tests.

pub mod services;
pub mod version;
