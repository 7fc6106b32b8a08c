//! `GET /healthz` that tells the truth: healthy means the database can commit a write now.
//!
//! A busy node is not a sick one. While writes are waiting, the node is healthy as long as its
//! writer keeps committing (one commit within [`DEADLINE`]), however long the queue: a check that
//! had to wait its turn behind a storm would fail every node of a cluster at once under load,
//! and the balancer would drop them all. While nothing is waiting, a check writes through the
//! writer with the deadline, so a dead writer thread, a full disk or a stuck lock answers 503.
//! Checks are shared: however many callers ask, at most one write per [`REUSE`] reaches the
//! writer, so unauthenticated callers cannot queue work on it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use reveille_protocol::ErrorCode;
use reveille_protocol::api::Health;
use reveille_store::writer::Progress;
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
        Ok(()) => Ok(Json(Health {
            status: "ok".into(),
            time: state.clock.now(),
            last_reload: state.last_reload(),
        })),
        Err(message) => Err(ApiError::new(ErrorCode::Unavailable, message)),
    }
}

async fn check(state: &AppState) -> Result<(), String> {
    if let Some(problem) = state.cluster_problem.read().unwrap_or_else(|p| p.into_inner()).clone() {
        return Err(problem);
    }
    if let Some(reason) = state.store.stopped().borrow().clone() {
        return Err(reason);
    }
    // A node that cannot read its link keys refuses every link, sign-in and calendar.
    if crate::http::links::keys(state).await.is_err() {
        return Err(
            "this node cannot read its acknowledge-link keys (database.link_key_file)".into()
        );
    }
    match busy(&state.store.progress()) {
        Some(Ok(())) => return Ok(()),
        Some(Err(message)) => {
            state.metrics.health_failures.inc();
            tracing::error!(%message, "health check failed");
            return Err(message);
        }
        None => {}
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

/// The verdict on a writer with work waiting: healthy while it keeps committing, stuck once it
/// has committed nothing for [`DEADLINE`]. None when nothing waits (a probe write must tell).
fn busy(progress: &Progress) -> Option<Result<(), String>> {
    if progress.waiting == 0 {
        return None;
    }
    if progress.since_commit < DEADLINE {
        return Some(Ok(()));
    }
    Some(Err(format!(
        "the database has committed nothing for {} s with {} writes waiting",
        progress.since_commit.as_secs(),
        progress.waiting
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(waiting: usize, since_commit: u64) -> Progress {
        Progress { waiting, since_commit: Duration::from_millis(since_commit) }
    }

    #[test]
    fn a_long_queue_that_keeps_committing_is_healthy_and_a_stalled_one_is_not() {
        assert_eq!(busy(&progress(50_000, 300)), Some(Ok(())), "busy is not sick");
        let stuck = busy(&progress(3, 6_000)).unwrap().unwrap_err();
        assert!(stuck.contains("nothing for 6 s with 3 writes waiting"), "{stuck}");
        assert_eq!(busy(&progress(0, 60_000)), None, "idle: a probe write must tell");
    }
}
