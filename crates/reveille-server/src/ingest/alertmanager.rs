//! Prometheus Alertmanager's webhook (version 4) and Grafana's, which extends it.
//!
//! The key comes in the URL path (`/api/v1/alertmanager/{key}`) or as a Bearer token, both of
//! which Alertmanager's `http_config` can send. One incident per alert fingerprint; resolved
//! alerts resolve. These endpoints never answer 429: Alertmanager drops a notification on any 4xx.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Request, State};
use reveille_protocol::api::EventAccepted;
use reveille_protocol::formats::alertmanager::{Alert, Message};
use reveille_protocol::limits::{MAX_DEPTH, MAX_GROUP_ALERTS, Part, depth};
use reveille_protocol::{Action, AlertEvent, Link, Severity};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{
    Invalid, bounded, first_problem, json, read_body, refused, require_json, submit, truncate,
};
use crate::AppState;
use crate::error::{ApiError, ApiResult, quoted};
use crate::http::auth::key_service;

pub async fn alertmanager(
    state: State<AppState>,
    request: Request,
) -> ApiResult<Json<Vec<EventAccepted>>> {
    let key = crate::http::auth::bearer(request.headers());
    receive(state, "alertmanager", key, request).await
}

pub async fn alertmanager_keyed(
    state: State<AppState>,
    Path(key): Path<String>,
    request: Request,
) -> ApiResult<Json<Vec<EventAccepted>>> {
    receive(state, "alertmanager", Some(key), request).await
}

pub async fn grafana(
    state: State<AppState>,
    request: Request,
) -> ApiResult<Json<Vec<EventAccepted>>> {
    let key = crate::http::auth::bearer(request.headers());
    receive(state, "grafana", key, request).await
}

pub async fn grafana_keyed(
    state: State<AppState>,
    Path(key): Path<String>,
    request: Request,
) -> ApiResult<Json<Vec<EventAccepted>>> {
    receive(state, "grafana", Some(key), request).await
}

async fn receive(
    State(state): State<AppState>,
    source: &'static str,
    key: Option<String>,
    request: Request,
) -> ApiResult<Json<Vec<EventAccepted>>> {
    let unauthorized =
        |message: &str| refused(&state, source, "unauthorized", ApiError::unauthorized(message));
    let key = key.ok_or_else(|| {
        unauthorized(
            "send the service's integration key in the URL path or as Authorization: Bearer <key>",
        )
    })?;
    let service = key_service(&state, &key)
        .await?
        .ok_or_else(|| unauthorized("this integration key is unknown or revoked"))?;
    let (headers, body) = read_body(request).await?;
    let settings = state.settings();
    let svc = settings.service(&service).expect("key_service only returns configured services");
    let default = state.settings().default_severity(svc);
    let message = require_json(&headers)
        .and_then(|()| json::<Message>(&body))
        .map_err(|p| vec![p])
        .and_then(|m| to_alerts(&m, default))
        .map_err(|problems| refused(&state, source, "invalid", first_problem(problems)))?;
    let landed = submit(&state, &service, source, message).await?;
    Ok(Json(
        landed
            .into_iter()
            .map(|l| EventAccepted { dedup_key: l.dedup_key, incident_id: l.incident_id })
            .collect(),
    ))
}

