//! `GET /api/v1/feed`: a user's pages and incident changes as Server-Sent Events.
//!
//! Every stream follows one order: `open`, replay from the last id the client saw
//! (`Last-Event-ID` or `?since=`), then live entries and `heartbeat`s. The subscription to live
//! entries is taken *before* the replay is read, and entries are forwarded only if their id is
//! greater than the last one sent, so there is no gap and no duplicate. A connection that falls
//! behind the live channel resyncs from the store; it never slows the others.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use jiff::Timestamp;
use reveille_protocol::FeedEvent;
use reveille_protocol::feed::{FeedOpen, Heartbeat};
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::AppState;
use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiResult};

/// Entries read from the store per query while replaying.
const PAGE: usize = 500;

#[derive(Debug, Deserialize)]
pub struct FeedQuery {
    /// Replay entries after this id (like `Last-Event-ID`); `0` replays everything.
    since: Option<i64>,
}

type Frames = ReceiverStream<Result<Event, Infallible>>;

pub async fn subscribe(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Query(query): Query<FeedQuery>,
) -> ApiResult<Sse<Frames>> {
    caller.require(Scope::Read)?;
    let resume = match headers.get("last-event-id") {
        Some(value) => Some(
            value.to_str().ok().and_then(|v| v.trim().parse::<i64>().ok()).ok_or_else(|| {
                ApiError::invalid("Last-Event-ID", "Last-Event-ID must be a feed id (an integer)")
            })?,
        ),
        None => query.since,
    };
    // The head first, then the subscription: an entry committed in between is above the head,
    // so the replay (which reads the store after subscribing) delivers it.
    let head = state.store.feed_head().await?;
    let live = state.store.hub().subscribe(&caller.user);
    // An id beyond the head means the database was replaced: start from its head.
    let start = resume.map_or(head, |id| id.min(head));
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(pump(state, caller.user, start, head, live, tx));
    Ok(Sse::new(ReceiverStream::new(rx)))
}

struct Connected<'a>(&'a AppState);

impl Drop for Connected<'_> {
    fn drop(&mut self) {
        self.0.metrics.feed_connections.dec();
    }
}

/// Writes one connection's frames until the client goes away or the server shuts down.
async fn pump(
    state: AppState,
    user: String,
    mut last: i64,
    head: i64,
    mut live: broadcast::Receiver<std::sync::Arc<FeedEvent>>,
    tx: mpsc::Sender<Result<Event, Infallible>>,
) {
    state.metrics.feed_connections.inc();
    let _connected = Connected(&state);
    let _present = state.presence.connect(&user);
    let open = FeedOpen { user: user.clone(), time: state.clock.now(), head };
    if send(&tx, frame("open", None, &open)).await.is_err() {
        return;
    }
    let every = Duration::from_secs(state.settings.server.heartbeat_seconds);
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let mut closing = state.closing.subscribe();
    if *closing.borrow_and_update() {
        return;
    }
    if replay(&state, &user, &mut last, &tx).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            received = live.recv() => match received {
                Ok(event) if event.id > last => {
                    last = event.id;
                    observe_latency(&state, event.at);
                    if send(&tx, entry(&event)).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(%user, missed, "feed connection fell behind; resyncing from the store");
                    state.metrics.feed_resyncs.inc();
                    if replay(&state, &user, &mut last, &tx).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = heartbeat.tick() => {
                if send(&tx, frame("heartbeat", None, &Heartbeat { time: state.clock.now() })).await.is_err() {
                    return;
                }
            }
            _ = closing.changed() => return,
            () = tx.closed() => return,
        }
    }
}

/// Sends every stored entry after `last`; `Err` when the client is gone or the store fails.
async fn replay(
    state: &AppState,
    user: &str,
    last: &mut i64,
    tx: &mpsc::Sender<Result<Event, Infallible>>,
) -> Result<(), ()> {
    loop {
        let batch = match state.store.feed_since(user, *last, PAGE).await {
            Ok(batch) => batch,
            Err(e) => {
                // The client reconnects with its Last-Event-ID and resumes where it was.
                tracing::error!(error = %e, "cannot read the feed; closing the connection");
                return Err(());
            }
        };
        let done = batch.len() < PAGE;
        for event in batch {
            *last = event.id;
            send(tx, entry(&event)).await?;
        }
        if done {
            return Ok(());
        }
    }
}

fn observe_latency(state: &AppState, at: Timestamp) {
    let seconds = state.clock.now().duration_since(at).as_secs_f64();
    if seconds >= 0.0 {
        state.metrics.ingest_to_feed.observe(seconds);
    }
}

fn entry(event: &FeedEvent) -> Event {
    frame(event.kind.as_str(), Some(event.id), event)
}

fn frame(name: &str, id: Option<i64>, data: &impl serde::Serialize) -> Event {
    let json = serde_json::to_string(data).expect("feed events always serialise");
    let event = Event::default().event(name).data(json);
    match id {
        Some(id) => event.id(id.to_string()),
        None => event,
    }
}

async fn send(tx: &mpsc::Sender<Result<Event, Infallible>>, event: Event) -> Result<(), ()> {
    tx.send(Ok(event)).await.map_err(|_| ())
}
