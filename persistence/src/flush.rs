//! The flush worker: changed parts arrive from worlds (a non-blocking send
//! after each tick), are merged per player, and are written as one batch per
//! interval, off every tick. A failed write keeps everything pending and is
//! retried with exponential back-off and jitter; nothing acknowledged by a
//! store is ever dropped, and a write never carries an older version than
//! one already attempted for that player.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use tokio::sync::{mpsc, oneshot};

pub use crate::backend::Backend;
use crate::{
    error::StoreError,
    histogram::{DURATION_BOUNDS_US, Histogram, SIZE_BOUNDS},
    record::{Patch, PlayerRecord, SaveReport},
    redis_state::RedisState,
};

/// How the worker flushes.
#[derive(Clone)]
pub struct FlushSettings {
    /// Time between flushes.
    pub interval: Duration,
    /// Pending players beyond which the node should refuse new logins.
    pub max_pending: usize,
    /// Longest wait between retries.
    pub max_backoff: Duration,
    /// The write-behind cache, if the node uses Redis: each batch goes there
    /// first, so another node can load a player's newest progress even while
    /// the durable store is down.
    pub cache: Option<RedisState>,
    /// How long a cached record lives after its last write.
    pub cache_ttl: Duration,
}

impl Default for FlushSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            max_pending: 100_000,
            max_backoff: Duration::from_secs(5),
            cache: None,
            cache_ttl: Duration::from_secs(3600),
        }
    }
}

/// Counters for `/metrics` and `/readyz`.
#[derive(Debug)]
pub struct FlushStats {
    /// Batches written.
    pub batches: AtomicU64,
    /// Player records written.
    pub written: AtomicU64,
    /// Patches the store refused as not newer.
    pub stale: AtomicU64,
    /// Failed batch writes.
    pub failures: AtomicU64,
    /// Players with changes not yet written.
    pub pending: AtomicU64,
    /// Size of the last batch.
    pub last_batch: AtomicU64,
    /// Latency of the last successful write, microseconds.
    pub last_latency_us: AtomicU64,
    /// 1 while the store is failing.
    pub outage: AtomicU64,
    /// Latency of every successful batch write, microseconds.
    pub latency_us: Histogram,
    /// Players per successful batch.
    pub batch_sizes: Histogram,
}

impl Default for FlushStats {
    fn default() -> Self {
        Self {
            batches: AtomicU64::default(),
            written: AtomicU64::default(),
            stale: AtomicU64::default(),
            failures: AtomicU64::default(),
            pending: AtomicU64::default(),
            last_batch: AtomicU64::default(),
            last_latency_us: AtomicU64::default(),
            outage: AtomicU64::default(),
            latency_us: Histogram::new(DURATION_BOUNDS_US),
            batch_sizes: Histogram::new(SIZE_BOUNDS),
        }
    }
}

/// Changed parts of players, as a world hands them over.
pub type Changes = Vec<(u64, BTreeMap<String, serde_json::Value>)>;

enum Message {
    Changes(Changes),
    Leaving(Vec<u64>),
    FlushPlayer(u64, oneshot::Sender<Result<SaveReport, StoreError>>),
    Version(u64, u64),
    FlushNow(oneshot::Sender<Result<SaveReport, StoreError>>),
    Shutdown(Duration, oneshot::Sender<usize>),
}

/// Hands changes to the worker; cheap to clone, never blocks.
#[derive(Clone, Debug)]
pub struct ChangeSender(mpsc::UnboundedSender<Message>);

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Message")
    }
}

impl ChangeSender {
    /// Queues changes; `false` if the worker has stopped.
    pub fn send(&self, changes: Changes) -> bool {
        changes.is_empty() || self.0.send(Message::Changes(changes)).is_ok()
    }

    /// Asks for these players' pending changes to be written promptly (they
    /// left their world); send their last changes first.
    pub fn leaving(&self, players: Vec<u64>) -> bool {
        players.is_empty() || self.0.send(Message::Leaving(players)).is_ok()
    }
}

/// The running worker.
pub struct Flusher {
    tx: mpsc::UnboundedSender<Message>,
    stats: Arc<FlushStats>,
    max_pending: usize,
    backend: Backend,
    cache: Option<RedisState>,
}

