//! Reveille's REST API for people and devices: incidents, commands, receipts, runbooks.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderValue;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use jiff::SignedDuration;
use reveille_core::Command;
use reveille_protocol::api::SnoozeRequest;
use reveille_protocol::console::{IncidentDetailView, IncidentPage, IncidentView};
use reveille_protocol::{IncidentState, Receipt, Urgency};
use reveille_store::IncidentFilter;
use serde::Deserialize;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::auth::{Caller, Scope};

/// `GET /api/v1/whoami`: who a token belongs to; clients use it to check a token.
pub async fn whoami(caller: Caller) -> Json<serde_json::Value> {
    let scopes: Vec<&str> = caller.scopes.iter().map(|s| s.as_str()).collect();
    Json(serde_json::json!({ "user": caller.user, "scopes": scopes }))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Include resolved incidents (the same as `state=all`).
    #[serde(default)]
    all: bool,
    /// `open` (the default), `all`, or one state.
    state: Option<String>,
    /// Only incidents the caller was paged for.
    #[serde(default)]
    mine: bool,
    service: Option<String>,
    urgency: Option<String>,
    /// Created at or after, and before (RFC 3339).
    since: Option<String>,
    until: Option<String>,
    /// The `next_before` of the page before.
    before: Option<i64>,
    limit: Option<usize>,
}

fn timestamp(field: &str, value: Option<&str>) -> ApiResult<Option<jiff::Timestamp>> {
    value
        .map(|v| {
            v.parse().map_err(|_| {
                ApiError::invalid(field, format!("{field} must be an RFC 3339 time, not {v:?}"))
            })
        })
        .transpose()
}

impl ListQuery {
    fn filter(self, caller: &Caller) -> ApiResult<IncidentFilter> {
        let (open_only, state) = match self.state.as_deref() {
            None if self.all => (false, None),
            None | Some("open") => (true, None),
            Some("all") => (false, None),
            Some(other) => (
                false,
                Some(IncidentState::parse(other).ok_or_else(|| {
                    ApiError::invalid(
                        "state",
                        "state must be open, all, triggered, acknowledged, snoozed or resolved",
                    )
                })?),
            ),
        };
        let urgency = match self.urgency.as_deref() {
            None => None,
            Some("high") => Some(Urgency::High),
            Some("low") => Some(Urgency::Low),
            Some(_) => return Err(ApiError::invalid("urgency", "urgency must be high or low")),
        };
        Ok(IncidentFilter {
            open_only,
            state,
            urgency,
            service: self.service.filter(|s| !s.is_empty()),
            user: self.mine.then(|| caller.user.clone()),
            drill: None,
            since: timestamp("since", self.since.as_deref())?,
            until: timestamp("until", self.until.as_deref())?,
            before: self.before,
            limit: self.limit.unwrap_or(100).clamp(1, 1000),
        })
    }
}

