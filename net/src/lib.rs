//! # tessera-net
//!
//! Puts worlds on the network.
//!
//! - [`proto`]: the protobuf messages (`net/proto/tessera.proto`, compiled
//!   by prost with protox, so no system `protoc`).
//! - [`codec`]: total decoding of client messages into validated commands,
//!   size-checked before any decoding work.
//! - [`rate::TokenBucket`]: per-client message and byte limits.
//! - [`transport`]: the boundary to UDP (renet channels over netcode secure
//!   connections): bytes in, bytes out, connection events.
//! - [`service`]: the net thread: rate limits, decoding, routing to worlds;
//!   [`stats`] its counters.
//! - [`replication`]: the world-side plugin that builds snapshots and event
//!   messages for each player.
//! - [`delta`]: snapshot deltas against acknowledged views, within a byte
//!   budget, and how a client rebuilds the view.
//! - [`frames`] and [`relay`]: frame sync (lockstep rooms): bundles, the
//!   uplink, catch-ups (a world checkpoint and the bundles since), and the
//!   server-side relay that builds bundles, checks hashes, checkpoints its
//!   room's world and resyncs.

/// The version of the wire protocol (the messages in `proto` and how they
/// are used) this build speaks. A client says which it speaks when it logs
/// in, and the node refuses any other; `Welcome` carries it too, so a
/// client can check the server it reached. Raise it with every change an
/// older client would misread (a field it would skip is such a change when
/// skipping it leaves the client wrong):
///
/// - 1: before versions (logins without `protocol`);
/// - 2: snapshots carry `moves`.
pub const PROTOCOL_VERSION: u32 = 2;

pub mod codec;
pub mod delta;
pub mod frames;
pub mod proto;
pub mod rate;
pub mod relay;
pub mod replication;
pub mod service;
pub mod stats;
pub mod transport;
