//! Outboxes: workers that act on every committed feed entry, in order, from a cursor kept in the
//! database, so a restart resumes where it stopped: native push and outbound webhooks. On the
//! very first start history is not sent, only what happens from then on. With several nodes one
//! node holds each outbox (a lease renewed every [`RENEW`]); another takes over within [`LEASE`]
//! of its death and is told so, since the last entries may have been sent without being recorded.
//!
//! No entry is ever skipped because something could not be read: a handler that cannot act on
//! an entry now says so, and the outbox stops there, keeps its cursor before that entry, and
//! reads from it again after a backoff (from [`FIRST_RETRY`], doubling to [`RENEW`]).

use std::future::Future;
use std::time::Duration;

use reveille_protocol::FeedEvent;

use crate::AppState;

/// How long a node's hold on an outbox lasts unless renewed.
pub const LEASE: jiff::SignedDuration = jiff::SignedDuration::from_secs(6);
pub const RENEW: Duration = Duration::from_secs(2);
/// The first wait before an entry that could not be handled is tried again.
pub const FIRST_RETRY: Duration = Duration::from_millis(100);

/// What acts on each entry.
pub trait Handler: Send {
    /// Acts on one entry of `user`'s feed. `again` names the stopped node that may have acted on
    /// it already. An error means "not now" (the store could not be read): the entry is handed
    /// over again later, so a handler must not have acted on it in part.
    fn handle<'a>(
        &'a mut self,
        state: &'a AppState,
        user: &'a str,
        entry: &'a FeedEvent,
        again: Option<&'a str>,
    ) -> impl Future<Output = reveille_store::Result<()>> + Send + 'a;

    /// Called at least every [`RENEW`] while this node holds the outbox: work that waits for a
    /// time rather than an entry.
    fn tick<'a>(&'a mut self, _state: &'a AppState) -> impl Future<Output = ()> + Send + 'a {
        async {}
    }

    /// The oldest entry whose work is still waiting in memory: the saved cursor stays before
    /// it, so a restart (or another node) handles it again.
    fn waiting(&self) -> Option<i64> {
        None
    }

    /// This node lost the outbox: drop every piece of work waiting in memory (and stop what is
    /// under way), since the node that took over does it from the saved cursor.
    fn reset(&mut self) {}
}

/// One outbox: its lease and the meta key of its cursor.
#[derive(Debug, Clone, Copy)]
pub struct Outbox {
    pub lease: &'static str,
    pub cursor: &'static str,
}

/// The lease of the Matrix bot's listening: one node follows the room, so an ack is answered once.
pub const MATRIX_LEASE: &str = "matrix";

pub const PUSH: Outbox = Outbox { lease: "push", cursor: "push_cursor" };
pub const WEBHOOKS: Outbox = Outbox { lease: "webhooks", cursor: "webhook_cursor" };
pub const NOTIFY: Outbox = Outbox { lease: "notify", cursor: "notify_cursor" };

/// Takes or renews the lease `name` for this node: `Some(took_over)` while held (`took_over`
/// names a node whose lease ran out), `None` when another node holds it or it cannot be asked.
pub async fn hold(state: &AppState, name: &str) -> Option<Option<String>> {
    let now = state.clock.now();
    match state.store.lease(name, &state.node, now, now + LEASE).await {
        Ok(reveille_store::Lease::Granted { took_over }) => Some(took_over),
        Ok(reveille_store::Lease::Held(_)) => None,
        Err(e) => {
            tracing::warn!(error = %e, lease = name, "cannot renew the lease; pausing");
            None
        }
    }
}

/// Runs `work` while holding the lease `name`, renewing it every [`RENEW`] however long `work`
/// takes (a slow provider must not let the lease lapse and another node do the same work). None
/// when the lease was lost: `work` is dropped there.
pub async fn while_held<T>(
    state: &AppState,
    name: &str,
    work: impl Future<Output = T>,
) -> Option<T> {
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return Some(done),
            () = tokio::time::sleep(RENEW) => {
                hold(state, name).await?;
            }
        }
    }
}

impl Outbox {
    /// The last feed id handled (the feed's head when the outbox first starts).
    pub async fn cursor(&self, state: &AppState) -> reveille_store::Result<i64> {
        let start = state.store.feed_head().await?.to_string();
        let cursor = state.store.meta_or_insert(self.cursor, &start).await?;
        Ok(cursor.parse().unwrap_or(0))
    }

