//! # tessera-persistence
//!
//! Turns the simulation's change detection into versioned writes:
//!
//! - [`dirty`]: a world plugin; a `Changed<T>` system per [`dirty::Persisted`]
//!   component records changed parts per player. Gameplay never calls "save".
//! - [`record`]: records are a version plus one value per part; a patch
//!   carries only changed parts and applies only if newer, so a late retry
//!   can never roll a player back.
//! - [`flush`]: the flush worker batches patches every interval, writes them
//!   off the tick, retries with back-off and jitter, and keeps what failed.
//! - Stores: [`embedded::EmbeddedStore`] (one redb file, the default) and
//!   [`mongo::MongoStore`] (one bulk `update` per batch).
//! - [`accounts`]: usernames, their players and password hashes, kept
//!   by the same stores.
//! - [`histogram`]: lock-free bucket histograms for `/metrics`.
//! - [`redis_state`]: what nodes share in Redis: sessions, the single-login
//!   lock, routing, the node registry, presence, and a write-behind cache of
//!   hot records (never the durable copy).
//! - [`services`] locates the Redis and MongoDB servers `scripts/test.sh`
//!   starts for the tests.

pub mod accounts;
pub mod backend;
pub mod dirty;
pub mod embedded;
pub mod error;
pub mod flush;
pub mod histogram;
pub mod mongo;
pub mod record;
pub mod redis_state;
pub mod services;
