//! ntfy's publishing API as ingest, so every tool that notifies through ntfy (Apprise and what
//! is built on it, Uptime Kuma, Home Assistant, Proxmox, changedetection.io, `curl`) can page.
//!
//! `PUT`/`POST /{topic}` with the message as the body and ntfy's headers or query parameters, or
//! `POST /` with ntfy's JSON. A service lists the topics it takes (`ntfy_topics`). The sender
//! authenticates in any of ntfy's ways (Bearer, Basic with the secret as the password, `?auth=`)
//! with the service's integration key or a token with the `ingest` scope. Answers are ntfy's: the
//! published message as JSON with 200, or `{"code":…,"http":…,"error":…}`.

pub mod actions;
pub mod message;

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::response::{IntoResponse, Response};

use self::message::{Answer, Params, Published};
use super::{rate_limit, read_body, submit};
use crate::AppState;
use crate::deliver::ntfy::{NtfyError, credential, valid_topic};
use crate::http::auth::{Scope, caller, hash, key_service};

const SOURCE: &str = "ntfy";

/// `PUT`/`POST /{topic}`.
pub async fn publish(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
    request: Request,
) -> Response {
    answer(&state, publish_to(&state, Some(topic), &query, request).await)
}

/// `POST /` with ntfy's JSON.
pub async fn publish_json(
    State(state): State<AppState>,
    Query(query): Query<Vec<(String, String)>>,
    request: Request,
) -> Response {
    answer(&state, publish_to(&state, None, &query, request).await)
}

fn answer(state: &AppState, result: Result<Answer, (&'static str, NtfyError)>) -> Response {
    match result {
        Ok(answer) => Json(answer).into_response(),
        Err((outcome, error)) => {
            // Rate limits and storage count themselves.
            if !outcome.is_empty() {
                state.metrics.event(SOURCE, outcome, 1);
            }
            error.into_response()
        }
    }
}

/// Who may publish: the service an integration key belongs to, or any (a token with `ingest`).
enum Publisher {
    Service(String),
    Token,
}

async fn publish_to(
    state: &AppState,
    topic: Option<String>,
    query: &[(String, String)],
    request: Request,
) -> Result<Answer, (&'static str, NtfyError)> {
    let invalid = |e| ("invalid", e);
    if topic.as_deref().is_some_and(|t| !valid_topic(t)) {
        return Err(invalid(NtfyError::BAD_TOPIC));
    }
    let auth = query.iter().find(|(k, _)| k == "auth").map(|(_, v)| v.as_str());
    let (publisher, key) = authenticate(state, request.headers(), auth).await?;
    // The path names the topic: a sender who may not publish there learns it before any body.
    if let Some(topic) = &topic {
        service_for(state, topic, &publisher)?;
    }
    let (headers, body) = read_body(request).await.map_err(|e| invalid(NtfyError::from_api(e)))?;
    let params = Params { headers: &headers, query };
    let published: Published = match &topic {
        Some(topic) => message::from_params(topic, &params, &body),
        None => message::from_json(&params, &body),
    }
    .map_err(invalid)?;
    let service = service_for(state, &published.topic, &publisher)?;
    rate_limit(state, SOURCE, &key).await.map_err(|e| ("", NtfyError::from_api(e)))?;
    let event = published.to_alert().map_err(invalid)?;
    submit(state, &service, SOURCE, vec![event]).await.map_err(|e| ("", NtfyError::from_api(e)))?;
    Ok(Answer::of(&published, message_id(), state.clock.now().as_second()))
}

/// The publisher, and the digest of its secret (what its rate is counted by).
async fn authenticate(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    auth: Option<&str>,
) -> Result<(Publisher, String), (&'static str, NtfyError)> {
    let unavailable = |e| ("unavailable", NtfyError::from_api(e));
    let (secret, presented) = credential(headers, auth);
    let Some(secret) = secret else {
        let error = if presented { NtfyError::UNAUTHORIZED } else { NtfyError::FORBIDDEN };
        return Err(("unauthorized", error));
    };
    if let Some(service) = key_service(state, &secret).await.map_err(unavailable)? {
        return Ok((Publisher::Service(service), hash(&secret)));
    }
    let caller = caller(state, &secret)
        .await
        .map_err(unavailable)?
        .ok_or(("unauthorized", NtfyError::UNAUTHORIZED))?;
    caller.require(Scope::Ingest).map_err(|_| ("unauthorized", NtfyError::FORBIDDEN))?;
    Ok((Publisher::Token, hash(&secret)))
}

/// The service taking `topic`, if this publisher may publish to it.
fn service_for(
    state: &AppState,
    topic: &str,
    publisher: &Publisher,
) -> Result<String, (&'static str, NtfyError)> {
    let settings = state.settings();
    let Some(service) = settings.services.iter().find(|s| s.ntfy_topics.iter().any(|t| t == topic))
    else {
        let message = format!(
            "no service takes topic {}: list it in a service's ntfy_topics",
            crate::error::quoted(topic)
        );
        return Err(("invalid", NtfyError::new(40401, message)));
    };
    match publisher {
        Publisher::Service(keyed) if *keyed != service.name => {
            let message = format!(
                "forbidden: this integration key belongs to service {keyed:?}, which does not take topic {topic:?}"
            );
            Err(("unauthorized", NtfyError::new(40301, message)))
        }
        _ => Ok(service.name.clone()),
    }
}

/// A random 12-character message id, as ntfy gives each message.
fn message_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    crate::http::auth::random::<12>()
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % 62] as char)
        .collect()
}
