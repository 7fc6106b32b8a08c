//! `GET /api/v1/feed`: a user's pages and incident changes as Server-Sent Events.
//!
//! `open`, then the entries after the client's `Last-Event-ID` (or `?since=`), then live entries
//! and `heartbeat`s; each entry carries its feed id as the SSE `id`. The ordering guarantees
//! (no gap, no duplicate, slow readers resync) come from [`crate::deliver::follow`].

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use reveille_protocol::feed::{FeedOpen, Heartbeat};
use serde::Deserialize;
use tokio_stream::wrappers::ReceiverStream;

use crate::AppState;
use crate::deliver::follow::{Frame, Start, follow};
use crate::error::{ApiError, ApiResult};
use crate::http::auth::{Caller, Scope};

#[derive(Debug, Deserialize)]
pub struct FeedQuery {
    /// Replay entries after this id (like `Last-Event-ID`); `0` replays everything.
    since: Option<i64>,
}

type Frames = BoxStream<'static, Result<Event, Infallible>>;

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
    let agent = headers.get(axum::http::header::USER_AGENT).and_then(|v| v.to_str().ok());
    let device = match agent.unwrap_or("") {
        a if a.starts_with("reveille-desktop/") => "desktop",
        a if a.starts_with("reveille/") => "watch",
        _ => "feed",
    };
    let start =
        Start { after: resume, token: Some(caller.digest.clone()), device, ..Start::default() };
    let every = Duration::from_secs(state.settings().server.heartbeat_seconds);
    let frames = follow(&state, &caller.user, start, every).await?;
    let clock = state.clock.clone();
    let user = caller.user;
    let events = ReceiverStream::new(frames).map(move |frame| {
        Ok(match frame {
            Frame::Open { head, pruned_through } => {
                let open = FeedOpen { user: user.clone(), time: clock.now(), head, pruned_through };
                sse("open", &open)
            }
            Frame::Entry { event, .. } => Event::default()
                .event(event.kind.as_str())
                .data(event.json())
                .id(event.id.to_string()),
            Frame::Beat => sse("heartbeat", &Heartbeat { time: clock.now() }),
        })
    });
    Ok(Sse::new(events.boxed()))
}

fn sse(name: &str, data: &impl serde::Serialize) -> Event {
    let json = serde_json::to_string(data).expect("feed events always serialise");
    Event::default().event(name).data(json)
}
