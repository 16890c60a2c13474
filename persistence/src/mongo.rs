//! The MongoDB store: one document per player, `{_id, version, parts: {...}}`.
//!
//! A batch is one `update` command with one statement per player, unordered:
//! `{q: {_id, version: {$lt: v}}, u: {$set: {version, parts.<key>: ...}},
//! upsert: true}`. A newer stored version makes the filter miss and the
//! upsert collide on `_id` (duplicate key): that is the "stale" answer, so a
//! late retry can never roll a player back.

use mongodb::{
    Client, Collection,
    bson::{self, Bson, Document, doc},
};

use crate::{
    accounts::{Account, Created},
    error::StoreError,
    record::{Patch, PlayerRecord, SaveReport},
};

const DUPLICATE_KEY: i32 = 11_000;

/// Statements per `update` command.
pub const MAX_STATEMENTS: usize = 1_000;

/// Players in a MongoDB collection.
#[derive(Clone, Debug)]
pub struct MongoStore {
    players: Collection<Document>,
    accounts: Collection<Document>,
    /// Set once the unique index on `accounts.username` is known to exist;
    /// no account is created before it is, or two racing registrations of a
    /// name could both succeed.
    accounts_indexed: std::sync::Arc<tokio::sync::OnceCell<()>>,
}

fn mongo(error: impl std::fmt::Display) -> StoreError {
    StoreError::Mongo(error.to_string())
}

fn statement(patch: &Patch) -> Result<Document, StoreError> {
    let mut set = doc! { "version": patch.version as i64 };
    for (key, value) in &patch.parts {
        set.insert(format!("parts.{key}"), bson::to_bson(value).map_err(mongo)?);
    }
    Ok(doc! {
        "q": { "_id": patch.player as i64, "version": { "$lt": patch.version as i64 } },
        "u": { "$set": set },
        "upsert": true,
    })
}

impl MongoStore {
    /// Connects to `uri`, using database `db`. Unless the URI says
    /// otherwise, a server that cannot be reached fails an operation after
    /// 2 s rather than the driver's 30 s: the flush worker retries anyway,
    /// and logins should not hang through an outage.
    pub async fn connect(uri: &str, db: &str) -> Result<Self, StoreError> {
        let mut options = mongodb::options::ClientOptions::parse(uri)
            .await
            .map_err(mongo)?;
        options
            .server_selection_timeout
            .get_or_insert(std::time::Duration::from_secs(2));
        options
            .connect_timeout
            .get_or_insert(std::time::Duration::from_secs(2));
        let client = Client::with_options(options).map_err(mongo)?;
        let database = client.database(db);
        Ok(Self {
            players: database.collection("players"),
            accounts: database.collection("accounts"),
            accounts_indexed: Default::default(),
        })
    }

    /// The collection (tests, tools).
    pub fn collection(&self) -> &Collection<Document> {
        &self.players
    }

    /// Applies a batch, each patch only if newer, in one round trip per
    /// [`MAX_STATEMENTS`] patches (a command must stay under 16 MiB).
    pub async fn save(&self, batch: &[Patch]) -> Result<SaveReport, StoreError> {
        let mut report = SaveReport::default();
        for chunk in batch.chunks(MAX_STATEMENTS) {
            let part = self.save_chunk(chunk).await?;
            report.applied += part.applied;
            report.stale += part.stale;
        }
        Ok(report)
    }

    async fn save_chunk(&self, batch: &[Patch]) -> Result<SaveReport, StoreError> {
        if batch.is_empty() {
            return Ok(SaveReport::default());
        }
        let updates = batch.iter().map(statement).collect::<Result<Vec<_>, _>>()?;
        let command = doc! { "update": self.players.name(), "updates": updates, "ordered": false };
        let reply = self
            .players
            .client()
            .database(self.players.namespace().db.as_str())
            .run_command(command)
            .await
            .map_err(mongo)?;
        let written = reply
            .get_i32("n")
            .map(|n| n as usize)
            .or_else(|_| reply.get_i64("n").map(|n| n as usize))
            .map_err(mongo)?;
        if let Ok(concern) = reply.get_document("writeConcernError") {
            // Written but not durable as asked: not acknowledged, so retried.
            return Err(StoreError::Mongo(format!("write concern: {concern}")));
        }
        let mut stale = 0;
        if let Ok(errors) = reply.get_array("writeErrors") {
            for error in errors {
                let code = error.as_document().and_then(|e| e.get_i32("code").ok());
                if code == Some(DUPLICATE_KEY) {
                    stale += 1;
                } else {
                    return Err(StoreError::Mongo(format!("write error: {error}")));
                }
            }
        }
        Ok(SaveReport {
            applied: written,
            stale,
        })
    }

