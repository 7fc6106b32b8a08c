//! Live views for the web console, as Server-Sent Events:
//!
//! - `GET /api/v1/incidents/stream`: `incident` (an [`IncidentView`]) whenever an incident is
//!   opened or changes: read from everyone's committed feed, and from the newest incidents (an
//!   incident that paged nobody has no feed entry);
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
use crate::error::ApiResult;
use crate::http::auth::{Caller, Scope};

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

/// Console streams open per person on this node: each costs a task and store reads, so a person
/// may hold `server.max_streams_per_user` of them, as of feed streams.
#[derive(Default)]
pub struct Streams(std::sync::Mutex<std::collections::HashMap<String, usize>>);

/// Counts one open console stream until dropped.
struct Open {
    streams: std::sync::Arc<Streams>,
    user: String,
}

impl Drop for Open {
    fn drop(&mut self) {
        let mut open = self.streams.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.user);
            }
        }
    }
}

fn open_stream(state: &AppState, user: &str) -> ApiResult<Open> {
    let max = state.settings().server.max_streams_per_user;
    let mut open = state.console_streams.0.lock().unwrap_or_else(|p| p.into_inner());
    let n = open.entry(user.to_owned()).or_default();
    if *n >= max {
        let message = format!("{user} already has {max} console streams open; close a tab");
        return Err(crate::error::ApiError::new(
            reveille_protocol::ErrorCode::RateLimited,
            message,
        ));
    }
    *n += 1;
    Ok(Open { streams: state.console_streams.clone(), user: user.to_owned() })
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
        let every = Duration::from_secs(state.settings().server.heartbeat_seconds);
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
                    let live = crate::http::auth::token_live(state, &caller.digest).await;
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
    let mut commits = state.store.hub().commits();
    let mut cursor = state.store.feed_head().await?;
    let mut recent = Recent::read(&state).await?;
    let counted = open_stream(&state, &caller.user)?;
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let _counted = counted;
        if tx.send(open(&state)).await.is_err() {
            return;
        }
        let mut beat = Beat::new(&state);
        loop {
            let changed = async {
                tokio::select! {
                    r = head.changed() => r.is_ok(),
                    r = commits.changed() => r.is_ok(),
                    // Another node's commit that paged nobody signals nothing here.
                    () = tokio::time::sleep(Recent::EVERY) => true,
                }
            };
            if !beat.wait(&state, &caller, changed, &tx).await {
                return;
            }
            let mut changes = match feed_changes(&state, &mut cursor).await {
                Ok(changes) => changes,
                Err(e) => {
                    tracing::warn!(error = e.message, "cannot read the feed for the console");
                    Vec::new()
                }
            };
            match recent.changes(&state).await {
                Ok(more) => {
                    let more: Vec<_> =
                        more.into_iter().filter(|i| changes.iter().all(|c| c.id != i.id)).collect();
                    changes.extend(more);
                }
                Err(e) => {
                    tracing::warn!(error = e.message, "cannot list incidents for the console")
                }
            }
            for incident in changes {
                recent.sent(&incident);
                if tx.send(event("incident", &incident)).await.is_err() {
                    return;
                }
            }
        }
    });
    Ok(frames(rx))
}

/// The incidents the committed feed says changed since `cursor` (which it moves on), each once,
/// as it was last.
async fn feed_changes(state: &AppState, cursor: &mut i64) -> ApiResult<Vec<IncidentView>> {
    let mut latest: Vec<IncidentView> = Vec::new();
    loop {
        let batch = state.store.feed_all_since(*cursor, 500).await?;
        let Some((_, last)) = batch.last() else { return Ok(latest) };
        *cursor = last.id;
        // Every person paged gets an entry for the same change.
        for (_, entry) in batch {
            latest.retain(|i| i.id != entry.incident.id);
            latest.push(entry.incident.into());
        }
    }
}

/// The newest incidents as last sent: what changed among them is sent too, so an incident that
/// paged nobody (nobody on call: no feed entry) still reaches the console.
struct Recent {
    seen: std::collections::HashMap<i64, jiff::Timestamp>,
    read: Instant,
}

impl Recent {
    /// How many of the newest incidents are compared.
    const SIZE: usize = 200;
    /// Compared at least this often, and at most four times as often.
    const EVERY: Duration = Duration::from_secs(1);

    async fn newest(state: &AppState) -> ApiResult<Vec<reveille_protocol::Incident>> {
        let filter = reveille_store::IncidentFilter { limit: Self::SIZE, ..Default::default() };
        Ok(state.store.incidents(filter).await?)
    }

    async fn read(state: &AppState) -> ApiResult<Self> {
        let seen = Self::newest(state).await?.into_iter().map(|i| (i.id, i.updated_at)).collect();
        Ok(Self { seen, read: Instant::now() })
    }

    async fn changes(&mut self, state: &AppState) -> ApiResult<Vec<IncidentView>> {
        if self.read.elapsed() < Self::EVERY / 4 {
            return Ok(Vec::new());
        }
        self.read = Instant::now();
        let newest = Self::newest(state).await?;
        let changed = newest
            .iter()
            .filter(|i| self.seen.get(&i.id) != Some(&i.updated_at))
            .rev()
            .map(|i| IncidentView::from(i.clone()))
            .collect();
        self.seen = newest.into_iter().map(|i| (i.id, i.updated_at)).collect();
        Ok(changed)
    }

    fn sent(&mut self, incident: &IncidentView) {
        if let Some(at) = self.seen.get_mut(&incident.id) {
            *at = incident.updated_at;
        }
    }
}

/// `GET /api/v1/readiness/stream`
pub async fn readiness(State(state): State<AppState>, caller: Caller) -> ApiResult<Frames> {
    caller.require(Scope::Read)?;
    let first = crate::oncall::readiness::shared(&state).await?;
    let counted = open_stream(&state, &caller.user)?;
    let (tx, rx) = mpsc::channel(8);
    let mut commits = state.store.hub().commits();
    let mut devices = state.presence.watch();
    tokio::spawn(async move {
        let _counted = counted;
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
            match crate::oncall::readiness::shared(&state).await {
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
