//! Drills: a practice page that rings one person, never escalates, and records whether it was
//! delivered, rang, and how long the acknowledgement took. Optionally one at every handoff.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use reveille_core::{Policy, ServiceRules, UrgencyRule};
use reveille_protocol::api::{DrillList, DrillRequest, DrillResult};
use reveille_protocol::{Action, AlertEvent, Incident, IncidentDetail, Severity, Urgency};
use reveille_store::{Claim, IncidentFilter, IngestBatch};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::auth::{Caller, Scope, new_dedup_key};
use crate::http::incidents::parse_json;

/// The service name drills are filed under; no configured service may take it.
pub const SERVICE: &str = "drill";

/// Pages `user` with a drill; returns the drill's incident.
pub async fn start(state: &AppState, user: &str, why: &str) -> ApiResult<Incident> {
    let landed = state.store.ingest(drill(state, user, why)).await?;
    let id = landed[0].incident_id.ok_or_else(|| {
        ApiError::new(reveille_protocol::ErrorCode::Internal, "drill not created")
    })?;
    Ok(state.store.incident(id).await?.incident)
}

/// The drill page for `user`, as a batch to ingest.
fn drill(state: &AppState, user: &str, why: &str) -> IngestBatch {
    let rules = ServiceRules {
        urgency: UrgencyRule::Always(Urgency::High),
        drill: true,
        ..ServiceRules::paging(SERVICE, &[user])
    };
    debug_assert_eq!(rules.policy, Policy::users(&[user.to_owned()]));
    let event = AlertEvent {
        action: Action::Trigger,
        dedup_key: new_dedup_key(),
        summary: format!(
            "DRILL for {user}: this is a practice page ({why}). Acknowledge it to pass."
        ),
        severity: Severity::Critical,
        source: "reveille".into(),
        details: serde_json::json!({ "drill": true, "reason": why }),
        links: Vec::new(),
        runbook_url: None,
        occurred_at: None,
    };
    IngestBatch {
        rules,
        source: "drill".into(),
        events: vec![event],
        received_at: state.clock.now(),
    }
}

/// `POST /api/v1/drills` with `{"user": …}` or `{"schedule": …}`.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Json<Incident>> {
    caller.require(Scope::Respond)?;
    let request: DrillRequest = parse_json(&body)?;
    let user = match (request.user, request.schedule) {
        (Some(user), None) => {
            if state.settings().users.iter().all(|u| u.name != user) {
                return Err(ApiError::invalid("user", format!("unknown user {user:?}")));
            }
            user
        }
        (None, Some(schedule)) => {
            let directory = state.directory();
            let s = directory.schedules.get(&schedule).ok_or_else(|| {
                ApiError::invalid("schedule", format!("unknown schedule {schedule:?}"))
            })?;
            s.on_call(state.clock.now()).primary.ok_or_else(|| {
                ApiError::invalid("schedule", format!("nobody is on call in {schedule:?} now"))
            })?
        }
        _ => {
            return Err(ApiError::invalid("user", "give exactly one of user or schedule"));
        }
    };
    let why = format!("requested by {}", caller.user);
    Ok(Json(start(&state, &user, &why).await?))
}

/// `GET /api/v1/drills`: every drill with its results, newest first.
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<DrillList>> {
    caller.require(Scope::Read)?;
    let filter = IncidentFilter { drill: Some(true), limit: 1000, ..Default::default() };
    let mut drills = Vec::new();
    for incident in state.store.incidents(filter).await? {
        drills.push(result(&state.store.incident(incident.id).await?));
    }
    Ok(Json(DrillList { drills }))
}

/// Reads a drill's results off its timeline.
pub fn result(detail: &IncidentDetail) -> DrillResult {
    let i = &detail.incident;
    let receipt =
        |kind: &str| detail.timeline.iter().find(|e| e.kind == "receipt" && e.data["kind"] == kind);
    let acked_at = detail.timeline.iter().find(|e| e.kind == "acknowledged").map(|e| e.at);
    DrillResult {
        incident_id: i.id,
        user: i.paged.first().cloned().unwrap_or_default(),
        started_at: i.created_at,
        delivered_at: receipt("delivered").map(|e| e.at),
        ringing_at: receipt("ringing").map(|e| e.at),
        silent: detail.timeline.iter().any(|e| e.kind == "receipt" && e.data["muted"] == true),
        acked_at,
        seconds_to_ack: acked_at.map(|at| at.duration_since(i.created_at).as_secs_f64()),
    }
}

/// Drills the incoming primary of every schedule that asks for it, once per handoff.
pub async fn at_handoffs(state: &AppState) -> ApiResult<()> {
    let now = state.clock.now();
    let directory = state.directory();
    for schedule in state.settings().schedules.iter().filter(|s| s.drill_at_handoff) {
        let Some(s) = directory.schedules.get(&schedule.name) else {
            continue;
        };
        let name = s.name.clone();
        let Some(last) = state.store.handoff(&s.name).await? else {
            // Start counting handoffs from now; the current holder was not just handed the pager.
            let claim = Claim::Handoff { schedule: name, previous: None, at: now };
            state.store.ingest_once(claim, None).await?;
            continue;
        };
        let Some(handoff) = s.next_change(last).filter(|h| *h <= now) else {
            continue;
        };
        // Claimed with the drill in one transaction: with several nodes, one drill, once.
        let page = s
            .on_call(handoff)
            .primary
            .map(|user| drill(state, &user, &format!("handoff of {name}")));
        let claim = Claim::Handoff { schedule: name, previous: Some(last), at: handoff };
        state.store.ingest_once(claim, page).await?;
    }
    Ok(())
}