/// The newest progress from the durable record and the cached one: the
/// cache holds only parts written since it last started over, each newer
/// than the durable copy when its version is, so they overlay it.
pub fn merge_cached(
    durable: Option<PlayerRecord>,
    cached: Option<PlayerRecord>,
) -> Option<PlayerRecord> {
    match (durable, cached) {
        (durable, None) => durable,
        (None, Some(cached)) => Some(cached),
        (Some(durable), Some(cached)) if cached.version <= durable.version => Some(durable),
        (Some(mut durable), Some(cached)) => {
            durable.version = cached.version;
            durable.parts.extend(cached.parts);
            Some(durable)
        }
    }
}

impl Flusher {
    /// Starts the worker on the current tokio runtime.
    pub fn start(backend: Backend, settings: FlushSettings) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(FlushStats::default());
        let max_pending = settings.max_pending;
        let cache = settings.cache.clone();
        tokio::spawn(Worker::new(backend.clone(), settings, stats.clone()).run(rx));
        Self {
            tx,
            stats,
            max_pending,
            backend,
            cache,
        }
    }

    /// Where worlds send their changes.
    pub fn sender(&self) -> ChangeSender {
        ChangeSender(self.tx.clone())
    }

    /// The store (for loading players).
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The newest record of `player`: the durable store's, overlaid with
    /// the write-behind cache's when that is newer. Either failing to read
    /// is an error (the caller retries rather than loads stale progress).
    pub async fn load(&self, player: u64) -> Result<Option<PlayerRecord>, StoreError> {
        let durable = self.backend.load(player).await?;
        // A cache that cannot be read may hold newer progress than the
        // store (another node's writes while the store was down): loading
        // without it could roll the player back, so that is an error too.
        let cached = match &self.cache {
            Some(cache) => match cache.cached_record(player).await {
                Ok(cached) => cached,
                // Unreadable rather than unreachable: drop it, the store's
                // record is the truth up to its last write.
                Err(error @ StoreError::CorruptCache { .. }) => {
                    tracing::error!(%error, player, "corrupt cached record dropped");
                    let _ = cache.evict(player).await;
                    None
                }
                Err(error) => return Err(error),
            },
            None => None,
        };
        Ok(merge_cached(durable, cached))
    }

    /// Counters.
    pub fn stats(&self) -> Arc<FlushStats> {
        self.stats.clone()
    }

    /// Whether so much is waiting for the store that new logins should wait.
    pub fn over_bound(&self) -> bool {
        self.stats.pending.load(Ordering::Relaxed) as usize >= self.max_pending
    }

    /// Tells the worker the version a store holds for `player`, so its next
    /// write for them is newer (after a restart, or a clock behind another node's).
    pub fn note_version(&self, player: u64, version: u64) {
        let _ = self.tx.send(Message::Version(player, version));
    }

    /// Writes what is pending for one player now (before loading them at
    /// login); costs nothing when they have nothing pending.
    pub async fn flush_player(&self, player: u64) -> Result<SaveReport, StoreError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Message::FlushPlayer(player, done))
            .map_err(|_| StoreError::Embedded("flush worker stopped".into()))?;
        wait.await
            .map_err(|_| StoreError::Embedded("flush worker stopped".into()))?
    }

    /// Writes everything pending now (leaving players, hand-offs, tests).
    pub async fn flush_now(&self) -> Result<SaveReport, StoreError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Message::FlushNow(done))
            .map_err(|_| StoreError::Embedded("flush worker stopped".into()))?;
        wait.await
            .map_err(|_| StoreError::Embedded("flush worker stopped".into()))?
    }

    /// Flushes what is pending, retrying until `deadline`; returns how many
    /// players could not be written (0 is a clean shutdown).
    pub async fn shutdown(&self, deadline: Duration) -> usize {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Shutdown(deadline, done)).is_err() {
            return self.stats.pending.load(Ordering::Relaxed) as usize;
        }
        wait.await.unwrap_or(usize::MAX)
    }
}

struct Worker {
    backend: Backend,
    settings: FlushSettings,
    stats: Arc<FlushStats>,
    pending: BTreeMap<u64, BTreeMap<String, serde_json::Value>>,
    last_version: BTreeMap<u64, u64>,
    attempt: u32,
    retry_at: Option<Instant>,
    /// Players whose last cache write failed: their cached record may lack
    /// a patch, so it is dropped before it is written again.
    tainted: BTreeSet<u64>,
    /// Players who left: written together at `urgent_at`.
    urgent: BTreeSet<u64>,
    urgent_at: Option<tokio::time::Instant>,
}

