//! # tessera-net
//!
//! Puts worlds on the network. For now it holds the pieces the protocol and
//! transport will stand on and that need no socket: [`rate::TokenBucket`],
//! the per-client limiter applied before any decoding cost is paid.

pub mod rate;
