//! `POST/GET /api/v1/devices`, `DELETE /api/v1/devices/{id}`: phones registered for native push.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use reveille_protocol::api::{DeviceRequest, DeviceView};
use reveille_store::DeviceRecord;

use crate::AppState;
use crate::api::parse_json;
use crate::auth::{Caller, Scope};
use crate::error::{ApiError, ApiResult};

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
    caller.require(Scope::Read)?;
    let request: DeviceRequest = parse_json(&body)?;
    if !["fcm", "apns"].contains(&request.platform.as_str()) {
        return Err(ApiError::invalid("platform", "platform must be \"fcm\" or \"apns\""));
    }
    let token = request.token.trim();
    if token.is_empty() || token.len() > 4096 || token.chars().any(char::is_whitespace) {
        return Err(ApiError::invalid("token", "token must be the provider's registration token"));
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
    caller.require(Scope::Read)?;
    let not_found = || ApiError::not_found(format!("device {id:?} not found"));
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let mine = state.store.devices(Some(&caller.user)).await?.into_iter().any(|d| d.id == id);
    if !mine {
        return Err(not_found());
    }
    Ok(Json(view(state.store.remove_device(id).await?)))
}
