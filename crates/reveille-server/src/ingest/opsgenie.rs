//! Opsgenie's Alert API v2, for teams leaving Opsgenie: create, acknowledge and close, with
//! `Authorization: GenieKey <key>`, answered with Opsgenie's 202 body.
//!
//! Opsgenie processes requests asynchronously; Reveille has already committed the event when it
//! answers 202. `identifierType` may be `alias` (the dedup key), `id` or `tiny` (both the
//! incident's number).

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use reveille_core::Command;
use reveille_protocol::formats::opsgenie::{Accepted, AlertAction, CreateAlert, Failure};
use reveille_protocol::limits::Part;
use reveille_protocol::{Action, AlertEvent, Severity};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Invalid, bounded, json, rate_limit, read_body, refused, require_json, submit, truncate,
};
use crate::AppState;
use crate::error::{ApiError, quoted};
use crate::http::auth::{hash, key_service, new_dedup_key};

const SOURCE: &str = "opsgenie";

/// Opsgenie's answer shape for failures.
fn failure(status: StatusCode, started: Timestamp, message: String) -> Response {
    let body = Failure {
        message,
        errors: Default::default(),
        took: took(started),
        request_id: new_dedup_key(),
    };
    (status, Json(body)).into_response()
}

fn took(started: Timestamp) -> f64 {
    (Timestamp::now().duration_since(started).as_secs_f64() * 1000.0).round() / 1000.0
}

fn from_api(error: ApiError, started: Timestamp) -> Response {
    let mut response = failure(error.status(), started, error.message.clone());
    if let Some(seconds) = error.retry_after.or((error.status().as_u16() == 503).then_some(5)) {
        response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
    }
    response
}

/// Authenticates `GenieKey <key>` and applies the rate limit; returns the service.
async fn service_of(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("GenieKey "))
        .map(str::trim)
        .ok_or_else(|| {
            refused(
                state,
                SOURCE,
                "unauthorized",
                ApiError::unauthorized("send the integration key as Authorization: GenieKey <key>"),
            )
        })?;
    let service = key_service(state, key).await?.ok_or_else(|| {
        refused(state, SOURCE, "unauthorized", ApiError::unauthorized("Could not authenticate"))
    })?;
    rate_limit(state, SOURCE, &hash(key)).await?;
    Ok(service)
}

fn accepted(started: Timestamp) -> Response {
    let body = Accepted {
        result: "Request will be processed".into(),
        took: took(started),
        request_id: new_dedup_key(),
    };
    (StatusCode::ACCEPTED, Json(body)).into_response()
}

/// `POST /v2/alerts`
pub async fn create(State(state): State<AppState>, request: Request) -> Response {
    let started = Timestamp::now();
    let service = match service_of(&state, request.headers()).await {
        Ok(service) => service,
        Err(e) => return from_api(e, started),
    };
    let (headers, body) = match read_body(request).await {
        Ok(read) => read,
        Err(e) => return from_api(e, started),
    };
    let parsed =
        require_json(&headers).and_then(|()| json::<CreateAlert>(&body)).and_then(|c| to_alert(&c));
    let event = match parsed {
        Ok(event) => event,
        Err(problem) => {
            state.metrics.event(SOURCE, "invalid", 1);
            return failure(StatusCode::BAD_REQUEST, started, problem.with_field());
        }
    };
    match submit(&state, &service, SOURCE, vec![event]).await {
        Ok(_) => accepted(started),
        Err(e) => from_api(e, started),
    }
}

/// Translates a Create Alert body.
pub fn to_alert(create: &CreateAlert) -> Result<AlertEvent, Invalid> {
    let message = create
        .message
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| Invalid::new("message", "Message can not be empty."))?;
    let severity = match create.priority.as_deref().unwrap_or("P3") {
        "P1" => Severity::Critical,
        "P2" => Severity::Error,
        "P3" => Severity::Warning,
        "P4" | "P5" => Severity::Info,
        other => {
            return Err(Invalid::new(
                "priority",
                format!("Priority {} must be one of P1, P2, P3, P4, P5", quoted(other)),
            ));
        }
    };
    if create.alias.as_ref().is_some_and(|a| a.chars().count() > 512) {
        return Err(Invalid::new("alias", "Alias can not be longer than 512 characters."));
    }
    let runbook_url =
        ["runbook_url", "runbook"].iter().find_map(|k| create.details.get(*k).cloned());
    let details = json!({
        "description": create.description,
        "details": create.details,
        "tags": create.tags,
        "entity": create.entity,
        "source": create.source,
        "note": create.note,
        "user": create.user,
    });
    let event = AlertEvent {
        action: Action::Trigger,
        dedup_key: create
            .alias
            .clone()
            .filter(|a| !a.trim().is_empty())
            .unwrap_or_else(new_dedup_key),
        // Opsgenie keeps the first 130 characters of a longer message.
        summary: truncate(message, 130),
        severity,
        source: create.entity.clone().or_else(|| create.source.clone()).unwrap_or_default(),
        details: strip_nulls(details),
        links: Vec::new(),
        runbook_url,
        occurred_at: None,
    };
    bounded(event, |part| match part {
        Part::DedupKey => "alias".into(),
        Part::Summary => "message".into(),
        Part::Source => "entity".into(),
        Part::Details | Part::Link(_) => "details".into(),
        Part::RunbookUrl => "details.runbook_url".into(),
    })
}

fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.into_iter().filter(|(_, v)| !v.is_null()).collect())
        }
        other => other,
    }
}

#[derive(Debug, Deserialize)]
pub struct Identifier {
    #[serde(rename = "identifierType")]
    identifier_type: Option<String>,
}

/// `POST /v2/alerts/{identifier}/acknowledge`
pub async fn acknowledge(
    state: State<AppState>,
    path: Path<String>,
    query: Query<Identifier>,
    request: Request,
) -> Response {
    act(state, path, query, request, Action::Acknowledge).await
}

/// `POST /v2/alerts/{identifier}/close`
pub async fn close(
    state: State<AppState>,
    path: Path<String>,
    query: Query<Identifier>,
    request: Request,
) -> Response {
    act(state, path, query, request, Action::Resolve).await
}

async fn act(
    State(state): State<AppState>,
    Path(identifier): Path<String>,
    Query(query): Query<Identifier>,
    request: Request,
    action: Action,
) -> Response {
    let started = Timestamp::now();
    let service = match service_of(&state, request.headers()).await {
        Ok(service) => service,
        Err(e) => return from_api(e, started),
    };
    let (headers, body) = match read_body(request).await {
        Ok(read) => read,
        Err(e) => return from_api(e, started),
    };
    // The body (user, source, note) is optional, but if sent it must be the documented shape.
    let note = if body.iter().all(u8::is_ascii_whitespace) {
        AlertAction::default()
    } else {
        match require_json(&headers).and_then(|()| json::<AlertAction>(&body)) {
            Ok(note) => note,
            Err(p) => {
                return failure(StatusCode::BAD_REQUEST, started, p.with_field());
            }
        }
    };
    // Whoever holds the key may write any name in `user`: the integration is who acted, and the
    // name is kept beside it as a claim.
    let claimed = note.user.as_deref().map(str::trim).filter(|u| !u.is_empty());
    let landed = match query.identifier_type.as_deref().unwrap_or("id") {
        "alias" => {
            let event = AlertEvent {
                action,
                dedup_key: identifier,
                summary: note.note.clone().unwrap_or_default(),
                severity: Severity::Info,
                source: SOURCE.into(),
                details: Value::Null,
                links: Vec::new(),
                runbook_url: None,
                occurred_at: None,
            };
            match submit(&state, &service, SOURCE, vec![event]).await {
                Ok(landed) => landed.into_iter().find_map(|l| l.incident_id),
                Err(e) => return from_api(e, started),
            }
        }
        // An id names one incident exactly, even if a newer one has the same alias.
        "id" | "tiny" => {
            let not_found = || {
                let message = format!("Alert with id [{identifier}] does not exist");
                failure(StatusCode::NOT_FOUND, started, message)
            };
            let Ok(id) = identifier.parse::<i64>() else {
                return not_found();
            };
            match state.store.incident(id).await {
                Ok(detail) if detail.incident.service == service => {}
                Ok(_) | Err(reveille_store::Error::NotFound(_)) => return not_found(),
                Err(e) => return from_api(e.into(), started),
            }
            let command = match action {
                Action::Acknowledge => Command::Acknowledge,
                _ => Command::Resolve,
            };
            if let Err(e) = state.store.command(id, SOURCE, command, state.clock.now()).await {
                return from_api(e.into(), started);
            }
            state.metrics.event(SOURCE, "accepted", 1);
            Some(id)
        }
        other => {
            return failure(
                StatusCode::BAD_REQUEST,
                started,
                format!("identifierType {} must be one of id, tiny, alias", quoted(other)),
            );
        }
    };
    if let (Some(id), Some(name)) = (landed, claimed) {
        let message =
            format!("The Opsgenie request names {} as who acted (unverified)", quoted(name));
        let command = Command::Note { kind: "claimed".into(), message };
        if let Err(e) = state.store.command(id, SOURCE, command, state.clock.now()).await {
            tracing::warn!(error = %e, "cannot note who an Opsgenie request claims acted");
        }
    }
    accepted(started)
}
