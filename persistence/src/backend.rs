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
    /// Runs one store call with its argument: on the embedded store in the
    /// blocking pool, on MongoDB in a task of its own. The driver has been
    /// seen to panic inside its connection pool while a server restarts;
    /// in its own task that is a failed call to retry, not a dead flush
    /// worker and lost changes.
    async fn call<A, T, F>(
        &self,
        arg: A,
        embedded: fn(&EmbeddedStore, A) -> Result<T, StoreError>,
        mongo: impl FnOnce(MongoStore, A) -> F,
    ) -> Result<T, StoreError>
    where
        A: Send + 'static,
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        match self {
            Backend::Embedded(store) => {
                let store = store.clone();
                tokio::task::spawn_blocking(move || embedded(&store, arg))
                    .await
                    .map_err(|e| StoreError::Embedded(e.to_string()))?
            }
            Backend::Mongo(store) => tokio::spawn(mongo(store.clone(), arg))
                .await
                .map_err(|e| StoreError::Mongo(format!("the driver failed: {e}")))?,
        }
    }

    /// Writes a batch.
    pub async fn save(&self, batch: Vec<Patch>) -> Result<SaveReport, StoreError> {
        self.call(
            batch,
            |store, batch| store.save(&batch),
            |store, batch| async move { store.save(&batch).await },
        )
        .await
    }

    /// Creates an account unless its name or player is taken.
    pub async fn create_account(&self, account: Account) -> Result<Created, StoreError> {
        self.call(
            account,
            |store, account| store.create_account(&account),
            |store, account| async move { store.create_account(&account).await },
        )
        .await
    }

    /// The account named `username` (normalised).
    pub async fn account(&self, username: &str) -> Result<Option<Account>, StoreError> {
        self.call(
            username.to_string(),
            |store, username| store.account(&username),
            |store, username| async move { store.account(&username).await },
        )
        .await
    }

    /// Releases the store's server-side resources (MongoDB's sessions and
    /// connections) before the process exits; the embedded store has none
    /// beyond its file, which each write already made durable.
    pub async fn close(&self, deadline: std::time::Duration) {
        if let Backend::Mongo(store) = self {
            store.close(deadline).await;
        }
    }

    /// Loads a record.
    pub async fn load(&self, player: u64) -> Result<Option<PlayerRecord>, StoreError> {
        self.call(
            player,
            |store, player| store.load(player),
            |store, player| async move { store.load(player).await },
        )
        .await
    }
}
