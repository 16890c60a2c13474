//! The node's HTTP API: liveness, readiness and metrics (login and admin
//! join later).

use std::{
    fmt::Write as _,
    sync::{Arc, atomic::Ordering},
};

use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::{get, post},
};
use serde_json::json;
use tessera_net::service::NetStats;

use tessera_tables::TablesHandle;

use crate::scheduler::SchedulerStats;

/// What the handlers read.
#[derive(Clone)]
pub struct HttpState {
    /// Scheduler counters.
    pub stats: Arc<SchedulerStats>,
    /// Worker threads.
    pub workers: usize,
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
}

/// The router.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/login", post(login))
        .with_state(state)
}

async fn login(
    State(state): State<HttpState>,
    Json(request): Json<crate::login::LoginRequest>,
) -> impl IntoResponse {
    let reply = match state.login.login(&request) {
        Ok(reply) => reply,
        Err(error @ crate::login::LoginError::Busy) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "error": error.to_string() })),
            );
        }
        Err(error) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": error.to_string() })),
            );
        }
    };
    // Whatever this player left unsaved is written first, so the load below
    // sees their newest progress (a quick re-login must not roll them back).
    if let Err(error) = state.flusher.flush_player(reply.player_id).await {
        // Loading now could return older data than what is still pending.
        tracing::warn!(%error, player = reply.player_id, "login refused: pending player data cannot be written");
        let message =
            format!("the node cannot save player data right now, try again shortly ({error})");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": message })),
        );
    }
    match state.flusher.backend().load(reply.player_id).await {
        Ok(record) => {
            if let Some(record) = &record {
                // Writes for this player must be newer than what is stored,
                // whatever this node's clock or history says.
                state.flusher.note_version(record.player, record.version);
            }
            if let Some(progress) = record
                .as_ref()
                .and_then(tessera_persistence::record::saved_progress)
            {
                let player = tessera_sim::PlayerId(reply.player_id);
                state
                    .profiles
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(player, progress);
            }
            (
                StatusCode::OK,
                Json(serde_json::to_value(reply).unwrap_or_default()),
            )
        }
        Err(error) => {
            tracing::warn!(%error, player = reply.player_id, "login refused: cannot load player data");
            let message = format!("cannot load player data, try again shortly ({error})");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "error": message })),
            )
        }
    }
}

async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    let s = &state.stats;
    let reload_error = state
        .tables
        .last_error()
        .map(|failure| failure.report.to_string());
    Json(json!({
        "tables": {
            "dir": state.tables.dir().display().to_string(),
            "hash": state.tables.current().hash().to_string(),
            "version": state.tables.version(),
            "last_reload_error": reload_error,
        },
        "ready": true,
        "workers": state.workers,
        "udp": state.udp.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "clients": state.net.connected.load(Ordering::Relaxed),
        "store": {
            "outage": state.store.outage.load(Ordering::Relaxed) == 1,
            "pending_players": state.store.pending.load(Ordering::Relaxed),
            "written": state.store.written.load(Ordering::Relaxed),
            "failures": state.store.failures.load(Ordering::Relaxed),
        },
        "worlds": s.worlds.load(Ordering::Relaxed),
        "ticks": s.ticks.load(Ordering::Relaxed),
        "overruns": s.overruns.load(Ordering::Relaxed),
        "dropped_ticks": s.dropped_ticks.load(Ordering::Relaxed),
        "panicked_worlds": s.panicked_worlds.load(Ordering::Relaxed),
    }))
}

async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    let s = &state.stats;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    metric(
        "tessera_ticks_total",
        "counter",
        "World ticks simulated.",
        s.ticks.load(Ordering::Relaxed),
    );
    metric(
        "tessera_tick_overruns_total",
        "counter",
        "Ticks that started a full period or more after their deadline.",
        s.overruns.load(Ordering::Relaxed),
    );
    metric(
        "tessera_dropped_ticks_total",
        "counter",
        "Ticks given up when a world fell too far behind and was re-anchored.",
        s.dropped_ticks.load(Ordering::Relaxed),
    );
    metric(
        "tessera_worlds",
        "gauge",
        "Worlds ticking.",
        s.worlds.load(Ordering::Relaxed),
    );
    metric(
        "tessera_panicked_worlds_total",
        "counter",
        "Worlds ended by a panic in their tick.",
        s.panicked_worlds.load(Ordering::Relaxed),
    );
    metric(
        "tessera_tick_seconds_total_nanos",
        "counter",
        "Nanoseconds spent inside world ticks.",
        s.tick_nanos.load(Ordering::Relaxed),
    );
    metric(
        "tessera_tables_version",
        "gauge",
        "Tables versions loaded since start (1 = the start-up load).",
        state.tables.version(),
    );
    metric(
        "tessera_tables_reload_failing",
        "gauge",
        "1 while the last tables reload was refused.",
        u64::from(state.tables.last_error().is_some()),
    );
    let f = &state.store;
    metric(
        "tessera_flush_batches_total",
        "counter",
        "Player data batches written.",
        f.batches.load(Ordering::Relaxed),
    );
    metric(
        "tessera_flush_written_total",
        "counter",
        "Player records written.",
        f.written.load(Ordering::Relaxed),
    );
    metric(
        "tessera_flush_stale_total",
        "counter",
        "Writes refused as not newer.",
        f.stale.load(Ordering::Relaxed),
    );
    metric(
        "tessera_flush_failures_total",
        "counter",
        "Failed batch writes (retried).",
        f.failures.load(Ordering::Relaxed),
    );
    metric(
        "tessera_flush_pending_players",
        "gauge",
        "Players with unsaved changes.",
        f.pending.load(Ordering::Relaxed),
    );
    metric(
        "tessera_flush_last_batch",
        "gauge",
        "Players in the last batch.",
        f.last_batch.load(Ordering::Relaxed),
    );
    metric(
        "tessera_flush_last_latency_microseconds",
        "gauge",
        "Latency of the last write.",
        f.last_latency_us.load(Ordering::Relaxed),
    );
    metric(
        "tessera_store_outage",
        "gauge",
        "1 while the store is failing.",
        f.outage.load(Ordering::Relaxed),
    );
    let n = &state.net;
    metric(
        "tessera_clients",
        "gauge",
        "Clients connected.",
        n.connected.load(Ordering::Relaxed),
    );
    metric(
        "tessera_net_messages_in_total",
        "counter",
        "Client messages received.",
        n.messages_in.load(Ordering::Relaxed),
    );
    metric(
        "tessera_net_bytes_in_total",
        "counter",
        "Client message bytes received.",
        n.bytes_in.load(Ordering::Relaxed),
    );
    metric(
        "tessera_net_messages_out_total",
        "counter",
        "Messages sent to clients.",
        n.messages_out.load(Ordering::Relaxed),
    );
    metric(
        "tessera_net_bytes_out_total",
        "counter",
        "Message bytes sent to clients.",
        n.bytes_out.load(Ordering::Relaxed),
    );
    metric(
        "tessera_net_malformed_total",
        "counter",
        "Client messages refused as malformed.",
        n.malformed.load(Ordering::Relaxed),
    );
    metric(
        "tessera_net_kicked_total",
        "counter",
        "Clients kicked for flooding or garbage.",
        n.kicked.load(Ordering::Relaxed),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
