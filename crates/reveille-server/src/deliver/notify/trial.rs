//! `POST /api/v1/people/{user}/notify-test` (admin): a real test call or text to a person
//! through the same path as a page, answered with how it went (a call waits for its end). The
//! outcome is recorded for the readiness board.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use reveille_core::notify::Channel;
use reveille_protocol::api::{NotifyTestOutcome, NotifyTestRequest};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::auth::{Caller, Scope};

pub async fn run(
    State(state): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
    body: Bytes,
) -> ApiResult<Json<NotifyTestOutcome>> {
    caller.require(Scope::Admin)?;
    let request: NotifyTestRequest = crate::http::incidents::parse_json(&body)?;
    let channel = match request.channel.as_str() {
        "call" => Channel::Call,
        "sms" => Channel::Sms,
        other => return Err(ApiError::invalid("channel", format!("{other:?} is not call or sms"))),
    };
    let settings = state.settings();
    let Some(person) = settings.users.iter().find(|u| u.name == user) else {
        return Err(ApiError::not_found(format!("no user {user:?}")));
    };
    if !settings.channels(person).contains(&channel) {
        let why = format!(
            "{user} cannot be reached by {}: the server needs [sip]/[sms]/[twilio] and the person a phone number",
            request.channel
        );
        return Err(ApiError::invalid("channel", why));
    }
    let outcome = crate::deliver::voice::test_call(&state, &user, channel).await;
    Ok(Json(NotifyTestOutcome {
        user,
        channel: request.channel,
        ok: outcome.is_ok(),
        outcome: outcome.unwrap_or_else(|e| e),
    }))
}
