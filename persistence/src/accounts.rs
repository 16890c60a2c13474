//! Accounts: a username, the player it plays as, and a password hash.
//!
//! Stores keep accounts next to players (the embedded store in its own
//! table, MongoDB in an `accounts` collection with a unique index on
//! `username`). Creating an account is atomic in both: two registrations of
//! one name race to exactly one winner. Hashing and checking passwords is the
//! login's job; a store only ever sees the hash.

use serde::{Deserialize, Serialize};

/// One account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The normalised (lower-case) username, unique per store.
    pub username: String,
    /// The player this account plays as.
    pub player: u64,
    /// The password hash in PHC string format (algorithm, parameters, salt).
    pub password_hash: String,
    /// When the account was created, Unix milliseconds.
    pub created_unix_ms: u64,
}

/// What creating an account did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Created {
    /// The account is new and stored.
    Yes,
    /// The username (or, astronomically rarely, the player id) is taken;
    /// nothing changed.
    Taken,
}
