//! Outboxes: jobs that act on every committed feed entry, in order, from a cursor kept in the
//! database, so a restart resumes where it stopped: native push, outbound webhooks, and the
//! notifier (email and Matrix). On the
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

    /// When the next piece of work waiting for a time comes due, so the outbox ticks then
    /// rather than at its next [`RENEW`].
    fn next_due(&self) -> Option<jiff::Timestamp> {
        None
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

/// Whether this node holds a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holding {
    /// Ours; `took_over` names a node whose lease ran out.
    Ours { took_over: Option<String> },
    /// Another node's.
    Theirs,
    /// The database cannot say now (restarting, unreachable): what this node was doing is kept
    /// and goes on once it can say. Dropping it would make a short database restart send every
    /// entry since the last saved cursor again.
    Unknown,
}

/// Takes or renews the lease `name` for this node.
pub async fn hold(state: &AppState, name: &str) -> Holding {
    let now = state.clock.now();
    match state.store.lease(name, &state.node, now, now + LEASE).await {
        Ok(reveille_store::Lease::Granted { took_over }) => Holding::Ours { took_over },
        Ok(reveille_store::Lease::Held(_)) => Holding::Theirs,
        Err(e) => {
            tracing::warn!(error = %e, lease = name, "cannot renew the lease; pausing");
            Holding::Unknown
        }
    }
}

/// Runs `work` while holding the lease `name`, renewing it every [`RENEW`] however long `work`
/// takes (a slow provider must not let the lease lapse and another node do the same work). None
/// when another node holds the lease now: `work` is dropped there. While the database cannot
/// say, `work` goes on.
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
                if hold(state, name).await == Holding::Theirs {
                    return None;
                }
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

    /// Saves the cursor after `handled`, kept before the oldest entry whose work still waits in
    /// memory (`waiting`).
    async fn save(&self, state: &AppState, waiting: Option<i64>, handled: i64) {
        let saved = waiting.map_or(handled, |w| handled.min(w - 1));
        if let Err(e) = state.store.set_meta(self.cursor, &saved.to_string()).await {
            tracing::error!(error = %e, outbox = self.lease, "cannot save the cursor");
        }
    }
}

/// An outbox as a job ([`crate::jobs`]): each step holds (or takes) the lease, hands the next
/// batch of the feed to the handler, and lets it tick.
pub struct Outboxed<H> {
    outbox: Outbox,
    handler: H,
    /// Where this node is while it holds the lease; None until it has read the saved cursor.
    cursor: Option<i64>,
    /// The stopped node this one took over from, until its first batch is handled.
    again: Option<String>,
    next: Next,
    /// The wait after an entry that could not be handled; it doubles up to [`RENEW`].
    retry: Duration,
    head: Option<tokio::sync::watch::Receiver<i64>>,
    /// Handled up to here, not saved yet: saved after the tick, so what a batch made due goes
    /// out without waiting for the cursor's commit.
    unsaved: Option<i64>,
}

/// What the next step waits for.
enum Next {
    /// More to read: at once.
    Now,
    /// An entry could not be handled, or the lease is another node's.
    Wait(Duration),
    /// Nothing new: the next commit, or [`RENEW`].
    News,
}

impl<H: Handler> Outboxed<H> {
    pub fn new(outbox: Outbox, handler: H) -> Self {
        Self {
            outbox,
            handler,
            cursor: None,
            again: None,
            next: Next::Now,
            retry: FIRST_RETRY,
            head: None,
            unsaved: None,
        }
    }

    /// This node no longer holds the outbox: what it held in memory is the new holder's to do.
    fn lost(&mut self) {
        if self.cursor.take().is_some() {
            tracing::warn!(outbox = self.outbox.lease, "lost the lease");
        }
        self.unsaved = None;
        self.handler.reset();
        self.next = Next::Wait(RENEW);
    }

