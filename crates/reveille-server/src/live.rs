//! Live views for the web console, as Server-Sent Events:
//!
//! - `GET /api/v1/incidents/stream`: `incident` (an [`IncidentView`]) whenever any incident that
//!   paged someone is opened or changes, read from everyone's feed after it is committed;
//! - `GET /api/v1/readiness/stream`: `readiness` (the whole board) at the start and whenever it
//!   changes: a commit, a device coming or going, or time passing (someone turning deaf).
//!
//! Both start with `open` and send `heartbeat`s; a console that reconnects reads the list again,
//! so nothing is replayed. A stream ends when its session ends or the server shuts down.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, Sse};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use reveille_protocol::console::IncidentView;
use reveille_protocol::feed::Heartbeat;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;

use crate::AppState;
use crate::auth::{Caller, Scope};
use crate::error::ApiResult;

type Frames = Sse<BoxStream<'static, Result<Event, Infallible>>>;

/// How often the readiness board is looked at again without a reason: someone's devices going
/// away turns them deaf only as time passes.
const READINESS_EVERY: Duration = Duration::from_secs(2);

fn event(name: &str, data: &impl serde::Serialize) -> Event {
    let json = serde_json::to_string(data).expect("console views always serialise");
    Event::default().event(name).data(json)
}

fn open(state: &AppState) -> Event {
    event("open", &Heartbeat { time: state.clock.now() })
}

fn frames(rx: mpsc::Receiver<Event>) -> Frames {
    let stream: BoxStream<'static, Result<Event, Infallible>> =
        ReceiverStream::new(rx).map(Ok).boxed();
    Sse::new(stream)
}

/// One console stream's heartbeat: due every `server.heartbeat_seconds` whatever else is sent.
struct Beat {
    next: Instant,
    every: Duration,
}

impl Beat {
    fn new(state: &AppState) -> Self {
        let every = Duration::from_secs(state.settings.server.heartbeat_seconds);
        Self { next: Instant::now() + every, every }
    }

    /// Waits for a change on `changed`, sending heartbeats meanwhile; false at the end of the
    /// stream (the server closing, the reader gone, or the caller's session ended).
    async fn wait(
        &mut self,
        state: &AppState,
        caller: &Caller,
        changed: impl std::future::Future<Output = bool>,
        tx: &mpsc::Sender<Event>,
    ) -> bool {
        let mut closing = state.closing.subscribe();
        if *closing.borrow_and_update() {
            return false;
        }
        tokio::pin!(changed);
        loop {
            tokio::select! {
                alive = &mut changed => return alive,
                () = tokio::time::sleep_until(self.next) => {
                    self.next = Instant::now() + self.every;
                    let beat = event("heartbeat", &Heartbeat { time: state.clock.now() });
                    let live = crate::auth::token_live(state, &caller.digest).await;
                    if !live || tx.send(beat).await.is_err() {
                        return false;
                    }
                }
                _ = closing.changed() => return false,
                () = tx.closed() => return false,
            }
        }
    }
}

/// `GET /api/v1/incidents/stream`
pub async fn incidents(State(state): State<AppState>, caller: Caller) -> ApiResult<Frames> {
    caller.require(Scope::Read)?;
    let mut head = state.store.hub().head();
    let mut cursor = state.store.feed_head().await?;
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        if tx.send(open(&state)).await.is_err() {
            return;
        }
        let mut beat = Beat::new(&state);
        loop {
            let changed = async { head.changed().await.is_ok() };
            if !beat.wait(&state, &caller, changed, &tx).await {
                return;
            }
            loop {
                let batch = match state.store.feed_all_since(cursor, 500).await {
                    Ok(batch) if batch.is_empty() => break,
                    Ok(batch) => batch,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the feed for the console");
                        break;
                    }
                };
                cursor = batch.last().map_or(cursor, |(_, e)| e.id);
                // Every person paged gets an entry for the same change: send each incident once,
                // as it was last.
                let mut latest: Vec<IncidentView> = Vec::new();
                for (_, entry) in batch.into_iter().rev() {
                    if latest.iter().all(|i| i.id != entry.incident.id) {
                        latest.push(entry.incident.into());
                    }
                }
                for incident in latest.into_iter().rev() {
                    if tx.send(event("incident", &incident)).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    Ok(frames(rx))
}

/// `GET /api/v1/readiness/stream`
pub async fn readiness(State(state): State<AppState>, caller: Caller) -> ApiResult<Frames> {
    caller.require(Scope::Read)?;
    let first = crate::readiness::compute(&state).await?;
    let (tx, rx) = mpsc::channel(8);
    let mut commits = state.store.hub().commits();
    let mut devices = state.presence.watch();
    tokio::spawn(async move {
        let mut last = first;
        if tx.send(open(&state)).await.is_err() || tx.send(event("readiness", &last)).await.is_err()
        {
            return;
        }
        let mut beat = Beat::new(&state);
        loop {
            let changed = async {
                tokio::select! {
                    r = commits.changed() => r.is_ok(),
                    r = devices.changed() => r.is_ok(),
                    () = tokio::time::sleep(READINESS_EVERY) => true,
                }
            };
            if !beat.wait(&state, &caller, changed, &tx).await {
                return;
            }
            match crate::readiness::compute(&state).await {
                // Unchanged but for the time it was computed at: nothing to say.
                Ok(board) if board.people == last.people => {}
                Ok(board) => {
                    if tx.send(event("readiness", &board)).await.is_err() {
                        return;
                    }
                    last = board;
                }
                Err(e) => tracing::warn!(error = e.message, "cannot compute readiness"),
            }
        }
    });
    Ok(frames(rx))
}
