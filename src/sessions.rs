//! Login sessions: the opaque id a login returns, good for fresh connect
//! tokens (`POST /v1/token`) until it expires, so a client that lost its
//! connection after the 30 s token ran out need not send a password again.
//!
//! With Redis, sessions are shared by every node and survive restarts;
//! without it they live in this node's memory (a restart signs everyone
//! out, which a single node can afford).

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tessera_persistence::{error::StoreError, redis_state::RedisState};
use tessera_sim::PlayerId;

/// Where sessions are kept.
#[derive(Clone)]
pub enum Sessions {
    /// In this node's memory: session -> (player, expiry).
    Local(Arc<Mutex<BTreeMap<String, (PlayerId, Instant)>>>),
    /// In Redis, with a TTL.
    Redis(RedisState),
}

impl Sessions {
    /// Sessions in memory.
    pub fn local() -> Self {
        Self::Local(Arc::default())
    }

    /// Records a new session.
    pub async fn put(
        &self,
        session: &str,
        player: PlayerId,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        match self {
            Sessions::Local(map) => {
                let now = Instant::now();
                let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
                // Expired sessions go whenever a new one comes: the map
                // stays as large as the live sessions.
                map.retain(|_, (_, expiry)| *expiry > now);
                map.insert(session.to_string(), (player, now + ttl));
                Ok(())
            }
            Sessions::Redis(redis) => redis.put_session(session, player.0, ttl).await,
        }
    }

    /// The player of a live session.
    pub async fn player(&self, session: &str) -> Result<Option<PlayerId>, StoreError> {
        match self {
            Sessions::Local(map) => {
                let map = map.lock().unwrap_or_else(|p| p.into_inner());
                Ok(map
                    .get(session)
                    .filter(|(_, expiry)| *expiry > Instant::now())
                    .map(|(player, _)| *player))
            }
            Sessions::Redis(redis) => Ok(redis.session(session).await?.map(PlayerId)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_sessions_expire() {
        let sessions = Sessions::local();
        sessions
            .put("a", PlayerId(1), Duration::from_secs(60))
            .await
            .unwrap();
        sessions
            .put("b", PlayerId(2), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(sessions.player("a").await.unwrap(), Some(PlayerId(1)));
        assert_eq!(sessions.player("b").await.unwrap(), None);
        assert_eq!(sessions.player("c").await.unwrap(), None);
    }
}
