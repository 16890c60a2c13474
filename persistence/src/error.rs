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
}