    /// Hands one batch to the handler; false when the feed or an entry could not be handled
    /// now; an error only when another node took the lease.
    async fn batch(&mut self, state: &AppState, cursor: i64) -> Result<bool, String> {
        let batch = match state.store.feed_all_since(cursor, 200).await {
            Ok(batch) => batch,
            // Read again after the backoff, with everything in memory kept.
            Err(e) => {
                tracing::warn!(error = %e, outbox = self.outbox.lease, "cannot read the feed now");
                return Ok(false);
            }
        };
        if batch.is_empty() {
            self.next = Next::News;
            return Ok(true);
        }
        let (lease, mut at) = (self.outbox.lease, cursor);
        let mut outcome = Ok(true);
        for (user, entry) in batch {
            let handling = self.handler.handle(state, &user, &entry, self.again.as_deref());
            match while_held(state, lease, handling).await {
                Some(Ok(())) => at = entry.id,
                // Never readable: passed over, loudly, rather than holding up every page behind it.
                Some(Err(reveille_store::Error::Corrupt(why))) => {
                    tracing::error!(outbox = lease, entry = entry.id, incident = entry.incident.id, %why, "an entry's incident cannot be read; passed over");
                    at = entry.id;
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, outbox = lease, after = at, "cannot act on an entry now; trying it again in {:?}", self.retry);
                    outcome = Ok(false);
                    break;
                }
                None => {
                    outcome = Err("lost the lease while acting on an entry".to_owned());
                    break;
                }
            }
        }
        if at > cursor {
            self.unsaved = Some(at);
            self.cursor = Some(at);
        }
        if outcome == Ok(true) {
            self.again = None;
        }
        outcome
    }
}

#[async_trait::async_trait]
impl<H: Handler + 'static> crate::jobs::Job for Outboxed<H> {
    fn name(&self) -> &'static str {
        self.outbox.lease
    }

    async fn step(&mut self, state: &AppState) -> Result<(), String> {
        if self.head.is_none() {
            self.head = Some(state.store.hub().head());
        }
        let took_over = match hold(state, self.outbox.lease).await {
            Holding::Ours { took_over } => took_over,
            Holding::Theirs => {
                self.lost();
                return Ok(());
            }
            Holding::Unknown => {
                self.next = Next::Wait(RENEW);
                return Ok(());
            }
        };
        if let Some(node) = took_over {
            tracing::warn!(stopped = %node, outbox = self.outbox.lease, "took over from a node that stopped");
            self.handler.reset();
            (self.again, self.cursor) = (Some(node), None);
        }
        let cursor = match self.cursor {
            Some(cursor) => cursor,
            None => match self.outbox.cursor(state).await {
                Ok(cursor) => *self.cursor.insert(cursor),
                Err(e) => {
                    self.next = Next::Wait(RENEW);
                    return Err(format!("cannot read the cursor: {e}"));
                }
            },
        };
        self.next = Next::Now;
        match self.batch(state, cursor).await {
            Ok(true) => self.retry = FIRST_RETRY,
            Ok(false) => {
                self.next = Next::Wait(self.retry);
                self.retry = (self.retry * 2).min(RENEW);
            }
            Err(e) => {
                self.lost();
                return Err(e);
            }
        }
        if while_held(state, self.outbox.lease, self.handler.tick(state)).await.is_none() {
            self.lost();
            return Ok(());
        }
        if let Some(at) = self.unsaved.take() {
            self.outbox.save(state, self.handler.waiting(), at).await;
        }
        Ok(())
    }

    async fn until_due(&mut self, state: &AppState) {
        // Work waiting for a time (a rule's delay) is ticked when it comes due, not up to a
        // RENEW later.
        let due = self.handler.next_due().map(|due| due.duration_since(state.clock.now()));
        let patience = due.map_or(RENEW, |d| d.unsigned_abs().min(RENEW));
        let patience = if due.is_some_and(|d| d.is_negative()) { Duration::ZERO } else { patience };
        match (&self.next, self.head.as_mut()) {
            (Next::Now, _) => {}
            (Next::Wait(wait), _) => tokio::time::sleep(*wait).await,
            (Next::News, Some(head)) => {
                tokio::select! {
                    _ = head.changed() => {}
                    () = tokio::time::sleep(patience) => {}
                }
            }
            (Next::News, None) => tokio::time::sleep(patience).await,
        }
    }
}

/// The oldest cursor of the outboxes in use: retention keeps every feed entry after it. `None`
/// when no outbox runs.
pub async fn oldest(state: &AppState) -> Option<reveille_store::Result<i64>> {
    let push = &state.settings().push;
    let mut used = Vec::new();
    if push.fcm.is_some() || push.apns.is_some() {
        used.push(PUSH);
    }
    if !state.settings().webhooks.is_empty() {
        used.push(WEBHOOKS);
    }
    if crate::deliver::notify::wanted(&state.settings()) {
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
