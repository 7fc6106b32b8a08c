//! PagerDuty Events API v2: `POST /v2/enqueue`, answered exactly as PagerDuty answers.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use reveille_protocol::formats::pagerduty::{Accepted, Event, Invalid as InvalidBody};
use reveille_protocol::limits::Part;
use reveille_protocol::{Action, AlertEvent, Link, Severity};
use serde_json::{Map, Value, json};

use super::{Invalid, bounded, json, rate_limit, refused, require_json, submit, truncate};
use crate::AppState;
use crate::error::ApiError;
use crate::http::auth::{hash, key_service, new_dedup_key};

const SOURCE: &str = "pagerduty";

pub async fn enqueue(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let event = match require_json(&headers).and_then(|()| json::<Event>(&body)) {
        Ok(event) => event,
        Err(problem) => return invalid(&state, vec![problem]),
    };
    let alert = match to_alert(&event) {
        Ok(alert) => alert,
        Err(problems) => return invalid(&state, problems),
    };
    let key = event.routing_key.unwrap_or_default();
    let service = match key_service(&state, &key).await {
        Ok(Some(service)) => service,
        Ok(None) => {
            let problem = Invalid::new(
                "routing_key",
                "'routing_key' is not the integration key of any service",
            );
            return invalid(&state, vec![problem]);
        }
        Err(e) => return e.into_response(),
    };
    if let Err(e) = rate_limit(&state, SOURCE, &hash(&key)).await {
        // PagerDuty answers 429 with an empty body; clients retry.
        return (e.status(), [("retry-after", e.retry_after.unwrap_or(1).to_string())])
            .into_response();
    }
    let dedup_key = alert.dedup_key.clone();
    match submit(&state, &service, SOURCE, vec![alert]).await {
        Ok(_) => (StatusCode::ACCEPTED, Json(Accepted::new(dedup_key))).into_response(),
        Err(e) => e.into_response(),
    }
}

fn invalid(state: &AppState, problems: Vec<Invalid>) -> Response {
    let errors = problems.iter().map(ToString::to_string).collect();
    let _ = refused(state, SOURCE, "invalid", ApiError::invalid("", ""));
    (StatusCode::BAD_REQUEST, Json(InvalidBody::new(errors))).into_response()
}

fn blank(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(|s| s.trim().is_empty())
}

/// Validates an event the way PagerDuty does and translates it.
pub fn to_alert(event: &Event) -> Result<AlertEvent, Vec<Invalid>> {
    let mut problems = Vec::new();
    if blank(&event.routing_key) {
        problems.push(Invalid::new("routing_key", "'routing_key' is missing or blank"));
    }
    let action = match event.event_action.as_deref() {
        Some("trigger") => Some(Action::Trigger),
        Some("acknowledge") => Some(Action::Acknowledge),
        Some("resolve") => Some(Action::Resolve),
        _ => {
            problems.push(Invalid::new(
                "event_action",
                "'event_action' is invalid (must be one of: trigger, acknowledge, resolve)",
            ));
            None
        }
    };
    if event.dedup_key.as_ref().is_some_and(|k| k.chars().count() > 255) {
        problems.push(Invalid::new("dedup_key", "'dedup_key' is longer than 255 characters"));
    }
    if action.is_some_and(|a| a != Action::Trigger) && blank(&event.dedup_key) {
        problems
            .push(Invalid::new("dedup_key", "'dedup_key' is required to acknowledge or resolve"));
    }
    let payload = event.payload.clone().unwrap_or_default();
    let mut severity = Severity::Critical;
    if action == Some(Action::Trigger) {
        if event.payload.is_none() {
            problems.push(Invalid::new("payload", "'payload' is missing"));
        } else {
            if blank(&payload.summary) {
                problems
                    .push(Invalid::new("payload.summary", "'payload.summary' is missing or blank"));
            }
            if blank(&payload.source) {
                problems
                    .push(Invalid::new("payload.source", "'payload.source' is missing or blank"));
            }
            match payload.severity.as_deref().and_then(Severity::parse) {
                Some(s) => severity = s,
                None => problems.push(Invalid::new(
                    "payload.severity",
                    "'payload.severity' is invalid (must be one of: critical, error, warning, info)",
                )),
            }
        }
    }
    // An unreadable timestamp is kept in the details rather than refusing the page over it.
    let occurred_at = payload.timestamp.as_deref().and_then(parse_time);
    for (i, link) in event.links.iter().enumerate() {
        if blank(&link.href) {
            problems.push(Invalid::new(
                format!("links[{i}].href"),
                format!("'links[{i}].href' is missing"),
            ));
        }
    }
    let Some(action) = action.filter(|_| problems.is_empty()) else {
        return Err(problems);
    };

    let mut details = Map::new();
    match &payload.custom_details {
        Some(Value::Object(map)) => details.extend(map.clone()),
        Some(Value::Null) | None => {}
        Some(other) => {
            details.insert("custom_details".into(), other.clone());
        }
    }
    if let (None, Some(ts)) = (occurred_at, &payload.timestamp) {
        details.insert("timestamp".into(), json!(ts));
    }
    for (name, value) in
        [("component", &payload.component), ("group", &payload.group), ("class", &payload.class)]
    {
        if let Some(v) = value {
            details.insert(name.into(), json!(v));
        }
    }
    let mut links: Vec<Link> = event
        .links
        .iter()
        .map(|l| Link { href: l.href.clone().unwrap_or_default(), text: l.text.clone() })
        .collect();
    if let Some(url) = &event.client_url {
        links.push(Link { href: url.clone(), text: event.client.clone() });
    }
    let runbook_url = ["runbook_url", "runbook"]
        .iter()
        .find_map(|k| details.get(*k).and_then(Value::as_str).map(str::to_owned))
        .or_else(|| {
            links
                .iter()
                .find(|l| {
                    l.text.as_deref().is_some_and(|t| t.to_ascii_lowercase().contains("runbook"))
                })
                .map(|l| l.href.clone())
        });
    let linked = event.links.len();
    let alert = AlertEvent {
        action,
        dedup_key: event
            .dedup_key
            .clone()
            .filter(|k| !k.trim().is_empty())
            .unwrap_or_else(new_dedup_key),
        // PagerDuty keeps the first 1024 characters of a longer summary.
        summary: truncate(payload.summary.as_deref().unwrap_or(""), 1024),
        severity,
        source: payload.source.unwrap_or_default(),
        details: Value::Object(details),
        links,
        runbook_url,
        occurred_at,
    };
    bounded(alert, |part| match part {
        Part::DedupKey => "dedup_key".into(),
        Part::Summary => "payload.summary".into(),
        Part::Source => "payload.source".into(),
        Part::Details => "payload.custom_details".into(),
        Part::Link(i) if i >= linked => "client_url".into(),
        Part::Link(i) => format!("links[{i}]"),
        Part::RunbookUrl => "payload.custom_details.runbook_url".into(),
    })
    .map_err(|p| vec![p])
}

/// Reads ISO 8601 times, including PagerDuty's own `+0000` offsets.
pub fn parse_time(text: &str) -> Option<jiff::Timestamp> {
    text.parse().ok().or_else(|| {
        jiff::fmt::strtime::parse("%Y-%m-%dT%H:%M:%S%.f%z", text).ok()?.to_timestamp().ok()
    })
}
