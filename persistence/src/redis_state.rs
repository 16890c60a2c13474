//! The node's Redis layer: state that several nodes share and that may be
//! lost without losing progress (the durable store keeps that).
//!
//! - Sessions (`session:<id>` -> player) and the single-login lock
//!   (`login:<player>` -> owner), both with a TTL.
//! - Routing (`route:<player>`, a hash `node`, `world`): where a player is.
//! - The node registry: `node:<id>` holds a [`NodeInfo`] as JSON with a
//!   heartbeat TTL, `nodes` is the set of ids that may still be alive.
//! - Presence: `online:<player>` -> node with a TTL, and the sorted set
//!   `online` scored by expiry (ms, Redis's clock) for counting.
//! - A write-behind cache of hot records: `record:<player>`, a hash with
//!   `version` and one `part:<key>` field per part, each the part encoded
//!   with rmp-serde. It applies a patch only if newer, like the stores.
//!
//! Every key starts with the prefix given to [`RedisState::connect`], so
//! deployments and tests can share a server. Scripts read keys they are not
//! passed (the registry), so the layer expects one server, not a cluster.
//! Expiry is always Redis's own clock: nodes' clocks disagree.

use std::{collections::BTreeMap, sync::LazyLock, time::Duration};

use redis::{AsyncCommands, Script, aio::ConnectionManager, aio::ConnectionManagerConfig};
use serde::{Deserialize, Serialize};

use crate::{
    error::StoreError,
    record::{Patch, PlayerRecord},
};

/// Players per round trip when caching patches: one pipeline must answer
/// within the response timeout, and 5,000 small scripts take milliseconds.
pub const CACHE_CHUNK: usize = 5_000;

/// How the connection behaves when Redis is slow or away.
#[derive(Clone, Debug)]
pub struct RedisSettings {
    /// Longest wait to open a connection, and for any reply.
    pub timeout: Duration,
    /// Extra connection attempts per (re)connect. Each costs up to
    /// `timeout`, so keep it small: callers retry on their own schedule.
    pub reconnect_retries: usize,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(2),
            reconnect_retries: 1,
        }
    }
}

/// Whether [`RedisState::lock_login`] got the lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockOutcome {
    /// The caller holds it now.
    Acquired,
    /// Someone else does: their owner string.
    HeldBy(String),
}

/// Where a player is being simulated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The node id.
    pub node: String,
    /// The world on that node.
    pub world: u64,
}

/// What a node publishes about itself with each heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Unique node id.
    pub id: String,
    /// Its HTTP address.
    pub http: String,
    /// Its UDP addresses, one per netcode server.
    pub udp: Vec<String>,
    /// Players it holds.
    pub players: u64,
    /// When it started, unix milliseconds (informational only).
    pub started_unix_ms: u64,
}

/// The outcome of [`RedisState::cache_patches`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheReport {
    /// Patches written to the cache.
    pub applied: usize,
    /// Patches refused because the cache held this version or a newer one.
    pub stale: usize,
}

/// The shared state of a node in Redis; cheap to clone, reconnects by itself.
#[derive(Clone, Debug)]
pub struct RedisState {
    conn: ConnectionManager,
    prefix: String,
}

fn redis(error: impl std::fmt::Display) -> StoreError {
    StoreError::Redis(error.to_string())
}

/// Milliseconds for `PX`/`PEXPIRE`, which refuse 0: a TTL shorter than a
/// millisecond expires as soon as Redis allows.
fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Redis's clock in ms, so expiry never depends on a node's clock. The
/// value is formatted by hand: Lua would print it in exponent notation.
const NOW_MS: &str = "local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
";

static LOCK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
return redis.call('GET', KEYS[1])",
    )
});

static REFRESH_IF_OWNER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0",
    )
});

static DELETE_IF_OWNER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0",
    )
});

static CLEAR_ROUTE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('HGET', KEYS[1], 'node') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0",
    )
});