    /// Ends the client's server sessions and closes its connections, within
    /// `deadline`; every clone of this store fails its calls afterwards.
    /// A node calls it last: a client merely dropped ends its sessions from
    /// a task that races the runtime's own shutdown, and the driver panics
    /// when it loses (its pool's worker is gone first).
    pub async fn close(&self, deadline: std::time::Duration) {
        let client = self.players.client().clone();
        if tokio::time::timeout(deadline, client.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                ?deadline,
                "the MongoDB client did not close in time; exiting without it"
            );
        }
    }

    /// Applies each patch with its own round trip (the baseline batching beats).
    pub async fn save_one_by_one(&self, batch: &[Patch]) -> Result<SaveReport, StoreError> {
        let mut report = SaveReport::default();
        for patch in batch {
            let one = self.save(std::slice::from_ref(patch)).await?;
            report.applied += one.applied;
            report.stale += one.stale;
        }
        Ok(report)
    }

    /// The newest record of `player`.
    pub async fn load(&self, player: u64) -> Result<Option<PlayerRecord>, StoreError> {
        let Some(document) = self
            .players
            .find_one(doc! { "_id": player as i64 })
            .await
            .map_err(mongo)?
        else {
            return Ok(None);
        };
        let version = document.get_i64("version").map_err(mongo)? as u64;
        let parts = match document.get("parts") {
            Some(Bson::Document(parts)) => parts
                .iter()
                .map(|(k, v)| {
                    Ok((
                        k.clone(),
                        serde_json::to_value(v.clone().into_relaxed_extjson()).map_err(mongo)?,
                    ))
                })
                .collect::<Result<_, StoreError>>()?,
            _ => Default::default(),
        };
        Ok(Some(PlayerRecord {
            player,
            version,
            parts,
        }))
    }

    async fn ensure_account_index(&self) -> Result<(), StoreError> {
        self.accounts_indexed
            .get_or_try_init(|| async {
                let index = mongodb::IndexModel::builder()
                    .keys(doc! { "username": 1 })
                    .options(
                        mongodb::options::IndexOptions::builder()
                            .unique(true)
                            .name("username_unique".to_string())
                            .build(),
                    )
                    .build();
                self.accounts.create_index(index).await.map(|_| ())
            })
            .await
            .map(|_| ())
            .map_err(mongo)
    }

    /// Creates `account` unless its username (unique index) or player
    /// (`_id`) is taken.
    pub async fn create_account(&self, account: &Account) -> Result<Created, StoreError> {
        self.ensure_account_index().await?;
        let document = doc! {
            "_id": account.player as i64,
            "username": &account.username,
            "password_hash": &account.password_hash,
            "created_unix_ms": account.created_unix_ms as i64,
        };
        match self.accounts.insert_one(document).await {
            Ok(_) => Ok(Created::Yes),
            Err(error) if is_duplicate_key(&error) => Ok(Created::Taken),
            Err(error) => Err(mongo(error)),
        }
    }

    /// The account named `username` (normalised).
    pub async fn account(&self, username: &str) -> Result<Option<Account>, StoreError> {
        let Some(document) = self
            .accounts
            .find_one(doc! { "username": username })
            .await
            .map_err(mongo)?
        else {
            return Ok(None);
        };
        Ok(Some(Account {
            username: document.get_str("username").map_err(mongo)?.to_string(),
            player: document.get_i64("_id").map_err(mongo)? as u64,
            password_hash: document
                .get_str("password_hash")
                .map_err(mongo)?
                .to_string(),
            created_unix_ms: document.get_i64("created_unix_ms").map_err(mongo)? as u64,
        }))
    }
}

fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match error.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == DUPLICATE_KEY,
        ErrorKind::Command(e) => e.code == DUPLICATE_KEY,
        _ => false,
    }
}