/// Translates every alert of the group; refuses the whole group if any alert is malformed.
///
/// At most [`MAX_GROUP_ALERTS`] alerts become incidents of their own, firing ones first. Past
/// that, a group is not refused (Alertmanager would drop it, and with it the page): the firing
/// alerts left over open one incident of the group saying how many were not stored.
pub fn to_alerts(message: &Message, default: Severity) -> Result<Vec<AlertEvent>, Vec<Invalid>> {
    let Some(alerts) = &message.alerts else {
        return Err(vec![Invalid::new(
            "alerts",
            "'alerts' is missing: not an Alertmanager webhook body",
        )]);
    };
    let mut problems = Vec::new();
    let mut events = Vec::with_capacity(alerts.len().min(MAX_GROUP_ALERTS + 1));
    for (i, alert) in alerts.iter().enumerate() {
        match to_alert(message, alert, default) {
            Ok(event) => match bounded(event, |part| format!("alerts[{i}].{}", field(alert, part)))
            {
                Ok(event) => events.push(event),
                Err(problem) => problems.push(problem),
            },
            Err(message) => problems.push(Invalid::new(
                format!("alerts[{i}].status"),
                format!("alerts[{i}]: {message}"),
            )),
        }
        if alert.labels.is_empty() && alert.fingerprint.as_deref().is_none_or(str::is_empty) {
            problems.push(Invalid::new(
                format!("alerts[{i}].labels"),
                format!("alerts[{i}] has neither labels nor a fingerprint to identify it"),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    if events.len() > MAX_GROUP_ALERTS {
        // Stable: firing alerts first, each kind in the sender's order.
        events.sort_by_key(|e| e.action != Action::Trigger);
        let left = events.split_off(MAX_GROUP_ALERTS);
        events.extend(overflow(message, &left));
    }
    Ok(events)
}

/// The one incident for the firing alerts of a group past [`MAX_GROUP_ALERTS`], if any.
fn overflow(group: &Message, left: &[AlertEvent]) -> Option<AlertEvent> {
    let firing: Vec<&AlertEvent> = left.iter().filter(|e| e.action == Action::Trigger).collect();
    let first = firing.first()?;
    let name = group.group_key.as_deref().or(group.receiver.as_deref()).unwrap_or("");
    let key: String =
        Sha256::digest(name.as_bytes()).iter().take(8).map(|b| format!("{b:02x}")).collect();
    let summary = format!(
        "{} more firing alerts of this group were not stored (at most {MAX_GROUP_ALERTS} per \
         notification; set max_alerts in Alertmanager): {}",
        firing.len(),
        first.summary
    );
    let sample: Vec<&str> = firing.iter().take(20).map(|e| e.summary.as_str()).collect();
    Some(AlertEvent {
        dedup_key: format!("overflow-{key}"),
        summary: truncate(&summary, 1024),
        severity: firing.iter().map(|e| e.severity).max().unwrap_or(first.severity),
        details: json!({ "not_stored": firing.len(), "groupKey": group.group_key, "first": sample }),
        links: Vec::new(),
        runbook_url: None,
        ..(*first).clone()
    })
}

fn to_alert(group: &Message, alert: &Alert, default: Severity) -> Result<AlertEvent, String> {
    let action = match alert.status.as_deref().or(group.status.as_deref()) {
        Some("firing") => Action::Trigger,
        Some("resolved") => Action::Resolve,
        Some(other) => {
            return Err(format!(
                "'status' is {}; must be \"firing\" or \"resolved\"",
                quoted(other)
            ));
        }
        None => return Err("'status' is missing; must be \"firing\" or \"resolved\"".into()),
    };
    let annotation = |name: &str| {
        alert
            .annotations
            .get(name)
            .or_else(|| group.common_annotations.get(name))
            .filter(|s| !s.trim().is_empty())
    };
    let label = |name: &str| alert.labels.get(name).filter(|s| !s.trim().is_empty());
    let summary = annotation("summary")
        .cloned()
        .or_else(|| {
            let description = annotation("description")?;
            description.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_owned)
        })
        .or_else(|| {
            label("alertname").map(|name| match label("instance") {
                Some(instance) => format!("{name} on {instance}"),
                None => name.clone(),
            })
        })
        .or_else(|| group.title.clone().filter(|t| !t.trim().is_empty()))
        .unwrap_or_else(|| "Alert without a summary".into());
    let severity = label("severity")
        .or_else(|| label("priority"))
        .and_then(|s| Severity::parse_loose(s))
        .unwrap_or(default);
    let mut links = Vec::new();
    for (href, text) in [
        (&alert.generator_url, "Source"),
        (&alert.dashboard_url, "Dashboard"),
        (&alert.panel_url, "Panel"),
        (&alert.silence_url, "Silence"),
    ] {
        if let Some(href) = href.as_ref().filter(|h| !h.is_empty()) {
            links.push(Link { href: href.clone(), text: Some(text.into()) });
        }
    }
    let mut details = json!({
        "labels": alert.labels,
        "annotations": alert.annotations,
        "startsAt": alert.starts_at,
        "groupKey": group.group_key,
        "receiver": group.receiver,
    });
    if let Some(values) = &alert.values {
        details["values"] = values.clone();
    }
    Ok(AlertEvent {
        action,
        dedup_key: alert
            .fingerprint
            .clone()
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| fingerprint(&alert.labels)),
        summary: truncate(&summary, 1024),
        severity,
        source: label("instance")
            .or_else(|| label("job"))
            .cloned()
            .or_else(|| group.receiver.clone())
            .unwrap_or_default(),
        details,
        links,
        runbook_url: annotation("runbook_url").cloned(),
        occurred_at: alert.starts_at.as_deref().and_then(|t| t.parse().ok()),
    })
}

/// Where an alert's part comes from, in Alertmanager's (and Grafana's) words.
fn field(alert: &Alert, part: Part) -> &'static str {
    match part {
        Part::Details if alert.values.as_ref().is_some_and(|v| depth(v) >= MAX_DEPTH) => "values",
        Part::DedupKey => "fingerprint",
        Part::Summary => "annotations.summary",
        Part::Source => "labels.instance",
        Part::Details => "annotations",
        Part::Link(_) => "generatorURL",
        Part::RunbookUrl => "annotations.runbook_url",
    }
}

/// A stable identity for an alert that came without Alertmanager's fingerprint.
fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut hasher = Sha256::new();
    for (name, value) in labels {
        hasher.update(name.as_bytes());
        hasher.update([0xff]);
        hasher.update(value.as_bytes());
        hasher.update([0xff]);
    }
    hasher.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary_of(body: &str) -> String {
        let message: Message = serde_json::from_str(body).unwrap();
        to_alerts(&message, Severity::Critical).unwrap().remove(0).summary
    }

    #[test]
    fn a_blank_description_line_or_title_never_makes_an_empty_summary() {
        // Both found by the fuzz target: each made an incident with an empty summary.
        let leading_blank = r#"{"alerts": [{"status": "firing", "fingerprint": "f",
            "annotations": {"description": "\n  Disk almost full\nsecond line"}}]}"#;
        assert_eq!(summary_of(leading_blank), "Disk almost full");
        let empty_title = r#"{"title": " ", "alerts": [{"status": "firing", "fingerprint": "f"}]}"#;
        assert_eq!(summary_of(empty_title), "Alert without a summary");
    }
}
