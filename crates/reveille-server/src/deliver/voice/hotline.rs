//! The hotline: a call to the line opens an incident on `[hotline] service` with the caller's
//! number, pages that service's on-call people as any alert would, and tells the caller who is
//! being paged. Without `[hotline]`, calls to the line are declined.

use reveille_protocol::{Action, AlertEvent, Severity};
use reveille_voice::Incoming;

use super::words;
use crate::AppState;

/// The source hotline incidents name.
pub const SOURCE: &str = "hotline";

/// Opens the hotline's incident for a call from `caller`; what to say to them.
pub async fn open(state: &AppState, caller: &str, via: &str) -> Result<String, String> {
    let settings = state.settings();
    let service = settings.hotline.as_ref().ok_or("no [hotline] is configured")?.service.clone();
    let caller = if caller.is_empty() { "an unknown number" } else { caller };
    let at = state.clock.now();
    let event = AlertEvent {
        action: Action::Trigger,
        // Each call its own incident: two people calling about two things are two pages.
        dedup_key: format!("hotline-{}-{}", caller, at.as_millisecond()),
        summary: format!("Call to the hotline from {caller}"),
        severity: Severity::Critical,
        source: caller.to_owned(),
        details: serde_json::json!({"caller": caller, "via": via}),
        links: vec![],
        runbook_url: None,
        occurred_at: Some(at),
    };
    let landed =
        crate::ingest::submit(state, &service, SOURCE, vec![event]).await.map_err(|e| e.message)?;
    let id = landed.first().and_then(|l| l.incident_id).ok_or("the incident was not opened")?;
    let incident = state.store.incident(id).await.map_err(|e| e.to_string())?.incident;
    tracing::info!(%caller, incident = id, %via, "a call to the hotline opened an incident");
    Ok(words::hotline(&service, id, &incident.paged))
}

/// Answers a call to the SIP line.
pub async fn answer(state: AppState, incoming: Incoming) {
    let caller = incoming.caller().to_owned();
    if state.settings().hotline.is_none() {
        tracing::info!(%caller, "a call to the SIP line was declined: no [hotline] is configured");
        incoming.refuse(reveille_voice::StatusCode::Decline).await;
        return;
    }
    let mut call = match incoming.answer().await {
        Ok(call) => call,
        Err(e) => {
            tracing::warn!(%caller, error = %e, "a call to the hotline could not be answered");
            return;
        }
    };
    let said = match open(&state, &caller, "sip").await {
        Ok(said) => said,
        Err(e) => {
            tracing::error!(%caller, error = %e, "a call to the hotline could not open an incident");
            "This is Reveille. Sorry, your call could not be recorded. Please try another way."
                .into()
        }
    };
    match super::script::render(&state, &said).await {
        Ok(samples) => {
            call.say(&samples, "").await;
        }
        Err(e) => tracing::error!(error = %e, "the hotline cannot speak"),
    }
    call.hang_up().await;
}
