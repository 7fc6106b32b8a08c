//! The escalation worker, a job ([`crate::jobs`]): wakes ended snoozes, moves escalation
//! ladders on, opens incidents for missed heartbeats, and drills handoffs. Every due time lives
//! in the store, so a restart resumes where the last process stopped; the worker only decides
//! *when* to look: every second, and at once when poked (a snooze, a silent receipt).

use std::sync::Arc;
use std::time::Duration;

use jiff::SignedDuration;

use crate::AppState;

/// How often the worker looks even when nobody pokes it.
const TICK: Duration = Duration::from_secs(1);

/// The worker as a job.
pub struct Worker;

#[async_trait::async_trait]
impl crate::jobs::Job for Worker {
    fn name(&self) -> &'static str {
        "escalation"
    }

    async fn step(&mut self, state: &AppState) -> Result<(), String> {
        tick(state).await;
        Ok(())
    }

    async fn until_due(&mut self, state: &AppState) {
        tokio::select! {
            () = tokio::time::sleep(TICK) => {}
            () = state.wake.notified() => {}
        }
    }
}

/// One pass over everything that may be due at the clock's now.
pub async fn tick(state: &AppState) {
    if let Err(e) = state.refresh().await {
        tracing::error!(error = e.message, "cannot load overrides; using the last known schedules");
    }
    let now = state.clock.now();
    let rules = state.directory().rules.clone();
    if let Err(e) = state.store.wake_due(now, rules.clone()).await {
        tracing::error!(error = %e, "cannot wake snoozed incidents; will retry");
    }
    let deaf = deaf_users(state).await;
    match state.store.escalate(now, rules, Arc::new(deaf)).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(incidents = n, "escalation ladders moved on"),
        Err(e) => tracing::error!(error = %e, "cannot move escalation ladders; will retry"),
    }
    if let Err(e) = crate::oncall::heartbeats::check(state).await {
        tracing::error!(error = e.message, "cannot check heartbeat monitors; will retry");
    }
    if let Err(e) = crate::oncall::drills::at_handoffs(state).await {
        tracing::error!(error = e.message, "cannot run handoff drills; will retry");
    }
}

/// The users the escalation ladder passes now because they cannot hear a page, with why.
pub async fn deaf_users(state: &AppState) -> std::collections::HashMap<String, String> {
    let deaf_after = state.settings().escalation.deaf_after_seconds;
    if deaf_after == 0 {
        return Default::default();
    }
    let settings = state.settings();
    let users = settings.users.iter().map(|u| u.name.as_str());
    let by_push = reachable_by_push(state).await;
    let cluster = state.cluster.read().unwrap_or_else(|p| p.into_inner()).clone();
    let after = SignedDuration::from_secs(deaf_after as i64);
    let mut deaf = state.presence.deafness(users, after, &by_push, &cluster, &state.node);
    // Someone reached by email (or another channel) is not deaf for want of a device, as long
    // as the last message on that channel did not fail.
    let mut reached = Vec::new();
    for user in deaf.keys() {
        let settings = state.settings();
        let Some(person) = settings.users.iter().find(|u| &u.name == user) else {
            continue;
        };
        for channel in state.settings().channels(person) {
            let last = crate::deliver::notify::reach(state, user, channel).await;
            // Unknown (the database cannot say now): counted as reaching, as before any failure.
            if last.map_or(true, |last| last.is_none_or(|r| r.ok)) {
                reached.push(user.clone());
                break;
            }
        }
    }
    deaf.retain(|user, _| !reached.contains(user));
    deaf
}

/// Users with a native-push phone that can be reached: its platform is configured and the last
/// push to it did not fail. When devices cannot be listed, nobody counts as reachable by push,
/// so the ladder errs towards paging the next level.
async fn reachable_by_push(state: &AppState) -> std::collections::HashSet<String> {
    let push = &state.settings().push;
    match state.store.devices(None).await {
        Ok(devices) => devices
            .into_iter()
            .filter(|d| match d.platform.as_str() {
                "fcm" => push.fcm.is_some(),
                "apns" => push.apns.is_some(),
                _ => false,
            })
            .filter(|d| d.push_ok != Some(false))
            .map(|d| d.user)
            .collect(),
        Err(e) => {
            tracing::error!(error = %e, "cannot list push devices; counting none as reachable");
            Default::default()
        }
    }
}
