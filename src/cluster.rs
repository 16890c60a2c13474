//! What a node shares with other nodes through Redis (when `redis_url` is
//! set): its entry in the node registry, and for each of its players the
//! single-login lock, presence and route.
//!
//! A player logging in on node B while node A holds them: B steals the
//! lock; A notices at its next lock refresh (every [`REFRESH`]), kicks the
//! connection and ends the avatar; the avatar's leave writes its progress
//! (cache and store) and only then clears the route; B waits for the route
//! to leave A (at most [`HANDOFF_WAIT`]) before loading. So B loads what A
//! last had, and A can never write over B afterwards: versions are taken
//! from the store at load.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tessera_persistence::{
    error::StoreError,
    flush::Flusher,
    redis_state::{NodeInfo, RedisState, Route},
};
use tessera_sim::{OutEvent, PlayerId};
use tokio::sync::mpsc;

/// How long a lock, presence entry or route lives without a refresh.
pub const LEASE: Duration = Duration::from_secs(10);
/// How often the node refreshes its leases and its registry entry.
pub const REFRESH: Duration = Duration::from_secs(1);
/// How long a login waits for another node to hand a player over.
pub const HANDOFF_WAIT: Duration = Duration::from_secs(5);

/// A player entering or leaving one of this node's worlds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// The player's avatar is in `world`.
    Joined(PlayerId, u64),
    /// The avatar left.
    Left(PlayerId),
}

/// This node's membership of the cluster.
#[derive(Clone)]
pub struct Cluster {
    redis: RedisState,
    node: String,
    /// Players whose avatar is in one of this node's worlds, and where.
    online: Arc<Mutex<BTreeMap<PlayerId, u64>>>,
    /// Whether the last heartbeat reached Redis (for `/readyz` and metrics).
    reachable: Arc<AtomicBool>,
}

impl Cluster {
    /// Joins the cluster as `node`.
    pub fn new(redis: RedisState, node: String) -> Self {
        Self {
            redis,
            node,
            online: Arc::default(),
            reachable: Arc::new(AtomicBool::new(true)),
        }
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether Redis answered the last heartbeat. While it does not, the
    /// node keeps simulating and saving to its store, but refuses logins
    /// (it cannot take their single-login lock).
    pub fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// The Redis connection.
    pub fn redis(&self) -> &RedisState {
        &self.redis
    }

    /// Takes `player`'s single-login lock for this node. When another node
    /// held it, waits until that node has handed the player over (its route
    /// moved away) or [`HANDOFF_WAIT`] passed; returns the previous holder.
    pub async fn claim(&self, player: PlayerId) -> Result<Option<String>, StoreError> {
        let previous = self.redis.steal_login(player.0, &self.node, LEASE).await?;
        if let Some(other) = previous.as_deref().filter(|other| *other != self.node) {
            tracing::info!(%player, from = other, "player logged in here while on another node; waiting for the hand-off");
            let deadline = tokio::time::Instant::now() + HANDOFF_WAIT;
            loop {
                let route = self.redis.route(player.0).await?;
                if route.as_ref().is_none_or(|r| r.node != other) {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    tracing::warn!(%player, from = other, "the other node did not hand the player over in time; loading what the stores have");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(previous)
    }

    /// Follows the worlds' joins and leaves: presence and route on join; on
    /// leave, the player's progress is written first and then the route,
    /// presence and lock are released (that order is the hand-off).
    pub async fn follow(
        self,
        mut presence: mpsc::UnboundedReceiver<Presence>,
        flusher: Arc<Flusher>,
    ) {
        while let Some(event) = presence.recv().await {
            let result = match event {
                Presence::Joined(player, world) => {
                    self.online
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(player, world);
                    self.announce(player, world).await
                }
                Presence::Left(player) => {
                    self.online
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&player);
                    if let Err(error) = flusher.flush_player(player.0).await {
                        // The route stays: a node taking the player over waits
                        // out HANDOFF_WAIT and reads the cache instead.
                        tracing::warn!(%error, %player, "could not write a leaving player's progress");
                        continue;
                    }
                    self.release(player).await
                }
            };
            if let Err(error) = result {
                tracing::warn!(%error, "redis: cannot update presence");
            }
        }
    }

    async fn announce(&self, player: PlayerId, world: u64) -> Result<(), StoreError> {
        let route = Route {
            node: self.node.clone(),
            world,
        };
        self.redis.set_route(player.0, &route, LEASE).await?;
        self.redis.set_online(player.0, &self.node, LEASE).await
    }

    async fn release(&self, player: PlayerId) -> Result<(), StoreError> {
        self.redis.clear_route(player.0, &self.node).await?;
        self.redis.set_offline(player.0).await?;
        self.redis.unlock_login(player.0, &self.node).await?;
        Ok(())
    }

    /// Every [`REFRESH`]: the registry entry, and each online player's
    /// lease. A player whose lock another node took is sent to `evict`.
    pub async fn heartbeat(
        self,
        info: impl Fn() -> NodeInfo,
        evict: std::sync::mpsc::Sender<PlayerId>,
    ) {
        let mut ticker = tokio::time::interval(REFRESH);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(error) = self.redis.heartbeat(&info(), LEASE).await {
                if self.reachable.swap(false, Ordering::Relaxed) {
                    tracing::warn!(%error, "redis is unreachable; logins are refused until it returns");
                }
                continue;
            }
            if !self.reachable.swap(true, Ordering::Relaxed) {
                tracing::info!("redis is reachable again");
            }
            let online: Vec<(PlayerId, u64)> = self
                .online
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(p, w)| (*p, *w))
                .collect();
            for (player, world) in online {
                match self.redis.refresh_login(player.0, &self.node, LEASE).await {
                    Ok(true) => {
                        if let Err(error) = self.announce(player, world).await {
                            tracing::warn!(%error, %player, "redis: cannot refresh presence");
                        }
                    }
                    // The lease lapsed (a Redis outage) and nobody took it:
                    // still ours.
                    Ok(false)
                        if matches!(
                            self.redis.lock_login(player.0, &self.node, LEASE).await,
                            Ok(tessera_persistence::redis_state::LockOutcome::Acquired)
                        ) => {}
                    Ok(false) => {
                        tracing::info!(%player, "player logged in on another node; handing over");
                        self.online
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(&player);
                        let _ = evict.send(player);
                    }
                    Err(error) => {
                        tracing::warn!(%error, %player, "redis: cannot refresh a login lock");
                        break;
                    }
                }
            }
        }
    }

    /// Leaves the registry (shutdown).
    pub async fn deregister(&self) {
        if let Err(error) = self.redis.deregister(&self.node).await {
            tracing::warn!(%error, "redis: cannot deregister the node");
        }
    }
}

/// The joins and leaves in a world's tick output, for [`Cluster::follow`].
pub fn presence_events(events: &[OutEvent], world: u64) -> Vec<Presence> {
    events
        .iter()
        .filter_map(|event| match event {
            OutEvent::Joined { player, .. } => Some(Presence::Joined(*player, world)),
            OutEvent::Left { player } => Some(Presence::Left(*player)),
            _ => None,
        })
        .collect()
}
