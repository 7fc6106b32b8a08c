//! `POST/GET /api/v1/devices`, `DELETE /api/v1/devices/{id}`: phones registered for native push.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use reveille_protocol::api::{DeviceRequest, DeviceView};
use reveille_store::DeviceRecord;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::auth::{Caller, Scope};
use crate::http::incidents::parse_json;

/// Native-push devices one person may register: a phone, a tablet, a spare, with room to change.
pub const MAX_PER_USER: usize = 10;

fn view(d: DeviceRecord) -> DeviceView {
    DeviceView { id: d.id, platform: d.platform, name: d.name, created_at: d.created_at }
}

pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Json<DeviceView>> {
    // A device decides where this person's pages go: reading alone may not add one.
    caller.require(Scope::Respond)?;
    let request: DeviceRequest = parse_json(&body)?;
    let token = request.token.trim();
    match request.platform.as_str() {
        // APNs device tokens are 32 bytes (newer ones may be longer), sent as hex in the URL.
        "apns" if !is_apns_token(token) => {
            return Err(ApiError::invalid("token", "an APNs device token is 64 to 200 hex digits"));
        }
        "fcm" if !is_fcm_token(token) => {
            return Err(ApiError::invalid("token", "token must be the FCM registration token"));
        }
        "apns" | "fcm" => {}
        _ => return Err(ApiError::invalid("platform", "platform must be \"fcm\" or \"apns\"")),
    }
    let record = DeviceRecord {
        id: 0,
        user: caller.user.clone(),
        platform: request.platform.clone(),
        token: token.to_owned(),
        name: request.name.unwrap_or_else(|| format!("{}'s {}", caller.user, request.platform)),
        created_at: state.clock.now(),
        push_ok: None,
    };
    Ok(Json(view(state.store.add_device(record, MAX_PER_USER).await?)))
}

/// What APNs accepts in the path of `/3/device/{token}`: hex digits.
fn is_apns_token(token: &str) -> bool {
    (64..=200).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What FCM hands out: letters, digits, `-`, `_`, `:`.
fn is_fcm_token(token: &str) -> bool {
    (1..=4096).contains(&token.len())
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_:".contains(&b))
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<Vec<DeviceView>>> {
    caller.require(Scope::Read)?;
    Ok(Json(state.store.devices(Some(&caller.user)).await?.into_iter().map(view).collect()))
}

pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<DeviceView>> {
    caller.require(Scope::Respond)?;
    let not_found = || ApiError::not_found(format!("device {id:?} not found"));
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let mine = state.store.devices(Some(&caller.user)).await?.into_iter().any(|d| d.id == id);
    if !mine {
        return Err(not_found());
    }
    Ok(Json(view(state.store.remove_device(id).await?)))
}
