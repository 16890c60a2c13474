//! Where player records and accounts go: the embedded store or MongoDB.
//! Each call runs off the async threads that drive the flush worker and the
//! HTTP handlers: the embedded store's blocking writes on the blocking pool,
//! the MongoDB driver in a task of its own.

use std::sync::Arc;

use crate::{
    accounts::{Account, Created},
    embedded::EmbeddedStore,
    error::StoreError,
    mongo::MongoStore,
    record::{Patch, PlayerRecord, SaveReport},
};

/// Where records go.
#[derive(Clone, Debug)]
pub enum Backend {
    /// The embedded single-file store.
    Embedded(Arc<EmbeddedStore>),
    /// MongoDB.
    Mongo(MongoStore),
}

impl Backend {
    /// Writes a batch.
    pub async fn save(&self, batch: Vec<Patch>) -> Result<SaveReport, StoreError> {
        match self {
            Backend::Embedded(store) => {
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.save(&batch))
                    .await
                    .map_err(|e| StoreError::Embedded(e.to_string()))?
            }
            Backend::Mongo(store) => {
                // The driver has been seen to panic inside its connection pool
                // while a server restarts; in its own task that is a failed
                // write to retry, not a dead flush worker and lost changes.
                let store = store.clone();
                tokio::spawn(async move { store.save(&batch).await })
                    .await
                    .map_err(|e| StoreError::Mongo(format!("the driver failed: {e}")))?
            }
        }
    }

    /// Creates an account unless its name or player is taken.
    pub async fn create_account(&self, account: Account) -> Result<Created, StoreError> {
        match self {
            Backend::Embedded(store) => {
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.create_account(&account))
                    .await
                    .map_err(|e| StoreError::Embedded(e.to_string()))?
            }
            Backend::Mongo(store) => {
                let store = store.clone();
                tokio::spawn(async move { store.create_account(&account).await })
                    .await
                    .map_err(|e| StoreError::Mongo(format!("the driver failed: {e}")))?
            }
        }
    }

    /// The account named `username` (normalised).
    pub async fn account(&self, username: &str) -> Result<Option<Account>, StoreError> {
        let username = username.to_string();
        match self {
            Backend::Embedded(store) => {
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.account(&username))
                    .await
                    .map_err(|e| StoreError::Embedded(e.to_string()))?
            }
            Backend::Mongo(store) => {
                let store = store.clone();
                tokio::spawn(async move { store.account(&username).await })
                    .await
                    .map_err(|e| StoreError::Mongo(format!("the driver failed: {e}")))?
            }
        }
    }

    /// Loads a record.
    pub async fn load(&self, player: u64) -> Result<Option<PlayerRecord>, StoreError> {
        match self {
            Backend::Embedded(store) => {
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.load(player))
                    .await
                    .map_err(|e| StoreError::Embedded(e.to_string()))?
            }
            Backend::Mongo(store) => {
                let store = store.clone();
                tokio::spawn(async move { store.load(player).await })
                    .await
                    .map_err(|e| StoreError::Mongo(format!("the driver failed: {e}")))?
            }
        }
    }
}
