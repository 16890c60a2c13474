//! Username + password accounts: registration and sign-in.
//!
//! Passwords are hashed with Argon2id (the crate's defaults: 19 MiB, two
//! passes) and only the PHC string reaches the store. Hashing is deliberately
//! slow, so it runs on blocking threads behind a small semaphore: a burst of
//! logins queues there instead of starving the node's async workers. An
//! unknown username costs the same hash as a wrong password, so response
//! times do not tell which names exist.

use std::sync::Arc;

use argon2::{
    Argon2,
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
};
use tessera_persistence::{
    accounts::{Account, Created},
    error::StoreError,
    flush::Backend,
};
use tessera_sim::PlayerId;
use tokio::sync::Semaphore;

/// Why registration or sign-in failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// The username breaks the rules.
    #[error("username must be 3 to 32 characters of a-z, 0-9, '_', '-' or '.'")]
    BadUsername,
    /// The password breaks the rules.
    #[error("password must be 8 to 128 characters")]
    BadPassword,
    /// Someone has this username.
    #[error("username is taken")]
    Taken,
    /// Unknown username or wrong password (deliberately not told apart).
    #[error("invalid username or password")]
    InvalidCredentials,
    /// The store could not be reached; nothing was created.
    #[error("accounts are unavailable right now, try again shortly ({0})")]
    Store(#[from] StoreError),
    /// Hashing failed (never expected with valid parameters).
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// The canonical form of a username: trimmed, lower-case, checked.
pub fn normalize_username(name: &str) -> Result<String, AccountError> {
    let name = name.trim().to_ascii_lowercase();
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.".contains(c);
    if (3..=32).contains(&name.len()) && name.chars().all(allowed) {
        Ok(name)
    } else {
        Err(AccountError::BadUsername)
    }
}

fn check_password(password: &str) -> Result<(), AccountError> {
    if (8..=128).contains(&password.chars().count()) {
        Ok(())
    } else {
        Err(AccountError::BadPassword)
    }
}

/// The player an account plays as: a stable 63-bit hash of the username,
/// in a different domain from device ids so the two can never meet.
pub fn player_for_username(username: &str) -> PlayerId {
    let mut hasher = tessera_sim::hash::StableHasher::new();
    hasher.write_bytes(b"account\0");
    hasher.write_bytes(username.as_bytes());
    PlayerId((hasher.finish() & 0x7FFF_FFFF_FFFF_FFFF).max(1))
}

fn hash_password(password: &str) -> Result<String, AccountError> {
    let salt = SaltString::encode_b64(&tessera_net::transport::random_bytes()[..16])
        .map_err(|e| AccountError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Registers and signs in accounts against the node's store.
#[derive(Clone)]
pub struct Accounts {
    store: Backend,
    hashing: Arc<Semaphore>,
    /// Verified against when the username is unknown, so that costs the same.
    decoy: Arc<tokio::sync::OnceCell<String>>,
}

impl Accounts {
    /// Accounts in `store`, hashing at most `parallel` passwords at a time.
    pub fn new(store: Backend, parallel: usize) -> Self {
        Self {
            store,
            hashing: Arc::new(Semaphore::new(parallel.max(1))),
            decoy: Default::default(),
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AccountError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|e| AccountError::Hash(e.to_string()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| AccountError::Hash(e.to_string()))
    }

    /// Creates an account; returns its player.
    pub async fn register(&self, username: &str, password: &str) -> Result<PlayerId, AccountError> {
        let username = normalize_username(username)?;
        check_password(password)?;
        // Cheap refusal first; the store's unique index decides races.
        if self.store.account(&username).await?.is_some() {
            return Err(AccountError::Taken);
        }
        let password = password.to_string();
        let password_hash = self.blocking(move || hash_password(&password)).await??;
        let player = player_for_username(&username);
        let account = Account {
            username,
            player: player.0,
            password_hash,
            created_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        };
        match self.store.create_account(account).await? {
            Created::Yes => Ok(player),
            Created::Taken => Err(AccountError::Taken),
        }
    }

    /// Checks a username and password; returns the account's player.
    pub async fn sign_in(&self, username: &str, password: &str) -> Result<PlayerId, AccountError> {
        let Ok(username) = normalize_username(username) else {
            return Err(AccountError::InvalidCredentials);
        };
        let account = self.store.account(&username).await?;
        let hash = match &account {
            Some(account) => account.password_hash.clone(),
            None => self
                .decoy
                .get_or_try_init(|| async {
                    self.blocking(|| hash_password("decoy password")).await?
                })
                .await?
                .clone(),
        };
        let password = password.to_string();
        let matches = self
            .blocking(move || verify_password(&password, &hash))
            .await?;
        match account {
            Some(account) if matches => Ok(PlayerId(account.player)),
            _ => Err(AccountError::InvalidCredentials),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_normalised_and_checked() {
        assert_eq!(normalize_username("  Alice_01 ").unwrap(), "alice_01");
        for bad in ["al", "a".repeat(33).as_str(), "bob smith", "zoë", "a/b", ""] {
            assert_eq!(
                normalize_username(bad),
                Err(AccountError::BadUsername),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_hash_verifies_only_its_password_and_salts_differ() {
        let one = hash_password("correct horse").unwrap();
        let two = hash_password("correct horse").unwrap();
        assert!(one.starts_with("$argon2id$"), "{one}");
        assert_ne!(one, two, "every hash has its own salt");
        assert!(verify_password("correct horse", &one));
        assert!(!verify_password("correct hors", &one));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn account_players_never_meet_device_players() {
        assert_ne!(
            player_for_username("alice"),
            crate::login::player_for_device("alice")
        );
        assert_eq!(player_for_username("alice"), player_for_username("alice"));
    }
}
