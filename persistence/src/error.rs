//! What can go wrong talking to a store.

/// A store failed; the batch is not acknowledged and stays pending.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The embedded store (file, transaction, encoding).
    #[error("embedded store: {0}")]
    Embedded(String),
    /// MongoDB (unreachable, refused, unexpected reply).
    #[error("mongodb: {0}")]
    Mongo(String),
    /// Redis (unreachable, timed out, refused, unexpected reply).
    #[error("redis: {0}")]
    Redis(String),
    /// A value cached in Redis does not decode: evict it and read the
    /// durable store instead.
    #[error("redis cache of player {player}, {field}: {reason}")]
    CorruptCache {
        /// The player whose cached record is bad.
        player: u64,
        /// The hash field that does not decode (`version` or a part).
        field: String,
        /// What the decoder said.
        reason: String,
    },
}
