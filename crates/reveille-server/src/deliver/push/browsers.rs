//! Browsers subscribed to Web Push from the web console: `GET /api/v1/webpush` (the server's
//! VAPID key), `POST` and `DELETE /api/v1/webpush/subscriptions`. A subscription is kept as a
//! device of platform `webpush` ([`crate::deliver::push::webpush`] sends to it).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use reveille_protocol::ErrorCode;
use reveille_protocol::console::{WebPushInfo, WebPushSubscription};
use reveille_store::DeviceRecord;
use serde::Deserialize;

use crate::AppState;
use crate::deliver::push::devices::MAX_PER_USER;
use crate::deliver::push::webpush::endpoint_allowed;
use crate::error::{ApiError, ApiResult};
use crate::http::auth::{Caller, Scope};
use crate::http::incidents::parse_json;

const PLATFORM: &str = "webpush";

fn endpoint_of(device: &DeviceRecord) -> Option<String> {
    serde_json::from_str::<WebPushSubscription>(&device.token).ok().map(|s| s.endpoint)
}

/// `GET /api/v1/webpush`
pub async fn info(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<WebPushInfo>> {
    caller.require(Scope::Read)?;
    if !state.settings().push.webpush.enabled {
        return Err(ApiError::not_found("browser notifications are off on this server"));
    }
    let public_key = crate::deliver::push::webpush::public_key(&state).await.map_err(|e| {
        tracing::error!(error = %e, "cannot read the Web Push key");
        ApiError::new(ErrorCode::Unavailable, "the server cannot read its Web Push key now")
    })?;
    let devices = state.store.devices(Some(&caller.user)).await?;
    let subscribed = devices.iter().filter(|d| d.platform == PLATFORM).count() as u32;
    Ok(Json(WebPushInfo { public_key, subscribed }))
}

/// `POST /api/v1/webpush/subscriptions` with `PushSubscription.toJSON()`.
pub async fn subscribe(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<StatusCode> {
    caller.require(Scope::Respond)?;
    let subscription: WebPushSubscription = parse_json(&body)?;
    let insecure = state.settings().push.webpush.insecure_endpoints;
    if !endpoint_allowed(&subscription.endpoint, insecure) || subscription.endpoint.len() > 2048 {
        return Err(ApiError::invalid(
            "endpoint",
            "endpoint must be the https URL of a browser's push service",
        ));
    }
    let key = |text: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
    };
    if key(&subscription.keys.p256dh).is_none_or(|k| k.len() != 65) {
        return Err(ApiError::invalid("keys.p256dh", "keys.p256dh must be a P-256 public key"));
    }
    if key(&subscription.keys.auth).is_none_or(|k| k.len() != 16) {
        return Err(ApiError::invalid("keys.auth", "keys.auth must be 16 bytes, base64url"));
    }
    let devices = state.store.devices(Some(&caller.user)).await?;
    if let Some(old) = devices.iter().find(|d| {
        d.platform == PLATFORM && endpoint_of(d).as_deref() == Some(&subscription.endpoint)
    }) {
        state.store.remove_device(old.id).await?;
    }
    let record = DeviceRecord {
        id: 0,
        user: caller.user.clone(),
        platform: PLATFORM.into(),
        token: serde_json::to_string(&subscription).expect("a subscription always serialises"),
        name: format!("{}'s browser", caller.user),
        created_at: state.clock.now(),
        push_ok: None,
    };
    state.store.add_device(record, MAX_PER_USER).await?;
    Ok(StatusCode::CREATED)
}

#[derive(Debug, Deserialize)]
pub struct Unsubscribe {
    endpoint: String,
}

/// `DELETE /api/v1/webpush/subscriptions` with `{"endpoint"}`.
pub async fn unsubscribe(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<StatusCode> {
    caller.require(Scope::Read)?;
    let request: Unsubscribe = parse_json(&body)?;
    let devices = state.store.devices(Some(&caller.user)).await?;
    let mine = devices
        .iter()
        .find(|d| d.platform == PLATFORM && endpoint_of(d).as_deref() == Some(&request.endpoint))
        .ok_or_else(|| ApiError::not_found("no such subscription"))?;
    state.store.remove_device(mine.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
