//! `GET /healthz` that tells the truth: healthy means the database can commit a write now.
//!
//! Each check goes through the writer with a deadline, so a dead writer thread, a full disk or a
//! stuck lock answers 503. Checks are shared: however many callers ask, at most one write per
//! [`REUSE`] reaches the writer, so unauthenticated callers cannot queue work on it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use reveille_protocol::ErrorCode;
use reveille_protocol::api::Health;
use tokio::sync::Mutex;

use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// How long one check's answer is given to every caller.
pub const REUSE: Duration = Duration::from_secs(1);
/// How long a commit may take before the server is reported unhealthy.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// The last check and its outcome (the failure's message).
#[derive(Default)]
pub struct Checks(Mutex<Option<(Instant, Result<(), String>)>>);

/// `GET /healthz`
pub async fn healthz(State(state): State<AppState>) -> ApiResult<Json<Health>> {
    let outcome = check(&state).await;
    match outcome {
        Ok(()) => Ok(Json(Health { status: "ok".into(), time: state.clock.now() })),
        Err(message) => Err(ApiError::new(ErrorCode::Unavailable, message)),
    }
}

async fn check(state: &AppState) -> Result<(), String> {
    if let Some(problem) = state.cluster_problem.read().unwrap_or_else(|p| p.into_inner()).clone() {
        return Err(problem);
    }
    let checks: &Arc<Checks> = &state.health;
    let mut last = checks.0.lock().await;
    if let Some((at, outcome)) = last.as_ref()
        && at.elapsed() < REUSE
    {
        return outcome.clone();
    }
    let now = state.clock.now().to_string();
    let outcome = match tokio::time::timeout(DEADLINE, state.store.set_meta("health", &now)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("the database cannot commit: {e}")),
        Err(_) => Err(format!("the database did not commit within {DEADLINE:?}")),
    };
    if let Err(message) = &outcome {
        state.metrics.health_failures.inc();
        tracing::error!(%message, "health check failed");
    }
    *last = Some((Instant::now(), outcome.clone()));
    outcome
}