    /// Whether this node holds the outbox now; `Some(Some(node))` when it just took it over
    /// from a node that stopped.
    async fn hold(&self, state: &AppState) -> Option<Option<String>> {
        hold(state, self.lease).await
    }

    /// Follows the feed and hands every entry to `handler`; runs until aborted.
    pub async fn run(self, state: AppState, mut handler: impl Handler) {
        let mut head = state.store.hub().head();
        loop {
            let Some(took_over) = self.hold(&state).await else {
                tokio::time::sleep(RENEW).await;
                continue;
            };
            let mut cursor = match self.cursor(&state).await {
                Ok(cursor) => cursor,
                Err(e) => {
                    tracing::error!(error = %e, outbox = self.lease, "cannot read the cursor; will retry");
                    tokio::time::sleep(RENEW).await;
                    continue;
                }
            };
            if let Some(node) = &took_over {
                tracing::warn!(stopped = %node, outbox = self.lease, "took over from a node that stopped");
            }
            let mut again = took_over;
            let mut retry = FIRST_RETRY;
            loop {
                match state.store.feed_all_since(cursor, 200).await {
                    Ok(batch) if !batch.is_empty() => {
                        let before = cursor;
                        let mut failed = None;
                        let mut lost = false;
                        for (user, entry) in batch {
                            let handling = handler.handle(&state, &user, &entry, again.as_deref());
                            match while_held(&state, self.lease, handling).await {
                                Some(Ok(())) => cursor = entry.id,
                                // Never readable: passed over, loudly, rather than holding up
                                // every page behind it.
                                Some(Err(reveille_store::Error::Corrupt(why))) => {
                                    tracing::error!(outbox = self.lease, entry = entry.id, incident = entry.incident.id, %why, "an entry's incident cannot be read; passed over");
                                    cursor = entry.id;
                                }
                                Some(Err(e)) => {
                                    failed = Some(e);
                                    break;
                                }
                                None => {
                                    lost = true;
                                    break;
                                }
                            }
                        }
                        if cursor > before {
                            self.save(&state, &handler, cursor).await;
                        }
                        if lost {
                            tracing::warn!(
                                outbox = self.lease,
                                "lost the lease while acting on an entry"
                            );
                            handler.reset();
                            break;
                        }
                        if failed.is_none() {
                            again = None;
                        }
                        if let Some(e) = failed {
                            tracing::warn!(error = %e, outbox = self.lease, after = cursor, "cannot act on an entry now; trying it again in {retry:?}");
                            tokio::time::sleep(retry).await;
                            retry = (retry * 2).min(RENEW);
                        } else {
                            retry = FIRST_RETRY;
                        }
                    }
                    Ok(_) => {
                        tokio::select! {
                            _ = head.changed() => {}
                            () = tokio::time::sleep(RENEW) => {}
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, outbox = self.lease, "cannot read the feed; trying again in {retry:?}");
                        tokio::time::sleep(retry).await;
                        retry = (retry * 2).min(RENEW);
                    }
                }
                if while_held(&state, self.lease, handler.tick(&state)).await.is_none()
                    || self.hold(&state).await.is_none()
                {
                    tracing::warn!(outbox = self.lease, "lost the lease");
                    handler.reset();
                    break;
                }
            }
        }
    }

    /// Saves the cursor after `handled`, kept before any entry whose work still waits in memory.
    async fn save(&self, state: &AppState, handler: &impl Handler, handled: i64) {
        let saved = handler.waiting().map_or(handled, |w| handled.min(w - 1));
        if let Err(e) = state.store.set_meta(self.cursor, &saved.to_string()).await {
            tracing::error!(error = %e, outbox = self.lease, "cannot save the cursor");
        }
    }
}

/// The oldest cursor of the outboxes in use: retention keeps every feed entry after it. `None`
/// when no outbox runs.
pub async fn oldest(state: &AppState) -> Option<reveille_store::Result<i64>> {
    let push = &state.settings.push;
    let mut used = Vec::new();
    if push.fcm.is_some() || push.apns.is_some() {
        used.push(PUSH);
    }
    if !state.settings.webhooks.is_empty() {
        used.push(WEBHOOKS);
    }
    if state.settings.email.is_some() || state.settings.matrix.is_some() {
        used.push(NOTIFY);
    }
    let mut oldest: Option<i64> = None;
    for outbox in used {
        match outbox.cursor(state).await {
            Ok(c) => oldest = Some(oldest.map_or(c, |o| o.min(c))),
            Err(e) => return Some(Err(e)),
        }
    }
    oldest.map(Ok)
}
