//! Fault injection for staging and tests: with `TESSERA_CHAOS_KEY` set,
//! `POST /v1/chaos/crash-world` makes a world panic in its next tick, as a
//! bug in its code would, so a studio can see what its players and
//! operators see when a zone or a room fails: 202 once the crash is armed,
//! 404 when no world with that id is running. Without the key the route
//! does not exist; with it, every request must carry the key.

use std::{sync::Arc, time::Duration};

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode, header::AUTHORIZATION},
    response::IntoResponse,
    routing::post,
};
use serde::Deserialize;
use serde_json::json;

use crate::scheduler::{CrashError, Scheduler, WorldId};

/// How long a crash request waits for the world's worker to arm it
/// (workers read commands between ticks, so a tick's length at most).
const ARM_WAIT: Duration = Duration::from_secs(5);

/// Environment variable holding the key that enables fault injection.
pub const CHAOS_KEY_VAR: &str = "TESSERA_CHAOS_KEY";

/// Shortest key accepted: a guessable key on a public port would let
/// anyone crash rooms.
pub const MIN_KEY_LEN: usize = 16;

/// Fault injection, enabled by a key.
#[derive(Clone)]
pub struct Chaos {
    key: Arc<str>,
    scheduler: Arc<Scheduler>,
}

impl Chaos {
    /// Fault injection if `CHAOS_KEY_VAR` is set (and long enough), else
    /// `None`.
    pub fn from_env(scheduler: Arc<Scheduler>) -> anyhow::Result<Option<Self>> {
        match std::env::var(CHAOS_KEY_VAR) {
            Ok(key) if key.len() >= MIN_KEY_LEN => {
                tracing::warn!(
                    "fault injection is enabled ({CHAOS_KEY_VAR} is set): POST /v1/chaos/crash-world crashes worlds; do not set it on a node players depend on"
                );
                Ok(Some(Self {
                    key: key.into(),
                    scheduler,
                }))
            }
            Ok(_) => anyhow::bail!("{CHAOS_KEY_VAR} must be at least {MIN_KEY_LEN} characters"),
            Err(_) => Ok(None),
        }
    }

    /// The fault injection routes.
    pub fn router(self) -> Router {
        Router::new()
            .route("/v1/chaos/crash-world", post(crash_world))
            .with_state(self)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CrashWorld {
    world: u64,
}

/// Compares without stopping at the first difference, so response times
/// do not tell how much of a guessed key was right.
fn same_key(given: &[u8], key: &[u8]) -> bool {
    given.len() == key.len()
        && given
            .iter()
            .zip(key)
            .fold(0u8, |differs, (a, b)| differs | (a ^ b))
            == 0
}

async fn crash_world(
    State(chaos): State<Chaos>,
    headers: HeaderMap,
    body: Result<Json<CrashWorld>, axum::extract::rejection::JsonRejection>,
) -> impl IntoResponse {
    let given = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or("");
    if !same_key(given.as_bytes(), chaos.key.as_bytes()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({
                "error": format!("fault injection needs `Authorization: Bearer` and the node's {CHAOS_KEY_VAR}"),
                "code": "unauthorized",
            })),
        );
    }
    let Json(request) = match body {
        Ok(body) => body,
        Err(rejection) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": rejection.body_text(), "code": "bad_request" })),
            );
        }
    };
    let world = WorldId(request.world);
    tracing::warn!(%world, "fault injection: crash requested over HTTP");
    let scheduler = chaos.scheduler.clone();
    let armed = tokio::task::spawn_blocking(move || scheduler.crash_world(world, ARM_WAIT)).await;
    let error = match armed {
        Ok(Ok(())) => {
            return (
                StatusCode::ACCEPTED,
                Json(json!({
                    "world": request.world,
                    "crash": "armed: the world panics in its next tick",
                })),
            );
        }
        Ok(Err(error)) => error,
        Err(error) => {
            tracing::error!(%error, "fault injection: the crash request failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({ "error": "the crash request failed", "code": "internal" })),
            );
        }
    };
    let (status, code) = match error {
        CrashError::NoSuchWorld(_) => (StatusCode::NOT_FOUND, "no_such_world"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    };
    (
        status,
        Json(json!({ "error": error.to_string(), "code": code })),
    )
}

#[cfg(test)]
mod tests {
    use super::same_key;

    #[test]
    fn only_the_whole_key_matches() {
        assert!(same_key(b"0123456789abcdef", b"0123456789abcdef"));
        assert!(!same_key(b"0123456789abcdeX", b"0123456789abcdef"));
        assert!(!same_key(b"0123456789abcde", b"0123456789abcdef"));
        assert!(!same_key(b"", b"0123456789abcdef"));
    }
}
