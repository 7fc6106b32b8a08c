//! Following one user's feed for one device connection, whatever the wire format.
//!
//! Every stream follows one order: `open`, replay from the last id the device saw, then live
//! entries and heartbeats. The feed head is read first and the live subscription taken second,
//! and the replay reads the store after both, so nothing committed meanwhile is missed; entries
//! are forwarded only if their id is greater than the last one sent, so nothing is sent twice. A
//! connection that falls behind the live channel resyncs from the store and never slows the
//! others. While a connection is open, its user counts as having a live device.
//!
//! Live means live: a connection whose device stops reading (a suspended laptop, a hung app) is
//! closed once a frame has waited [`STALL_BEATS`] heartbeats to be taken, and stops counting as
//! a device; a connection whose token is revoked is closed at its next heartbeat.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use reveille_store::Published;
use tokio::sync::{broadcast, mpsc};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use reveille_protocol::ErrorCode;

/// Entries read from the store per query while replaying.
const PAGE: usize = 500;

/// Heartbeats a frame may wait for the device to take it before the connection is closed.
pub const STALL_BEATS: u32 = 3;

/// What a connection writes, in order.
#[derive(Debug, Clone)]
pub enum Frame {
    /// The stream has started; `head` is the newest feed id at that moment, `pruned_through` the
    /// newest that retention removed.
    Open { head: i64, pruned_through: i64 },
    /// A feed entry; `replayed` when it was committed before the connection opened.
    Entry { event: Arc<Published>, replayed: bool },
    /// Nothing happened for a heartbeat interval.
    Beat,
}

/// Where a connection starts.
#[derive(Debug, Clone, Default)]
pub struct Start {
    /// Replay entries after this id; None starts with what is new.
    pub after: Option<i64>,
    /// Skip replayed entries older than this.
    pub not_before: Option<Timestamp>,
    /// Replay, then end instead of following (ntfy's `poll=1`).
    pub poll: bool,
    /// The digest of the token that opened the stream: it ends when the token is revoked.
    pub token: Option<String>,
    /// What kind of device follows: `desktop`, `watch`, `ntfy` or `feed` (anything else).
    pub device: &'static str,
}

/// Opens a follower for `user`; the frames stop when the receiver is dropped or the server closes.
/// Refused (429) when the user already has `server.max_streams_per_user` streams open.
pub async fn follow(
    state: &AppState,
    user: &str,
    start: Start,
    heartbeat: Duration,
) -> ApiResult<mpsc::Receiver<Frame>> {
    let max = state.settings().server.max_streams_per_user;
    let present = state.presence.connect(user, start.device, max).ok_or_else(|| {
        let message = format!(
            "{user} already has {max} feed streams open (server.max_streams_per_user); close one"
        );
        ApiError::new(ErrorCode::RateLimited, message)
    })?;
    let head = state.store.feed_head().await?;
    let pruned_through = state.store.feed_horizon().await?;
    let live = state.store.hub().subscribe(user);
    // An id beyond the head means the database was replaced: start from its head.
    let last = start.after.map_or(head, |id| id.min(head));
    let (tx, rx) = mpsc::channel(16);
    let stall = heartbeat * STALL_BEATS;
    let pump = Pump { state: state.clone(), user: user.to_owned(), last, start, tx, stall };
    tokio::spawn(pump.run(Frame::Open { head, pruned_through }, live, heartbeat, present));
    Ok(rx)
}

struct Pump {
    state: AppState,
    user: String,
    last: i64,
    start: Start,
    tx: mpsc::Sender<Frame>,
    /// How long a frame may wait for the device to take it.
    stall: Duration,
}

struct Connected(AppState);

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.metrics.feed_connections.dec();
    }
}

impl Pump {
    async fn run(
        mut self,
        open: Frame,
        mut live: broadcast::Receiver<Arc<Published>>,
        every: Duration,
        _present: crate::oncall::presence::Connected,
    ) {
        let state = self.state.clone();
        state.metrics.feed_connections.inc();
        let _connected = Connected(state.clone());
        if !self.start.poll && self.send(open).await.is_err() {
            return;
        }
        let mut closing = state.closing.subscribe();
        if *closing.borrow_and_update() || self.replay().await.is_err() || self.start.poll {
            return;
        }
        // A resuming device learns at once that the replay is over: it acts on each incident's
        // last entry only, and must not wait a whole heartbeat for that.
        if self.start.after.is_some() && self.send(Frame::Beat).await.is_err() {
            return;
        }
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                received = live.recv() => match received {
                    Ok(event) if event.id > self.last => {
                        self.last = event.id;
                        observe_latency(&state, event.at);
                        if self.send(Frame::Entry { event, replayed: false }).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(user = %self.user, missed, "feed connection fell behind; resyncing from the store");
                        state.metrics.feed_resyncs.inc();
                        if self.replay().await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = heartbeat.tick() => {
                    if let Some(token) = &self.start.token
                        && !crate::http::auth::token_live(&state, token).await
                    {
                        tracing::info!(user = %self.user, "the token of a feed stream was revoked; closing it");
                        return;
                    }
                    if self.send(Frame::Beat).await.is_err() {
                        return;
                    }
                }
                _ = closing.changed() => return,
                () = self.tx.closed() => return,
            }
        }
    }

    /// Sends every stored entry after the last one sent; `Err` when the client is gone or the
    /// store fails (the client then reconnects and resumes where it was).
    async fn replay(&mut self) -> Result<(), ()> {
        loop {
            let batch =
                self.state.store.feed_since(&self.user, self.last, PAGE).await.map_err(|e| {
                    tracing::error!(error = %e, "cannot read the feed; closing the connection");
                })?;
            let done = batch.len() < PAGE;
            for event in batch {
                self.last = event.id;
                if self.start.not_before.is_some_and(|t| event.at < t) {
                    continue;
                }
                self.send(Frame::Entry { event: Arc::new(Published::new(event)), replayed: true })
                    .await?;
            }
            if done {
                return Ok(());
            }
        }
    }

    /// Queues a frame for the connection; `Err` when the device is gone or has stopped reading.
    async fn send(&self, frame: Frame) -> Result<(), ()> {
        // Most frames find room at once: no timer for them on the fan-out path.
        let frame = match self.tx.try_send(frame) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(()),
            Err(mpsc::error::TrySendError::Full(frame)) => frame,
        };
        match tokio::time::timeout(self.stall, self.tx.send(frame)).await {
            Ok(sent) => sent.map_err(|_| ()),
            Err(_) => {
                tracing::warn!(
                    user = %self.user, waited = ?self.stall,
                    "a device stopped reading its feed; closing the connection"
                );
                self.state.metrics.feed_closed_stalled.inc();
                Err(())
            }
        }
    }
}

fn observe_latency(state: &AppState, at: Timestamp) {
    let seconds = state.clock.now().duration_since(at).as_secs_f64();
    if seconds >= 0.0 {
        state.metrics.ingest_to_feed.observe(seconds);
    }
}
