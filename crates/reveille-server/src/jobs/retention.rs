//! Retention, a job: once an hour (by the server's clock), history older than `retention.days`
//! is pruned (see [`reveille_store::Store::prune`]). It runs beside the worker, never inside it,
//! so a long prune cannot hold an escalation back. Feed entries that push has not delivered yet
//! are kept, whatever their age.

use jiff::{SignedDuration, Timestamp};

use crate::AppState;

/// How often pruning runs.
pub const EVERY: SignedDuration = SignedDuration::from_hours(1);

/// Prunes whenever an hour has passed on the clock (looking every second: the clock may be
/// moved by tests, or jump after a suspend).
#[derive(Default)]
pub struct Retention {
    last: Option<Timestamp>,
}

#[async_trait::async_trait]
impl crate::jobs::Job for Retention {
    fn name(&self) -> &'static str {
        "retention"
    }

    async fn step(&mut self, state: &AppState) -> Result<(), String> {
        let now = state.clock.now();
        if self.last.is_none_or(|last| now.duration_since(last) >= EVERY) {
            self.last = Some(now);
            prune(state, now).await;
        }
        Ok(())
    }
}

/// One pass of pruning at `now`.
pub async fn prune(state: &AppState, now: Timestamp) {
    let days = state.settings().retention.days;
    if days == 0 {
        return;
    }
    let before = now - SignedDuration::from_hours(24 * i64::from(days));
    let feed_kept_after = match crate::deliver::outbox::oldest(state).await {
        Some(Ok(cursor)) => Some(cursor),
        Some(Err(e)) => return tracing::error!(error = %e, "retention skipped: no outbox cursor"),
        None => None,
    };
    match state.store.prune(before, feed_kept_after).await {
        Ok(pruned) if pruned.is_empty() => {}
        Ok(pruned) => tracing::info!(
            %before, incidents = pruned.incidents, feed_entries = pruned.feed_entries,
            events = pruned.events, links = pruned.links, overrides = pruned.overrides,
            tokens = pruned.tokens, "old history pruned"
        ),
        Err(e) => tracing::error!(error = %e, "cannot prune old history; will retry in an hour"),
    }
}
