//! Heartbeat monitors (dead-man's switches): a job pings `POST /api/v1/heartbeats/{name}`; a
//! missed ping opens an incident on the monitor's service, and the next ping resolves it.
//! A monitor is armed by its first ping.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use jiff::{SignedDuration, Timestamp};
use reveille_protocol::api::HeartbeatAccepted;
use reveille_protocol::{Action, AlertEvent};

use crate::AppState;
use crate::config::oncall::HeartbeatSettings;
use crate::error::{ApiError, ApiResult};
use crate::http::auth::{Scope, bearer, caller, key_service};
use crate::ingest::{batch, submit};
use reveille_store::Claim;

const SOURCE: &str = "heartbeat";

fn due(h: &HeartbeatSettings, last: Timestamp) -> Timestamp {
    last + SignedDuration::from_secs((h.interval_seconds + h.grace_seconds) as i64)
}

fn event(state: &AppState, h: &HeartbeatSettings, action: Action, last: Timestamp) -> AlertEvent {
    let settings = state.settings();
    let service = settings.service(&h.service).expect("validated: the monitor's service exists");
    AlertEvent {
        action,
        dedup_key: format!("heartbeat/{}", h.name),
        summary: format!(
            "Heartbeat {:?} missed: no ping since {last} (expected every {} s, {} s grace)",
            h.name, h.interval_seconds, h.grace_seconds
        ),
        severity: state.settings().default_severity(service),
        source: h.name.clone(),
        details: serde_json::json!({ "heartbeat": h.name, "last_ping": last }),
        links: Vec::new(),
        runbook_url: None,
        occurred_at: Some(due(h, last)),
    }
}

/// `POST /api/v1/heartbeats/{name}`, with the service's integration key or an `ingest` token.
pub async fn ping(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Json<HeartbeatAccepted>> {
    let settings = state.settings();
    let h = settings
        .heartbeats
        .iter()
        .find(|h| h.name == name)
        .ok_or_else(|| ApiError::not_found(format!("no heartbeat monitor {name:?}")))?;
    let secret = bearer(&headers).ok_or_else(|| {
        ApiError::unauthorized("send the service's integration key: Authorization: Bearer <key>")
    })?;
    if key_service(&state, &secret).await?.as_deref() != Some(h.service.as_str()) {
        let caller = caller(&state, &secret).await?.ok_or_else(|| {
            ApiError::unauthorized("this key or token is unknown, revoked, or for another service")
        })?;
        caller.require(Scope::Ingest)?;
    }
    let now = state.clock.now();
    let before = state.store.heartbeat_ping(&h.name, now).await?;
    if let Some(before) = before.filter(|b| b.missed) {
        submit(
            &state,
            &h.service,
            SOURCE,
            vec![event(&state, h, Action::Resolve, before.last_ping)],
        )
        .await?;
        state.store.set_heartbeat_missed(&h.name, false).await?;
    }
    Ok(Json(HeartbeatAccepted { name: h.name.clone(), next_due: due(h, now) }))
}

/// Opens an incident for every armed monitor whose ping is overdue. The miss is claimed in the
/// transaction that opens the incident: with several nodes, one of them pages, once.
pub async fn check(state: &AppState) -> ApiResult<()> {
    let now = state.clock.now();
    for record in state.store.heartbeats().await? {
        let settings = state.settings();
        let Some(h) = settings.heartbeats.iter().find(|h| h.name == record.name) else {
            continue;
        };
        if record.missed || due(h, record.last_ping) >= now {
            continue;
        }
        let events = vec![event(state, h, Action::Trigger, record.last_ping)];
        let claim = Claim::HeartbeatMissed { name: h.name.clone(), last_ping: record.last_ping };
        let batch = batch(state, &h.service, SOURCE, events)?;
        if state.store.ingest_once(claim, Some(batch)).await?.is_some() {
            state.metrics.event(SOURCE, "accepted", 1);
        }
    }
    Ok(())
}
