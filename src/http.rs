//! The node's HTTP API: registration and login, liveness, readiness and
//! metrics. Refusals carry a status, a stable `code` and a message.

use std::sync::{Arc, atomic::Ordering};

use axum::{
    Json, Router,
    extract::State,
    http::StatusCode,
    response::IntoResponse,
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::json;
use tessera_net::service::NetStats;

use tessera_tables::TablesHandle;

use crate::{
    accounts::{AccountError, Accounts},
    login::{LoginError, LoginReply, LoginRequest},
    scheduler::SchedulerStats,
};

/// What the handlers read.
#[derive(Clone)]
pub struct HttpState {
    /// Scheduler counters.
    pub stats: Arc<SchedulerStats>,
    /// The scheduler (its workers and their snapshot paces).
    pub scheduler: Arc<crate::scheduler::Scheduler>,
    /// The node's tables.
    pub tables: TablesHandle,
    /// Issues connect tokens.
    pub login: Arc<crate::login::LoginService>,
    /// Net thread counters.
    pub net: Arc<NetStats>,
    /// The UDP sockets.
    pub udp: Vec<std::net::SocketAddr>,
    /// Flush worker counters.
    pub store: Arc<tessera_persistence::flush::FlushStats>,
    /// The flush worker (and through it, the store).
    pub flusher: Arc<tessera_persistence::flush::Flusher>,
    /// Progress loaded at login for the net thread to attach to `Join`.
    pub profiles: crate::play::Profiles,
    /// Username + password accounts.
    pub accounts: Accounts,
    /// Login sessions.
    pub sessions: crate::sessions::Sessions,
    /// How long a session lasts.
    pub session_ttl: std::time::Duration,
    /// Frame-sync room counters.
    pub lockstep: Arc<tessera_net::relay::RelayStats>,
    /// Redis-backed cluster membership, when configured.
    pub cluster: Option<crate::cluster::Cluster>,
    /// Each zone's world now.
    pub zones: crate::zone_worlds::ZoneDirectory,
}

/// The router.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::metrics::metrics))
        .route("/v1/login", post(login))
        .route("/v1/register", post(register))
        .route("/v1/token", post(token))
        .with_state(state)
}

/// A refusal as the API returns it: a status, a stable machine-readable
/// code and a message for people.
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> axum::response::Response {
        let upgrade = self.status == StatusCode::UPGRADE_REQUIRED;
        let mut response = (
            self.status,
            Json(json!({ "error": self.message, "code": self.code })),
        )
            .into_response();
        if upgrade {
            // 426 names what to upgrade to (RFC 9110): this node's protocol.
            let to = format!("tessera/{}", tessera_net::PROTOCOL_VERSION);
            if let Ok(value) = axum::http::HeaderValue::from_str(&to) {
                response
                    .headers_mut()
                    .insert(axum::http::header::UPGRADE, value);
            }
        }
        response
    }
}

/// A request body as `T`, once its protocol is checked (see
/// [`crate::login::check_protocol_in`]); one that does not fit `T` is a
/// `bad_request` saying why.
fn versioned<T: serde::de::DeserializeOwned>(body: serde_json::Value) -> Result<T, ApiError> {
    crate::login::check_protocol_in(&body)?;
    serde_json::from_value(body)
        .map_err(|error| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", error.to_string()))
}

impl From<LoginError> for ApiError {
    fn from(error: LoginError) -> Self {
        let (status, code) = match &error {
            LoginError::BadDeviceId => (StatusCode::BAD_REQUEST, "bad_device_id"),
            LoginError::BadRequest => (StatusCode::BAD_REQUEST, "bad_request"),
            LoginError::Protocol { .. } => (StatusCode::UPGRADE_REQUIRED, "protocol_mismatch"),
            LoginError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            LoginError::Token(_) => (StatusCode::INTERNAL_SERVER_ERROR, "token"),
        };
        Self::new(status, code, error.to_string())
    }
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        let (status, code) = match &error {
            AccountError::BadUsername => (StatusCode::BAD_REQUEST, "bad_username"),
            AccountError::BadPassword => (StatusCode::BAD_REQUEST, "bad_password"),
            AccountError::Taken => (StatusCode::CONFLICT, "username_taken"),
            AccountError::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
            AccountError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            AccountError::Hash(_) => (StatusCode::INTERNAL_SERVER_ERROR, "hash"),
        };
        Self::new(status, code, error.to_string())
    }
}

/// A registration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterRequest {
    username: String,
    password: String,
}

async fn register(
    State(state): State<HttpState>,
    Json(request): Json<RegisterRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let player = state
        .accounts
        .register(&request.username, &request.password)
        .await?;
    tracing::info!(player = %player, "account registered");
    Ok((StatusCode::CREATED, Json(json!({ "player_id": player.0 }))))
}