static LIVE_NODES: LazyLock<Script> = LazyLock::new(|| {
    // Reading and pruning in one script: a node that heartbeats between a
    // read and a prune must not be dropped from the set.
    Script::new(
        "local live = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local info = redis.call('GET', ARGV[1] .. id)
  if info then table.insert(live, info) else redis.call('SREM', KEYS[1], id) end
end
return live",
    )
});

static SET_ONLINE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NOW_MS}redis.call('ZADD', KEYS[1], string.format('%.0f', now + tonumber(ARGV[3])), ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1"
    ))
});

static ONLINE_COUNT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NOW_MS}redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))
return redis.call('ZCARD', KEYS[1])"
    ))
});

static CACHE_PATCH: LazyLock<Script> = LazyLock::new(|| {
    // Versions are compared as decimal strings (length, then bytes): Lua
    // numbers are doubles and would round a u64. A held version of 0 means
    // "nothing yet", as in `record::apply`.
    Script::new(
        "local held = redis.call('HGET', KEYS[1], 'version')
if held and held ~= '0' then
  local v = ARGV[1]
  if #v < #held or (#v == #held and v <= held) then return 0 end
end
redis.call('HSET', KEYS[1], 'version', ARGV[1])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1",
    )
});

const PART_FIELD: &str = "part:";

