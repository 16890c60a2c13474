//! The embedded store: one redb file, no server. The default for a node.
//!
//! A batch is one write transaction: either every newer patch in it is
//! durable, or none is.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::{
    accounts::{Account, Created},
    error::StoreError,
    record::{Applied, Patch, PlayerRecord, SaveReport, apply},
};

const PLAYERS: TableDefinition<u64, &[u8]> = TableDefinition::new("players");
const ACCOUNTS: TableDefinition<&str, &[u8]> = TableDefinition::new("accounts");
const ACCOUNT_PLAYERS: TableDefinition<u64, &str> = TableDefinition::new("account_players");

/// A single-file ACID store.
pub struct EmbeddedStore {
    db: Database,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore").finish_non_exhaustive()
    }
}

fn embedded(error: impl std::fmt::Display) -> StoreError {
    StoreError::Embedded(error.to_string())
}

impl EmbeddedStore {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(embedded)?;
        }
        let db = Database::create(path).map_err(embedded)?;
        let txn = db.begin_write().map_err(embedded)?;
        txn.open_table(PLAYERS).map_err(embedded)?;
        txn.open_table(ACCOUNTS).map_err(embedded)?;
        txn.open_table(ACCOUNT_PLAYERS).map_err(embedded)?;
        txn.commit().map_err(embedded)?;
        Ok(Self { db })
    }

    /// Applies a batch in one transaction, each patch only if newer.
    pub fn save(&self, batch: &[Patch]) -> Result<SaveReport, StoreError> {
        let txn = self.db.begin_write().map_err(embedded)?;
        let mut report = SaveReport::default();
        {
            let mut table = txn.open_table(PLAYERS).map_err(embedded)?;
            for patch in batch {
                let stored = match table.get(patch.player).map_err(embedded)? {
                    Some(bytes) => Some(
                        rmp_serde::from_slice::<PlayerRecord>(bytes.value()).map_err(embedded)?,
                    ),
                    None => None,
                };
                let (record, applied) = apply(stored, patch);
                match applied {
                    Applied::Yes => {
                        let bytes = rmp_serde::to_vec_named(&record).map_err(embedded)?;
                        table
                            .insert(patch.player, bytes.as_slice())
                            .map_err(embedded)?;
                        report.applied += 1;
                    }
                    Applied::Stale => report.stale += 1,
                }
            }
        }
        txn.commit().map_err(embedded)?;
        Ok(report)
    }

    /// The newest record of `player`.
    pub fn load(&self, player: u64) -> Result<Option<PlayerRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(embedded)?;
        let table = txn.open_table(PLAYERS).map_err(embedded)?;
        match table.get(player).map_err(embedded)? {
            Some(bytes) => Ok(Some(
                rmp_serde::from_slice(bytes.value()).map_err(embedded)?,
            )),
            None => Ok(None),
        }
    }

    /// Creates `account` unless its username or player is taken. Write
    /// transactions are serialised, so of two racing registrations exactly
    /// one is created.
    pub fn create_account(&self, account: &Account) -> Result<Created, StoreError> {
        let txn = self.db.begin_write().map_err(embedded)?;
        {
            let mut accounts = txn.open_table(ACCOUNTS).map_err(embedded)?;
            let mut players = txn.open_table(ACCOUNT_PLAYERS).map_err(embedded)?;
            if accounts
                .get(account.username.as_str())
                .map_err(embedded)?
                .is_some()
                || players.get(account.player).map_err(embedded)?.is_some()
            {
                return Ok(Created::Taken);
            }
            let bytes = rmp_serde::to_vec_named(account).map_err(embedded)?;
            accounts
                .insert(account.username.as_str(), bytes.as_slice())
                .map_err(embedded)?;
            players
                .insert(account.player, account.username.as_str())
                .map_err(embedded)?;
        }
        txn.commit().map_err(embedded)?;
        Ok(Created::Yes)
    }

    /// The account named `username` (normalised).
    pub fn account(&self, username: &str) -> Result<Option<Account>, StoreError> {
        let txn = self.db.begin_read().map_err(embedded)?;
        let table = txn.open_table(ACCOUNTS).map_err(embedded)?;
        match table.get(username).map_err(embedded)? {
            Some(bytes) => Ok(Some(
                rmp_serde::from_slice(bytes.value()).map_err(embedded)?,
            )),
            None => Ok(None),
        }
    }
}