async fn login(
    State(state): State<HttpState>,
    Json(body): Json<serde_json::Value>,
) -> Result<Json<LoginReply>, ApiError> {
    let request: LoginRequest = versioned(body)?;
    let player = match (&request.device_id, &request.username, &request.password) {
        (Some(device), None, None) => crate::login::device_player(device)?,
        (None, Some(username), Some(password)) => {
            state.accounts.sign_in(username, password).await?
        }
        _ => return Err(LoginError::BadRequest.into()),
    };
    let reply = admit(&state, player).await?;
    if let Err(error) = state
        .sessions
        .put(&reply.session, player, state.session_ttl)
        .await
    {
        return Err(unavailable("cannot record the session", &error));
    }
    Ok(Json(reply))
}

/// A fresh connect token for a live session.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    session: String,
    /// Checked as a login's is, before this is read (a session outlives
    /// a node's upgrade); named here so the field is not unknown.
    #[serde(rename = "protocol", default)]
    _protocol: Option<u32>,
}

async fn token(
    State(state): State<HttpState>,
    Json(body): Json<serde_json::Value>,
) -> Result<Json<LoginReply>, ApiError> {
    let request: TokenRequest = versioned(body)?;
    let player = match state.sessions.player(&request.session).await {
        Ok(Some(player)) => player,
        Ok(None) => {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_session",
                "the session is unknown or expired; log in again",
            ));
        }
        Err(error) => return Err(unavailable("cannot read the session", &error)),
    };
    let mut reply = admit(&state, player).await?;
    // The session continues; the reply's fresh id is not recorded.
    reply.session = request.session;
    Ok(Json(reply))
}

fn unavailable(what: &str, error: &dyn std::fmt::Display) -> ApiError {
    tracing::warn!(%error, "{what}");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        format!("{what} right now, try again shortly ({error})"),
    )
}

/// Lets a player who has proven who they are onto this node: takes their
/// single-login lock (waiting for another node to hand them over), writes
/// what this node still holds of them, loads their newest progress for
/// their join, and issues a connect token.
async fn admit(state: &HttpState, player: tessera_sim::PlayerId) -> Result<LoginReply, ApiError> {
    let reply = state.login.issue(player)?;
    if let Some(cluster) = &state.cluster
        && let Err(error) = cluster.claim(player).await
    {
        return Err(unavailable("cannot take the login lock", &error));
    }
    // Whatever this player left unsaved is written first, so the load below
    // sees their newest progress (a quick re-login must not roll them back).
    if let Err(error) = state.flusher.flush_player(player.0).await {
        // Loading now could return older data than what is still pending.
        return Err(unavailable("the node cannot save player data", &error));
    }
    let record = match state.flusher.load(player.0).await {
        Ok(record) => record,
        Err(error) => return Err(unavailable("cannot load player data", &error)),
    };
    if let Some(record) = &record {
        // Writes for this player must be newer than what is stored,
        // whatever this node's clock or history says.
        state.flusher.note_version(record.player, record.version);
    }
    if let Some(progress) = record
        .as_ref()
        .and_then(tessera_persistence::record::saved_progress)
    {
        state
            .profiles
            .insert(player, progress, std::time::Instant::now());
    }
    Ok(reply)
}

async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    let s = &state.stats;
    // A zone left down leaves its players without a world: a load balancer
    // should send new logins elsewhere.
    let zones_down = state.zones.down();
    let ready = zones_down.is_empty();
    let reload_error = state
        .tables
        .last_error()
        .map(|failure| failure.report.to_string());
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Json(json!({
        "tables": {
            "dir": state.tables.dir().display().to_string(),
            "hash": state.tables.current().hash().to_string(),
            "version": state.tables.version(),
            "last_reload_error": reload_error,
        },
        "ready": ready,
        "workers": state.scheduler.worker_count(),
        "udp": state.udp.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "clients": state.net.connected.load(Ordering::Relaxed),
        "joins_waiting": state.profiles.len(),
        "store": {
            "outage": state.store.outage.load(Ordering::Relaxed) == 1,
            "pending_players": state.store.pending.load(Ordering::Relaxed),
            "written": state.store.written.load(Ordering::Relaxed),
            "failures": state.store.failures.load(Ordering::Relaxed),
        },
        "cluster": state.cluster.as_ref().map(|c| json!({ "node": c.node(), "redis_reachable": c.reachable() })),
        "worlds": s.worlds.load(Ordering::Relaxed),
        "zones": state.zones.worlds(),
        "zones_down": zones_down,
        "ticks": s.ticks.load(Ordering::Relaxed),
        "overruns": s.overruns.load(Ordering::Relaxed),
        "dropped_ticks": s.dropped_ticks.load(Ordering::Relaxed),
        "panicked_worlds": s.panicked_worlds.load(Ordering::Relaxed),
        "snapshot_every": state.scheduler.snapshot_intervals(),
    }));
    (status, body)
}
