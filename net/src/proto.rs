//! The generated protobuf types (`net/proto/tessera.proto`).
#![allow(missing_docs, clippy::all, clippy::pedantic)]

include!(concat!(env!("OUT_DIR"), "/tessera.v1.rs"));
