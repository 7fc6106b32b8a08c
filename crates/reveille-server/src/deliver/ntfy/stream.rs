//! The four ntfy stream formats over one follower: `/json` (one JSON object per line), `/sse`,
//! `/raw` (message text only) and `/ws` (one JSON object per text frame, WebSocket pings as
//! keepalives, and deliberately small buffers: a phone reads a few small messages).

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ws::{Message as Ws, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use jiff::SignedDuration;
use reveille_protocol::{FeedKind, IncidentState};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::message::{self, Message};
use super::{NtfyError, Params, Subscription, authorize};
use crate::AppState;
use crate::deliver::follow::{Frame, follow};
use crate::http::listen::Slot;

/// Turns follower frames into ntfy messages for one subscription.
#[derive(Clone)]
struct Renderer {
    state: AppState,
    user: String,
    topic: String,
    topics: String,
    /// The prefix of the token that opened the stream; the ack links it mints carry it.
    token: String,
}

fn random_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    crate::http::auth::random::<12>()
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % 62] as char)
        .collect()
}

impl Renderer {
    async fn render(&self, frame: Frame) -> Option<Message> {
        let now = self.state.clock.now().as_second();
        match frame {
            Frame::Open { .. } => Some(Message::control("open", &self.topics, random_id(), now)),
            Frame::Beat => Some(Message::control("keepalive", &self.topics, random_id(), now)),
            Frame::Entry { event, replayed } => {
                let incident = &event.incident;
                if event.kind == FeedKind::Page && replayed {
                    // A page from the backlog rings only if the incident still waits for someone.
                    // One whose state cannot be read now rings: were it answered, the entry that
                    // says so follows in the backlog and clears it, while a page skipped is lost.
                    let current =
                        self.state.store.incident(incident.id).await.map(|d| d.incident.state);
                    match current {
                        Ok(IncidentState::Triggered) => {}
                        Ok(_) | Err(reveille_store::Error::NotFound(_)) => return None,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot read a replayed page's incident; it rings")
                        }
                    }
                }
                // Read per page, so a rotated key is used at once by streams already open.
                let secret = match event.kind {
                    FeedKind::Page => crate::http::links::secret(&self.state).await.ok(),
                    FeedKind::Incident => None,
                };
                let ack = secret.map(|secret| {
                    let hours = i64::from(self.state.settings().phone.ack_link_hours);
                    let expires = self.state.clock.now() + SignedDuration::from_hours(hours);
                    let base = &self.state.settings().server.base_url;
                    crate::http::links::ack_url(
                        base,
                        &secret,
                        incident.id,
                        &self.user,
                        expires,
                        Some(&self.token),
                    )
                });
                message::from_entry(
                    &event,
                    &self.topic,
                    &self.state.settings().server.base_url,
                    ack,
                )
            }
        }
    }
}

async fn open(
    state: &AppState,
    topics: &str,
    headers: &HeaderMap,
    params: &Params,
) -> Result<(Renderer, mpsc::Receiver<Frame>), NtfyError> {
    let Subscription { user, topic, topics, start, token } =
        authorize(state, topics, headers, params).await?;
    let keepalive = Duration::from_secs(state.settings().phone.keepalive_seconds);
    let frames = follow(state, &user, start, keepalive).await.map_err(|e| match e.code {
        reveille_protocol::ErrorCode::RateLimited => NtfyError::TOO_MANY_SUBSCRIPTIONS,
        _ => NtfyError::UNAVAILABLE,
    })?;
    Ok((Renderer { state: state.clone(), user, topic, topics, token }, frames))
}

/// `GET /{topics}/json|sse|raw`: an HTTP stream of messages in that format (and `/auth`).
pub async fn http(
    State(state): State<AppState>,
    Path((topics, format)): Path<(String, String)>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    let (content_type, write): (&str, fn(&Message) -> String) = match format.as_str() {
        // The Android app's HTTP library needs the charset.
        "json" => ("application/x-ndjson; charset=utf-8", json_line),
        "sse" => ("text/event-stream; charset=utf-8", sse_event),
        "raw" => ("text/plain; charset=utf-8", raw_line),
        "auth" => return super::check(&state, &topics, &headers, params).await,
        _ => return crate::error::ApiError::not_found("no such endpoint").into_response(),
    };
    let (renderer, frames) = match open(&state, &topics, &headers, &params).await {
        Ok(opened) => opened,
        Err(e) => return e.into_response(),
    };
    let body = ReceiverStream::new(frames)
        .then(move |frame| {
            let renderer = renderer.clone();
            async move { renderer.render(frame).await }
        })
        .filter_map(move |m| async move { m.map(|m| Ok::<_, Infallible>(Bytes::from(write(&m)))) });
    ([(header::CONTENT_TYPE, content_type)], Body::from_stream(body)).into_response()
}

fn json_line(m: &Message) -> String {
    format!("{}\n", serde_json::to_string(m).expect("messages serialise"))
}

fn sse_event(m: &Message) -> String {
    let data = serde_json::to_string(m).expect("messages serialise");
    if m.is_message_like() {
        format!("data: {data}\n\n")
    } else {
        format!("event: {}\ndata: {data}\n\n", m.event)
    }
}

fn raw_line(m: &Message) -> String {
    match (m.event, &m.message) {
        ("message", Some(text)) => format!("{}\n", text.replace('\n', " ")),
        _ => "\n".to_owned(),
    }
}

pub async fn ws(
    State(state): State<AppState>,
    Path(topics): Path<String>,
    headers: HeaderMap,
    Query(params): Query<Params>,
    slot: Option<Extension<Slot>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let (renderer, frames) = match open(&state, &topics, &headers, &params).await {
        Ok(opened) => opened,
        Err(e) => return e.into_response(),
    };
    upgrade
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .max_write_buffer_size(64 * 1024)
        .max_message_size(4 * 1024)
        .max_frame_size(4 * 1024)
        .on_upgrade(move |socket| async move {
            // The socket keeps its connection's place under server.max_connections.
            let _slot = slot;
            pump(socket, renderer, frames).await;
        })
}

async fn pump(mut socket: WebSocket, renderer: Renderer, mut frames: mpsc::Receiver<Frame>) {
    loop {
        tokio::select! {
            frame = frames.recv() => {
                let Some(frame) = frame else { break };
                let out = match frame {
                    // Keepalives are WebSocket pings, as ntfy sends them.
                    Frame::Beat => Ws::Ping(Bytes::new()),
                    frame => match renderer.render(frame).await {
                        Some(m) => Ws::Text(serde_json::to_string(&m).expect("messages serialise").into()),
                        None => continue,
                    },
                };
                if socket.send(out).await.is_err() {
                    break;
                }
            }
            incoming = socket.recv() => match incoming {
                // Pings are answered by the WebSocket layer; the client sends nothing else.
                Some(Ok(Ws::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
}
