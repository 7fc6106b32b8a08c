//! `POST /api/v1/incidents/{ack,resolve,snooze}` with `{"ids": [...]}`: one action on many
//! incidents in one transaction, so that "acknowledge all" after a storm of 5,000 pages is one
//! request and one commit rather than 5,000 of each. Each incident answers for itself: one that
//! is gone or refuses does not stop the others.

use axum::Json;
use axum::extract::State;
use jiff::SignedDuration;
use reveille_core::Command;
use reveille_protocol::api::{BulkAnswer, BulkRefusal, BulkRequest};
use reveille_protocol::{Receipt, ReceiptKind};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::auth::{Caller, Scope};
use crate::http::incidents::parse_json;

/// Incidents one request may name.
pub const MAX_IDS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
enum Action {
    Ack,
    Resolve,
    Snooze,
}

/// `POST /api/v1/incidents/ack`
pub async fn ack(
    state: State<AppState>,
    caller: Caller,
    body: axum::body::Bytes,
) -> ApiResult<Json<BulkAnswer>> {
    act(state, caller, body, Action::Ack).await
}

/// `POST /api/v1/incidents/resolve`
pub async fn resolve(
    state: State<AppState>,
    caller: Caller,
    body: axum::body::Bytes,
) -> ApiResult<Json<BulkAnswer>> {
    act(state, caller, body, Action::Resolve).await
}

/// `POST /api/v1/incidents/snooze` (`seconds` needed)
pub async fn snooze(
    state: State<AppState>,
    caller: Caller,
    body: axum::body::Bytes,
) -> ApiResult<Json<BulkAnswer>> {
    act(state, caller, body, Action::Snooze).await
}

async fn act(
    State(state): State<AppState>,
    caller: Caller,
    body: axum::body::Bytes,
    action: Action,
) -> ApiResult<Json<BulkAnswer>> {
    caller.require(Scope::Respond)?;
    let request: BulkRequest = parse_json(&body)?;
    if request.ids.is_empty() || request.ids.len() > MAX_IDS {
        return Err(ApiError::invalid("ids", format!("ids must name 1 to {MAX_IDS} incidents")));
    }
    if let Some(device) = &request.device
        && (device.trim().is_empty() || device.len() > 128)
    {
        return Err(ApiError::invalid("device", "device must be 1 to 128 characters"));
    }
    let now = state.clock.now();
    let mut commands = match action {
        Action::Ack => vec![Command::Acknowledge],
        Action::Resolve => vec![Command::Resolve],
        Action::Snooze => {
            let seconds = request.seconds.filter(|s| (1..=7 * 24 * 3600).contains(s));
            let seconds = seconds.ok_or_else(|| {
                ApiError::invalid("seconds", "seconds must be between 1 and 604800 (a week)")
            })?;
            vec![Command::Snooze { until: now + SignedDuration::from_secs(seconds as i64) }]
        }
    };
    if let (Action::Ack, Some(device)) = (action, request.device) {
        let receipt =
            Receipt { kind: ReceiptKind::Acked, device, volume: None, muted: None, output: None };
        commands.push(Command::Receipt(receipt));
    }
    let mut ids = request.ids;
    ids.sort_unstable();
    ids.dedup();
    let answers = state.store.command_many(ids, &caller.user, commands, now).await?;
    if matches!(action, Action::Snooze) {
        state.wake.notify_one();
    }
    let mut answer = BulkAnswer::default();
    for (id, result) in answers {
        match result {
            Ok(_) => answer.done.push(id),
            Err(e) => {
                let code = match e {
                    reveille_store::Error::NotFound(_) => "not_found",
                    _ => "refused",
                };
                answer.refused.push(BulkRefusal { id, code: code.into(), message: e.to_string() });
            }
        }
    }
    Ok(Json(answer))
}