/// `GET /api/v1/incidents`: incidents newest first, open ones unless asked otherwise, a page at
/// a time (`next_before` names the next page).
pub async fn list_incidents(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<IncidentPage>> {
    caller.require(Scope::Read)?;
    let filter = query.filter(&caller)?;
    let limit = filter.limit;
    let incidents = state.store.incidents(filter).await?;
    let next_before = (incidents.len() == limit).then(|| incidents.last().map(|i| i.id)).flatten();
    let incidents = incidents.into_iter().map(IncidentView::from).collect();
    Ok(Json(IncidentPage { incidents, next_before }))
}

fn incident_id(raw: &str) -> ApiResult<i64> {
    raw.parse().map_err(|_| ApiError::not_found(format!("incident {raw:?} not found")))
}

/// `GET /api/v1/incidents/{id}`: one incident with its timeline.
pub async fn get_incident(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<IncidentDetailView>> {
    caller.require(Scope::Read)?;
    Ok(Json(state.store.incident(incident_id(&id)?).await?.into()))
}

/// `GET /api/v1/incidents/{id}/postmortem`: the incident written up as markdown, to download.
pub async fn postmortem(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    caller.require(Scope::Read)?;
    let id = incident_id(&id)?;
    let detail = state.store.incident(id).await?;
    let disposition = format!("attachment; filename=\"incident-{id}.md\"");
    Ok((
        [
            (CONTENT_TYPE, "text/markdown; charset=utf-8".to_owned()),
            (CONTENT_DISPOSITION, disposition),
        ],
        reveille_protocol::postmortem::markdown(&detail),
    ))
}

async fn command(
    state: &AppState,
    caller: &Caller,
    id: &str,
    command: Command,
) -> ApiResult<Json<IncidentView>> {
    caller.require(Scope::Respond)?;
    let id = incident_id(id)?;
    let incident = state.store.command(id, &caller.user, command, state.clock.now()).await?;
    Ok(Json(incident.into()))
}

/// `POST /api/v1/incidents/{id}/ack`
pub async fn ack(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<IncidentView>> {
    command(&state, &caller, &id, Command::Acknowledge).await
}

/// `POST /api/v1/incidents/{id}/resolve`
pub async fn resolve(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<IncidentView>> {
    command(&state, &caller, &id, Command::Resolve).await
}

/// `POST /api/v1/incidents/{id}/snooze` with `{"seconds": N}`
pub async fn snooze(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<IncidentView>> {
    let request: SnoozeRequest = parse_json(&body)?;
    if request.seconds == 0 || request.seconds > 7 * 24 * 3600 {
        return Err(ApiError::invalid("seconds", "seconds must be between 1 and 604800 (a week)"));
    }
    let until = state.clock.now() + SignedDuration::from_secs(request.seconds as i64);
    let incident = command(&state, &caller, &id, Command::Snooze { until }).await?;
    state.wake.notify_one();
    Ok(incident)
}

/// `POST /api/v1/incidents/{id}/receipts`: a device reports delivered / ringing / acked.
pub async fn receipt(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<IncidentView>> {
    let receipt: Receipt = parse_json(&body)?;
    if receipt.device.trim().is_empty() || receipt.device.len() > 128 {
        return Err(ApiError::invalid(
            "device",
            "device must name the device (1 to 128 characters)",
        ));
    }
    if receipt.volume.is_some_and(|v| !(0.0..=1.0).contains(&v)) {
        return Err(ApiError::invalid("volume", "volume must be between 0.0 and 1.0"));
    }
    let incident = command(&state, &caller, &id, Command::Receipt(receipt)).await?;
    // A silent device may move the escalation ladder on now.
    state.wake.notify_one();
    Ok(incident)
}

#[derive(Debug, Deserialize)]
pub struct RunbookQuery {
    /// `html`: rendered and sanitised as the desktop app shows it.
    format: Option<String>,
}

/// `GET /api/v1/runbooks/{service}`: a service's markdown runbook, or with `?format=html` the
/// same rendered to sanitised HTML, served under a CSP that lets it do nothing.
pub async fn runbook(
    State(state): State<AppState>,
    caller: Caller,
    Path(service): Path<String>,
    Query(query): Query<RunbookQuery>,
) -> ApiResult<Response> {
    caller.require(Scope::Read)?;
    let missing = || ApiError::not_found(format!("service {service:?} has no runbook file"));
    let settings = state.settings();
    let svc = settings.service(&service).ok_or_else(missing)?;
    let file = state.settings().runbook_file(svc).ok_or_else(missing)?;
    let text = tokio::fs::read_to_string(&file).await.map_err(|e| {
        tracing::error!(file = %file.display(), error = %e, "cannot read runbook");
        missing()
    })?;
    match query.format.as_deref() {
        None | Some("markdown") => {
            Ok(([(CONTENT_TYPE, "text/markdown; charset=utf-8")], text).into_response())
        }
        Some("html") => {
            let mut response = (
                [(CONTENT_TYPE, "text/html; charset=utf-8")],
                reveille_client::runbook::render(&text),
            )
                .into_response();
            let csp = HeaderValue::from_static("default-src 'none'; sandbox");
            response.headers_mut().insert(CONTENT_SECURITY_POLICY, csp);
            Ok(response)
        }
        Some(_) => Err(ApiError::invalid("format", "format must be markdown or html")),
    }
}

/// Any other path.
pub async fn no_route() -> ApiError {
    ApiError::not_found("no such endpoint")
}

/// Parses a JSON body, naming the field at fault; anything after the JSON value is refused.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        // serde quotes the offending value: a hostile sender's megabyte is not sent back.
        let inner = crate::ingest::truncate(&e.into_inner().to_string(), 300);
        let field = missing_field(&inner)
            .map_or(path.clone(), |f| if path == "." { f } else { format!("{path}.{f}") });
        let message = if field.is_empty() || field == "." {
            format!("invalid JSON body: {inner}")
        } else {
            format!("invalid JSON body at '{field}': {inner}")
        };
        ApiError::invalid(field, message)
    })?;
    de.end().map_err(|e| ApiError::invalid("", format!("invalid JSON body: {e}")))?;
    // serde_json skips the strings of unknown keys without checking them; JSON is UTF-8 throughout.
    if let Err(e) = std::str::from_utf8(body) {
        let at = e.valid_up_to();
        return Err(ApiError::invalid("", format!("invalid JSON body: not UTF-8 at byte {at}")));
    }
    Ok(value)
}

/// serde reports a missing field on its parent; pull out the field's own name.
pub fn missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next().map(str::to_owned)
}