impl RedisState {
    /// Connects to `url` with [`RedisSettings::default`]; every key starts
    /// with `prefix` (for example `"tessera:"`).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, prefix, &RedisSettings::default()).await
    }

    /// Connects to `url`, failing within a few `settings.timeout`s if Redis
    /// cannot be reached. Later outages fail each call the same way while
    /// the connection is re-established in the background.
    pub async fn connect_with(
        url: &str,
        prefix: &str,
        settings: &RedisSettings,
    ) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(redis)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.timeout))
            .set_response_timeout(Some(settings.timeout))
            .set_number_of_retries(settings.reconnect_retries)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(redis)?;
        Ok(Self {
            conn,
            prefix: prefix.to_string(),
        })
    }

    /// The prefix every key starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, kind: &str, id: impl std::fmt::Display) -> String {
        format!("{}{kind}:{id}", self.prefix)
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    // Sessions.

    /// Records that `session_id` belongs to `player` for `ttl`.
    pub async fn put_session(
        &self,
        session_id: &str,
        player: u64,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        redis::cmd("SET")
            .arg(self.key("session", session_id))
            .arg(player)
            .arg("PX")
            .arg(millis(ttl))
            .exec_async(&mut self.conn())
            .await
            .map_err(redis)
    }

    /// The player of a live session.
    pub async fn session(&self, session_id: &str) -> Result<Option<u64>, StoreError> {
        self.conn()
            .get(self.key("session", session_id))
            .await
            .map_err(redis)
    }

    /// Ends a session (nothing happens if it has already expired).
    pub async fn end_session(&self, session_id: &str) -> Result<(), StoreError> {
        self.conn()
            .del(self.key("session", session_id))
            .await
            .map_err(redis)
    }

    // Single-login lock.

    /// Takes `player`'s login lock for `owner` unless someone holds it.
    pub async fn lock_login(
        &self,
        player: u64,
        owner: &str,
        ttl: Duration,
    ) -> Result<LockOutcome, StoreError> {
        let holder: Option<String> = LOCK
            .key(self.key("login", player))
            .arg(owner)
            .arg(millis(ttl))
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis)?;
        Ok(holder.map_or(LockOutcome::Acquired, LockOutcome::HeldBy))
    }

    /// Extends the lock to `ttl` from now if `owner` still holds it.
    pub async fn refresh_login(
        &self,
        player: u64,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let done: i64 = REFRESH_IF_OWNER
            .key(self.key("login", player))
            .arg(owner)
            .arg(millis(ttl))
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis)?;
        Ok(done == 1)
    }

    /// Releases the lock if `owner` still holds it.
    pub async fn unlock_login(&self, player: u64, owner: &str) -> Result<bool, StoreError> {
        let done: i64 = DELETE_IF_OWNER
            .key(self.key("login", player))
            .arg(owner)
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis)?;
        Ok(done == 1)
    }

    /// Takes the lock whoever holds it, in one step, and returns the
    /// previous holder (which may be `owner` itself): the node uses it when
    /// a second login of a player must kick the first.
    pub async fn steal_login(
        &self,
        player: u64,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<String>, StoreError> {
        redis::cmd("SET")
            .arg(self.key("login", player))
            .arg(owner)
            .arg("PX")
            .arg(millis(ttl))
            .arg("GET")
            .query_async(&mut self.conn())
            .await
            .map_err(redis)
    }

    // Routing.

    /// Routes `player` to `route` for `ttl`.
    pub async fn set_route(
        &self,
        player: u64,
        route: &Route,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let key = self.key("route", player);
        redis::pipe()
            .atomic()
            .cmd("HSET")
            .arg(&key)
            .arg("node")
            .arg(&route.node)
            .arg("world")
            .arg(route.world)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(millis(ttl))
            .ignore()
            .exec_async(&mut self.conn())
            .await
            .map_err(redis)
    }

    /// Where `player` is, if anywhere.
    pub async fn route(&self, player: u64) -> Result<Option<Route>, StoreError> {
        let (node, world): (Option<String>, Option<u64>) = redis::cmd("HMGET")
            .arg(self.key("route", player))
            .arg("node")
            .arg("world")
            .query_async(&mut self.conn())
            .await
            .map_err(redis)?;
        Ok(node.zip(world).map(|(node, world)| Route { node, world }))
    }

    /// Removes `player`'s route only if it still points at `node`: a node
    /// letting go of a player must not erase the route its successor wrote.
    pub async fn clear_route(&self, player: u64, node: &str) -> Result<bool, StoreError> {
        let done: i64 = CLEAR_ROUTE
            .key(self.key("route", player))
            .arg(node)
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis)?;
        Ok(done == 1)
    }

    // Node registry.

    /// Publishes `info` for `ttl`; a node that stops heartbeating drops out
    /// of [`RedisState::nodes`] when it expires.
    pub async fn heartbeat(&self, info: &NodeInfo, ttl: Duration) -> Result<(), StoreError> {
        let json = serde_json::to_string(info).map_err(redis)?;
        redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(self.key("node", &info.id))
            .arg(json)
            .arg("PX")
            .arg(millis(ttl))
            .ignore()
            .sadd(self.nodes_key(), &info.id)
            .ignore()
            .exec_async(&mut self.conn())
            .await
            .map_err(redis)
    }

    /// The live nodes; ids whose heartbeat expired are pruned on the way.
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, StoreError> {
        let live: Vec<String> = LIVE_NODES
            .key(self.nodes_key())
            .arg(self.key("node", ""))
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis)?;
        live.iter()
            .map(|json| serde_json::from_str(json).map_err(redis))
            .collect()
    }

    /// Removes a node at once (clean shutdown).
    pub async fn deregister(&self, id: &str) -> Result<(), StoreError> {
        redis::pipe()
            .atomic()
            .del(self.key("node", id))
            .ignore()
            .srem(self.nodes_key(), id)
            .ignore()
            .exec_async(&mut self.conn())
            .await
            .map_err(redis)
    }

    fn nodes_key(&self) -> String {
        format!("{}nodes", self.prefix)
    }

    // Presence.

    /// Marks `player` online on `node` for `ttl` (renew before it lapses).
    pub async fn set_online(
        &self,
        player: u64,
        node: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        SET_ONLINE
            .key(self.online_key())
            .key(self.key("online", player))
            .arg(player)
            .arg(node)
            .arg(millis(ttl))
            .invoke_async::<i64>(&mut self.conn())
            .await
            .map(drop)
            .map_err(redis)
    }

    /// Marks `player` offline.
    pub async fn set_offline(&self, player: u64) -> Result<(), StoreError> {
        redis::pipe()
            .atomic()
            .zrem(self.online_key(), player)
            .ignore()
            .del(self.key("online", player))
            .ignore()
            .exec_async(&mut self.conn())
            .await
            .map_err(redis)
    }

    /// The node `player` is online on.
    pub async fn is_online(&self, player: u64) -> Result<Option<String>, StoreError> {
        self.conn()
            .get(self.key("online", player))
            .await
            .map_err(redis)
    }

    /// Players online, not counting entries that have expired (which are
    /// pruned on the way).
    pub async fn online_count(&self) -> Result<u64, StoreError> {
        ONLINE_COUNT
            .key(self.online_key())
            .invoke_async(&mut self.conn())
            .await
            .map_err(redis)
    }

    fn online_key(&self) -> String {
        format!("{}online", self.prefix)
    }

    // Write-behind cache.

    /// Caches each patch only if its version is newer than the cached one,
    /// refreshing the record's `ttl`; one round trip per [`CACHE_CHUNK`]
    /// players.
    pub async fn cache_patches(
        &self,
        patches: &[Patch],
        ttl: Duration,
    ) -> Result<CacheReport, StoreError> {
        let ttl = millis(ttl);
        let mut report = CacheReport::default();
        let mut conn = self.conn();
        for chunk in patches.chunks(CACHE_CHUNK) {
            let mut pipe = redis::pipe();
            // Pipelined scripts are not loaded on demand; loading in the
            // same round trip survives a restarted or flushed server.
            pipe.load_script(&CACHE_PATCH).ignore();
            for patch in chunk {
                let mut call = CACHE_PATCH.key(self.key("record", patch.player));
                call.arg(patch.version).arg(ttl);
                for (part, value) in &patch.parts {
                    let bytes = rmp_serde::to_vec(value).map_err(redis)?;
                    call.arg(format!("{PART_FIELD}{part}")).arg(bytes);
                }
                pipe.invoke_script(&call);
            }
            let results: Vec<i64> = pipe.query_async(&mut conn).await.map_err(redis)?;
            let applied = results.iter().filter(|&&r| r == 1).count();
            report.applied += applied;
            report.stale += results.len() - applied;
        }
        Ok(report)
    }

    /// The cached record of `player`. It holds only the parts the cache has
    /// seen since it last expired or was evicted, so it is not a whole
    /// record: the caller merges it with the durable store's record, the
    /// newer version of the two winning part by part.
    pub async fn cached_record(&self, player: u64) -> Result<Option<PlayerRecord>, StoreError> {
        let fields: BTreeMap<String, Vec<u8>> = self
            .conn()
            .hgetall(self.key("record", player))
            .await
            .map_err(redis)?;
        if fields.is_empty() {
            return Ok(None);
        }
        let corrupt = |field: &str, reason: String| StoreError::CorruptCache {
            player,
            field: field.to_string(),
            reason,
        };
        let version = fields
            .get("version")
            .ok_or_else(|| corrupt("version", "missing".into()))?;
        let version = std::str::from_utf8(version)
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| corrupt("version", format!("not a u64: {version:?}")))?;
        let mut parts = BTreeMap::new();
        for (field, bytes) in &fields {
            let Some(part) = field.strip_prefix(PART_FIELD) else {
                continue;
            };
            let value = rmp_serde::from_slice(bytes).map_err(|e| corrupt(field, e.to_string()))?;
            parts.insert(part.to_string(), value);
        }
        Ok(Some(PlayerRecord {
            player,
            version,
            parts,
        }))
    }

    /// Drops `player`'s cached record.
    pub async fn evict(&self, player: u64) -> Result<(), StoreError> {
        self.conn()
            .del(self.key("record", player))
            .await
            .map_err(redis)
    }
}
