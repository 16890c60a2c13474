//! Progress loaded for players' joins: at login (or a fresh connect
//! token), and for the players of a zone started again after a crash. A
//! zone forgets a player's entry once it has welcomed them: from then on
//! the avatar, not the loaded record, is their newest state.
//!
//! Some entries are never used: a client that logged in and never
//! connected, a player parked in a room who left the node. Those are
//! forgotten once nobody can use them any more: no connection of the
//! player is open or in its reconnect grace, and the entry is older than a
//! connect token lives. Never sooner: a connected player's `Join` without
//! its entry would spawn a fresh avatar and save it over their progress.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use tessera_sim::{PlayerId, input::SavedProgress};

/// Beyond a token's life, how long an entry stays for a connection whose
/// token was accepted at the last moment and that the net thread has not
/// counted yet.
pub const LATE_CONNECT: Duration = Duration::from_secs(2);

/// Loaded progress by player, shared by the HTTP handlers that load it,
/// the net thread that hands it to joins, and the zones that consume it.
#[derive(Clone, Default)]
pub struct Profiles(Arc<Mutex<BTreeMap<PlayerId, Loaded>>>);

struct Loaded {
    progress: SavedProgress,
    at: Instant,
}

impl Profiles {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<PlayerId, Loaded>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `player`'s progress, loaded `at` (replacing what was loaded before).
    pub fn insert(&self, player: PlayerId, progress: SavedProgress, at: Instant) {
        self.lock().insert(player, Loaded { progress, at });
    }

    /// `player`'s loaded progress, kept for a retry (a join the world
    /// refuses must still restore on the next try).
    pub fn get(&self, player: PlayerId) -> Option<SavedProgress> {
        self.lock()
            .get(&player)
            .map(|loaded| loaded.progress.clone())
    }

    /// Forgets the entries of `players`, whom a zone has welcomed.
    pub fn consume(&self, players: &[PlayerId]) {
        if players.is_empty() {
            return;
        }
        let mut entries = self.lock();
        for player in players {
            entries.remove(player);
        }
    }

    /// Forgets entries loaded before `now - unused_for` of players for whom
    /// `present` is false (neither connected nor within their reconnect
    /// grace); returns how many went.
    pub fn expire(
        &self,
        now: Instant,
        unused_for: Duration,
        present: &dyn Fn(PlayerId) -> bool,
    ) -> usize {
        let mut entries = self.lock();
        let before = entries.len();
        entries.retain(|player, loaded| {
            now.saturating_duration_since(loaded.at) <= unused_for || present(*player)
        });
        before - entries.len()
    }

    /// Entries waiting for their player's join.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no entry waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(xp: u64) -> SavedProgress {
        SavedProgress {
            xp,
            ..SavedProgress::default()
        }
    }

    #[test]
    fn only_old_entries_of_absent_players_expire() {
        let profiles = Profiles::default();
        let start = Instant::now();
        let life = Duration::from_secs(30);
        profiles.insert(PlayerId(1), progress(1), start);
        profiles.insert(PlayerId(2), progress(2), start);
        profiles.insert(PlayerId(3), progress(3), start + Duration::from_secs(20));
        let present = |player: PlayerId| player == PlayerId(2);

        // Within a token's life nothing goes, present or not.
        assert_eq!(profiles.expire(start + life, life, &present), 0);
        assert_eq!(profiles.len(), 3);

        // Past it: the absent player's entry goes; the connected one's
        // stays for their join, and the younger entry waits its turn.
        let later = start + life + Duration::from_secs(1);
        assert_eq!(profiles.expire(later, life, &present), 1);
        assert_eq!(profiles.get(PlayerId(1)), None);
        assert_eq!(profiles.get(PlayerId(2)), Some(progress(2)));
        assert_eq!(profiles.get(PlayerId(3)), Some(progress(3)));

        // A fresh login replaces an old entry and starts its life again.
        profiles.insert(PlayerId(1), progress(4), later);
        assert_eq!(profiles.expire(later + life, life, &|_| false), 2);
        assert_eq!(profiles.get(PlayerId(1)), Some(progress(4)));

        profiles.consume(&[PlayerId(1)]);
        assert!(profiles.is_empty());
    }
}
