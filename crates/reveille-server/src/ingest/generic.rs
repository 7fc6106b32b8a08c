//! `POST /api/v1/events`: Reveille's own simple JSON event, for scripts and `reveille page`.
//!
//! Authenticate with a service's integration key (the service is implied), or with a token that
//! has the `ingest` scope and name the service in the body.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use reveille_protocol::api::{EventAccepted, GenericEvent};
use reveille_protocol::limits::Part;
use reveille_protocol::{Action, AlertEvent, Severity};
use serde_json::{Value, json};

use super::{
    Invalid, bounded, first_problem, json, rate_limit, read_body, refused, require_json, submit,
    truncate,
};
use crate::AppState;
use crate::error::{ApiError, ApiResult, quoted};
use crate::http::auth::{Scope, bearer, caller, hash, key_service, new_dedup_key};

const SOURCE: &str = "api";

pub async fn event(
    State(state): State<AppState>,
    request: Request,
) -> ApiResult<(StatusCode, Json<EventAccepted>)> {
    let unauthorized = |m: &str| refused(&state, SOURCE, "unauthorized", ApiError::unauthorized(m));
    let secret = bearer(request.headers()).ok_or_else(|| {
        unauthorized("send an integration key or token: Authorization: Bearer <secret>")
    })?;
    let invalid = |e: ApiError| refused(&state, SOURCE, "invalid", e);
    // Authenticate first: strangers learn nothing about what a valid body looks like.
    let keyed = key_service(&state, &secret).await?;
    if keyed.is_none() {
        let caller = caller(&state, &secret)
            .await?
            .ok_or_else(|| unauthorized("this key or token is unknown or revoked"))?;
        caller.require(Scope::Ingest)?;
    }
    let (headers, body) = read_body(request).await?;
    let request = require_json(&headers)
        .and_then(|()| json::<GenericEvent>(&body))
        .map_err(|p| invalid(first_problem(vec![p])))?;
    let service = match (keyed, request.service.clone()) {
        (Some(keyed), Some(named)) if keyed != named => {
            let message = format!(
                "this integration key belongs to service {keyed:?}, not {}",
                quoted(&named)
            );
            return Err(invalid(ApiError::invalid("service", message)));
        }
        (Some(keyed), _) => keyed,
        (None, None) => {
            let message = "'service' is required when sending with a token";
            return Err(invalid(ApiError::invalid("service", message)));
        }
        (None, Some(named)) if state.settings().service(&named).is_none() => {
            let message = format!("service {} is not configured", quoted(&named));
            return Err(invalid(ApiError::invalid("service", message)));
        }
        (None, Some(named)) => named,
    };
    rate_limit(&state, SOURCE, &hash(&secret)).await?;
    let settings = state.settings();
    let svc = settings.service(&service).expect("checked above");
    let event = to_alert(&request, state.settings().default_severity(svc))
        .map_err(|problems| refused(&state, SOURCE, "invalid", first_problem(problems)))?;
    let landed = submit(&state, &service, SOURCE, vec![event]).await?;
    let landed = landed.into_iter().next().expect("one event in, one out");
    Ok((
        StatusCode::ACCEPTED,
        Json(EventAccepted { dedup_key: landed.dedup_key, incident_id: landed.incident_id }),
    ))
}

/// Validates and translates a generic event.
pub fn to_alert(request: &GenericEvent, default: Severity) -> Result<AlertEvent, Vec<Invalid>> {
    let mut problems = Vec::new();
    let action = request.action.unwrap_or(Action::Trigger);
    let summary = request.summary.as_deref().map(str::trim).unwrap_or("");
    if action == Action::Trigger && summary.is_empty() {
        problems.push(Invalid::new("summary", "'summary' is required to trigger"));
    }
    let dedup_key = request.dedup_key.clone().filter(|k| !k.trim().is_empty());
    if action != Action::Trigger && dedup_key.is_none() {
        problems
            .push(Invalid::new("dedup_key", "'dedup_key' is required to acknowledge or resolve"));
    }
    if dedup_key.as_ref().is_some_and(|k| k.chars().count() > 255) {
        problems.push(Invalid::new("dedup_key", "'dedup_key' is longer than 255 characters"));
    }
    let severity = match request.severity.as_deref() {
        None => default,
        Some(s) => Severity::parse_loose(s).unwrap_or_else(|| {
            problems.push(Invalid::new(
                "severity",
                format!("'severity' {} must be one of critical, error, warning, info", quoted(s)),
            ));
            default
        }),
    };
    let details = match &request.details {
        None | Some(Value::Null) => json!({}),
        Some(Value::Object(map)) => Value::Object(map.clone()),
        Some(_) => {
            problems.push(Invalid::new("details", "'details' must be a JSON object"));
            json!({})
        }
    };
    for (i, link) in request.links.iter().enumerate() {
        if link.href.trim().is_empty() {
            problems.push(Invalid::new(
                format!("links[{i}].href"),
                format!("'links[{i}].href' is empty"),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let event = AlertEvent {
        action,
        dedup_key: dedup_key.unwrap_or_else(new_dedup_key),
        summary: truncate(summary, 1024),
        severity,
        source: request.source.clone().unwrap_or_default(),
        details,
        links: request.links.clone(),
        runbook_url: request.runbook.clone().filter(|r| !r.trim().is_empty()),
        occurred_at: None,
    };
    bounded(event, |part| match part {
        Part::DedupKey => "dedup_key".into(),
        Part::Summary => "summary".into(),
        Part::Source => "source".into(),
        Part::Details => "details".into(),
        Part::Link(i) => format!("links[{i}]"),
        Part::RunbookUrl => "runbook".into(),
    })
    .map_err(|p| vec![p])
}
