//! Signed, expiring, single-use links that acknowledge one incident for one user: what a phone's
//! notification button calls, so no long-lived token ever travels inside a notification.

use axum::Json;
use axum::extract::{Path, Query, State};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jiff::{SignedDuration, Timestamp};
use reveille_core::Command;
use reveille_protocol::{ErrorCode, Incident};
use serde::Deserialize;
use sha2::Sha256;

use crate::AppState;
use crate::error::{ApiError, ApiResult};

type HmacSha256 = Hmac<Sha256>;

/// The server's signing key, made once and kept in the database.
pub async fn secret(state: &AppState) -> ApiResult<Vec<u8>> {
    let fresh = URL_SAFE_NO_PAD.encode(crate::auth::random::<32>());
    let stored = state.store.meta_or_insert("link_secret", &fresh).await?;
    Ok(stored.into_bytes())
}

fn mac(secret: &[u8], incident: i64, user: &str, expires: i64) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(format!("ack\n{incident}\n{user}\n{expires}").as_bytes());
    mac
}

/// A link that acknowledges `incident` as `user` until `expires`.
pub fn ack_url(base: &str, secret: &[u8], incident: i64, user: &str, expires: Timestamp) -> String {
    let exp = expires.as_second();
    let sig = URL_SAFE_NO_PAD.encode(mac(secret, incident, user, exp).finalize().into_bytes());
    format!(
        "{}/api/v1/links/ack/{incident}?user={user}&exp={exp}&sig={sig}",
        base.trim_end_matches('/')
    )
}

/// The link for a page sent now.
pub async fn ack_url_for(state: &AppState, incident: i64, user: &str) -> ApiResult<String> {
    let hours = i64::from(state.settings.phone.ack_link_hours);
    let expires = state.clock.now() + SignedDuration::from_hours(hours);
    Ok(ack_url(&state.settings.server.base_url, &secret(state).await?, incident, user, expires))
}

#[derive(Debug, Deserialize)]
pub struct LinkQuery {
    user: String,
    exp: i64,
    sig: String,
}

/// `POST /api/v1/links/ack/{incident}?user=&exp=&sig=`
pub async fn ack(
    State(state): State<AppState>,
    Path(incident): Path<String>,
    Query(q): Query<LinkQuery>,
) -> ApiResult<Json<Incident>> {
    let refused = |m: &str| ApiError::forbidden(m);
    let id: i64 = incident.parse().map_err(|_| refused("this link is not valid"))?;
    let signature =
        URL_SAFE_NO_PAD.decode(&q.sig).map_err(|_| refused("this link is not valid"))?;
    let secret = secret(&state).await?;
    if mac(&secret, id, &q.user, q.exp).verify_slice(&signature).is_err() {
        return Err(refused(&format!("this link is not valid for incident {id}")));
    }
    if state.clock.now().as_second() >= q.exp {
        return Err(refused("this acknowledge link has expired; open Reveille to acknowledge"));
    }
    if !state.store.use_link(&q.sig, state.clock.now()).await? {
        return Err(ApiError::new(ErrorCode::Conflict, "this acknowledge link was already used"));
    }
    let incident =
        state.store.command(id, &q.user, Command::Acknowledge, state.clock.now()).await?;
    Ok(Json(incident))
}
