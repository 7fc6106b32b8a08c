//! The snooze worker: pages again when a snooze ends. Due times live in the store, so a restart
//! loses nothing; the worker only decides *when* to look.

use std::time::Duration;

use crate::AppState;

/// How often the worker looks even when nobody pokes it.
const TICK: Duration = Duration::from_secs(1);

/// Runs until the task is aborted.
pub async fn run(state: AppState) {
    loop {
        tick(&state).await;
        tokio::select! {
            () = tokio::time::sleep(TICK) => {}
            () = state.wake.notified() => {}
        }
    }
}

/// Wakes every incident whose snooze has ended by the clock's now.
pub async fn tick(state: &AppState) {
    match state.store.wake_due(state.clock.now()).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(incidents = n, "snoozes ended; paging again"),
        Err(e) => tracing::error!(error = %e, "could not wake snoozed incidents; will retry"),
    }
}