/// How long leaving players wait so that many leaving together (a room
/// ending, a node draining) share one write.
const LEAVE_DELAY: Duration = Duration::from_millis(25);

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

impl Worker {
    fn new(backend: Backend, settings: FlushSettings, stats: Arc<FlushStats>) -> Self {
        Self {
            backend,
            settings,
            stats,
            pending: BTreeMap::new(),
            last_version: BTreeMap::new(),
            attempt: 0,
            retry_at: None,
            urgent: BTreeSet::new(),
            urgent_at: None,
            tainted: BTreeSet::new(),
        }
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Message>) {
        // The first flush one interval from now, not at once (`interval`'s
        // first tick is immediate): changes sent right after start wait for
        // the interval like any others.
        let mut ticker = tokio::time::interval_at(
            tokio::time::Instant::now() + self.settings.interval,
            self.settings.interval,
        );
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                message = rx.recv() => match message {
                                        Some(Message::Changes(changes)) => self.absorb(changes),
                    Some(Message::Leaving(players)) => {
                        self.urgent.extend(players.into_iter().filter(|p| self.pending.contains_key(p)));
                        if !self.urgent.is_empty() && self.urgent_at.is_none() {
                            self.urgent_at = Some(tokio::time::Instant::now() + LEAVE_DELAY);
                        }
                    }
                    Some(Message::Version(player, version)) => {
                        let known = self.last_version.entry(player).or_default();
                        *known = (*known).max(version);
                    }
                                        Some(Message::FlushPlayer(player, done)) => {
                        let result = self.flush_only(Some(&BTreeSet::from([player]))).await;
                        let _ = done.send(result);
                    }
                    Some(Message::FlushNow(done)) => {
                        let result = self.flush().await;
                        let _ = done.send(result);
                    }
                    Some(Message::Shutdown(deadline, done)) => {
                        let until = Instant::now() + deadline;
                        while rx.try_recv().map(|m| if let Message::Changes(c) = m { self.absorb(c) }).is_ok() {}
                        while !self.pending.is_empty() && Instant::now() < until {
                            if self.flush().await.is_err() {
                                tokio::time::sleep(Duration::from_millis(200)).await;
                            }
                        }
                        let _ = done.send(self.pending.len());
                        return;
                    }
                    None => return,
                },
                // A deadline, not a fresh sleep per loop: changes arriving
                // every tick must not postpone it forever.
                () = tokio::time::sleep_until(self.urgent_at.unwrap_or_else(tokio::time::Instant::now)), if self.urgent_at.is_some() && self.retry_at.is_none() => {
                    self.urgent_at = None;
                    let urgent = std::mem::take(&mut self.urgent);
                    let _ = self.flush_only(Some(&urgent)).await;
                }
                _ = ticker.tick() => {
                    if self.retry_at.is_none_or(|at| Instant::now() >= at) {
                        let _ = self.flush().await;
                    }
                }
            }
        }
    }

    fn absorb(&mut self, changes: Changes) {
        for (player, parts) in changes {
            self.pending.entry(player).or_default().extend(parts);
        }
        self.stats
            .pending
            .store(self.pending.len() as u64, Ordering::Relaxed);
    }

    async fn flush(&mut self) -> Result<SaveReport, StoreError> {
        self.flush_only(None).await
    }

    /// Puts a batch in the write-behind cache before the durable store. The
    /// cache is a convenience, never the only copy: a failure is logged and
    /// the durable write goes ahead.
    async fn write_behind(&mut self, batch: &[Patch]) {
        let Some(cache) = &self.settings.cache else {
            return;
        };
        for player in std::mem::take(&mut self.tainted) {
            if cache.evict(player).await.is_err() {
                self.tainted.insert(player);
            }
        }
        // Still tainted players stay out until their stale record is gone.
        let clean: Vec<Patch> = batch
            .iter()
            .filter(|p| !self.tainted.contains(&p.player))
            .cloned()
            .collect();
        if let Err(error) = cache.cache_patches(&clean, self.settings.cache_ttl).await {
            tracing::warn!(%error, players = clean.len(), "cannot write the cache; the store still gets the batch");
            self.tainted.extend(clean.iter().map(|p| p.player));
        }
    }

    /// Writes everything pending, or only `players`'.
    async fn flush_only(
        &mut self,
        players: Option<&BTreeSet<u64>>,
    ) -> Result<SaveReport, StoreError> {
        let wanted = |p: &u64| players.is_none_or(|only| only.contains(p));
        if !self.pending.keys().any(wanted) {
            return Ok(SaveReport::default());
        }
        // Versions only grow, per player, across attempts and restarts.
        let now = unix_micros();
        let batch: Vec<Patch> = self
            .pending
            .iter()
            .filter(|(p, _)| wanted(p))
            .map(|(player, parts)| {
                let version = self
                    .last_version
                    .get(player)
                    .map_or(now, |v| (*v + 1).max(now));
                self.last_version.insert(*player, version);
                Patch {
                    player: *player,
                    version,
                    parts: parts.clone(),
                }
            })
            .collect();
        let size = batch.len();
        let batch_players: Vec<u64> = batch.iter().map(|p| p.player).collect();
        self.write_behind(&batch).await;
        let started = Instant::now();
        match self.backend.save(batch).await {
            Ok(report) => {
                for patch in &batch_players {
                    self.pending.remove(patch);
                }
                self.attempt = 0;
                self.retry_at = None;
                self.stats.batches.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .written
                    .fetch_add(report.applied as u64, Ordering::Relaxed);
                self.stats
                    .stale
                    .fetch_add(report.stale as u64, Ordering::Relaxed);
                self.stats.last_batch.store(size as u64, Ordering::Relaxed);
                let latency = started.elapsed().as_micros() as u64;
                self.stats.last_latency_us.store(latency, Ordering::Relaxed);
                self.stats.latency_us.record(latency);
                self.stats.batch_sizes.record(size as u64);
                self.stats
                    .pending
                    .store(self.pending.len() as u64, Ordering::Relaxed);
                if self.stats.outage.swap(0, Ordering::Relaxed) == 1 {
                    tracing::info!(players = size, "store is back; pending changes written");
                }
                Ok(report)
            }
            Err(error) => {
                self.attempt = self.attempt.saturating_add(1);
                let base = Duration::from_millis(100).saturating_mul(1 << self.attempt.min(16));
                let backoff = base.min(self.settings.max_backoff);
                // ±20 % jitter so many nodes do not retry in step.
                let jitter = 0.8
                    + f64::from(
                        SystemTime::now()
                            .duration_since(UNIX_EPOCH)
                            .map_or(0, |d| d.subsec_nanos())
                            % 400,
                    ) / 1000.0;
                self.retry_at = Some(Instant::now() + backoff.mul_f64(jitter));
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                self.stats.outage.store(1, Ordering::Relaxed);
                tracing::warn!(%error, pending = self.pending.len(), retry_in_ms = backoff.as_millis() as u64, "flush failed; keeping changes");
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(version: u64, parts: &[(&str, serde_json::Value)]) -> PlayerRecord {
        PlayerRecord {
            player: 1,
            version,
            parts: parts
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    #[test]
    fn a_newer_cache_overlays_the_store_part_by_part_and_an_older_one_is_ignored() {
        let durable = record(5, &[("xp", json!(10)), ("position", json!({"x": 1}))]);
        let newer = record(7, &[("xp", json!(30))]);
        let merged = merge_cached(Some(durable.clone()), Some(newer)).unwrap();
        assert_eq!(merged.version, 7);
        assert_eq!(merged.parts["xp"], json!(30), "the cache's newer part wins");
        assert_eq!(
            merged.parts["position"],
            json!({"x": 1}),
            "parts it lacks come from the store"
        );

        let older = record(4, &[("xp", json!(1))]);
        assert_eq!(
            merge_cached(Some(durable.clone()), Some(older)),
            Some(durable.clone())
        );
        assert_eq!(merge_cached(Some(durable.clone()), None), Some(durable));
        let only_cached = record(2, &[("xp", json!(2))]);
        assert_eq!(
            merge_cached(None, Some(only_cached.clone())),
            Some(only_cached)
        );
        assert_eq!(merge_cached(None, None), None);
    }
}
