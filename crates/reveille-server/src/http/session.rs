//! Browser sessions for the web console: a person signs in with a token or a one-time sign-in
//! link, and the browser holds an HttpOnly cookie the console's scripts cannot read.
//!
//! A session is itself a token (stored hashed, listed and revocable like any other) with the
//! `web` scope, which it can only be used with as a cookie, lasts `server.session_hours`, and
//! changes nothing without its CSRF token: an HMAC of the session under the link-signing key,
//! sent back in `X-CSRF-Token`. A sign-in link is signed with the same key, expires in minutes and
//! is used once (the store remembers its signature, as it does for acknowledge links).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jiff::{SignedDuration, Timestamp};
use reveille_protocol::console::{SessionInfo, SessionRequest};
use reveille_store::TokenInfo;
use sha2::Sha256;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::auth::{self, Caller, Scope};
use crate::http::incidents::parse_json;
use crate::http::links::LinkKeys;

/// The cookie holding a session's secret.
pub const COOKIE_NAME: &str = "reveille_session";
/// The header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

type HmacSha256 = Hmac<Sha256>;

fn hmac(secret: &[u8], message: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(message.as_bytes());
    mac
}

/// The code of a sign-in link for `user`, good until `expires`, once.
pub fn signin_code(secret: &[u8], user: &str, expires: Timestamp) -> String {
    let user = URL_SAFE_NO_PAD.encode(user);
    let nonce = URL_SAFE_NO_PAD.encode(auth::random::<12>());
    let exp = expires.as_second();
    let message = format!("signin\n{user}\n{exp}\n{nonce}");
    let sig = URL_SAFE_NO_PAD.encode(hmac(secret, &message).finalize().into_bytes());
    format!("{user}.{exp}.{nonce}.{sig}")
}

/// The sign-in link the console opens: the code rides in the fragment, which browsers never send
/// to a server, so it stays out of access logs and `Referer` headers.
pub fn signin_url(base_url: &str, code: &str) -> String {
    format!("{}/#/signin/{code}", base_url.trim_end_matches('/'))
}

/// The user a sign-in code is for and its signature, if it is genuine and not expired.
fn check_code(keys: &LinkKeys, code: &str, now: Timestamp) -> ApiResult<(String, String)> {
    let refused = || ApiError::unauthorized("this sign-in link is not valid");
    let parts: Vec<&str> = code.trim().split('.').collect();
    let [user, exp, nonce, sig] = parts[..] else { return Err(refused()) };
    let signature = URL_SAFE_NO_PAD.decode(sig).map_err(|_| refused())?;
    let message = format!("signin\n{user}\n{exp}\n{nonce}");
    if !keys.accept(|key| hmac(key, &message).verify_slice(&signature).is_ok()) {
        return Err(refused());
    }
    let exp: i64 = exp.parse().map_err(|_| refused())?;
    if now.as_second() >= exp {
        return Err(ApiError::unauthorized(
            "this sign-in link has expired; ask for a new one (reveille web-link)",
        ));
    }
    let user = URL_SAFE_NO_PAD.decode(user).ok().and_then(|u| String::from_utf8(u).ok());
    Ok((user.ok_or_else(refused)?, sig.to_owned()))
}

/// The CSRF token of the session whose token has this digest.
pub fn csrf(secret: &[u8], digest: &str) -> String {
    URL_SAFE_NO_PAD.encode(hmac(secret, &format!("csrf\n{digest}")).finalize().into_bytes())
}

/// Refuses a request made with a session cookie that changes something without its CSRF token.
pub async fn check_csrf(state: &AppState, headers: &HeaderMap, digest: &str) -> ApiResult<()> {
    let refused = || ApiError::forbidden("this request needs the session's X-CSRF-Token header");
    let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).ok_or_else(refused)?;
    let sent = URL_SAFE_NO_PAD.decode(sent.trim()).map_err(|_| refused())?;
    let keys = crate::http::links::keys(state).await?;
    let message = format!("csrf\n{digest}");
    let genuine = keys.accept(|key| hmac(key, &message).verify_slice(&sent).is_ok());
    if genuine { Ok(()) } else { Err(refused()) }
}

/// The session secret a request's cookies carry.
pub fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim().to_owned())
}

/// When a session made at `created` ends.
pub fn expires(state: &AppState, created: Timestamp) -> Timestamp {
    created + SignedDuration::from_hours(i64::from(state.settings().server.session_hours))
}

fn secure(state: &AppState) -> bool {
    state.settings().server.tls_cert.is_some()
        || state.settings().server.base_url.starts_with("https:")
}

fn set_cookie(state: &AppState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if secure(state) { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE_NAME}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&cookie).expect("a token and numbers make a valid header")
}

/// `POST /api/v1/session` with `{"token"}` or `{"code"}`: signs in, setting the cookie.
pub async fn create(State(state): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let request: SessionRequest = parse_json(&body)?;
    let now = state.clock.now();
    let (user, scopes, parent) = match (request.token, request.code) {
        (Some(token), None) => {
            let caller = auth::caller(&state, token.trim())
                .await?
                .ok_or_else(|| ApiError::unauthorized("this token is unknown or revoked"))?;
            caller.require(Scope::Read)?;
            let scopes = [Scope::Read, Scope::Respond]
                .into_iter()
                .filter(|s| caller.scopes.contains(s))
                .collect::<Vec<_>>();
            // Revoking the token ends the sessions made with it.
            (caller.user, scopes, Some(caller.digest))
        }
        (None, Some(code)) => {
            let keys = crate::http::links::keys(&state).await?;
            let (user, signature) = check_code(&keys, &code, now)?;
            if state.settings().users.iter().all(|u| u.name != user) {
                return Err(ApiError::unauthorized(format!("{user:?} is not a user here")));
            }
            if !state.store.use_link(&signature, now).await? {
                return Err(ApiError::unauthorized("this sign-in link was already used"));
            }
            (user, vec![Scope::Read, Scope::Respond], None)
        }
        _ => return Err(ApiError::invalid("token", "give exactly one of token or code")),
    };
    let minted = auth::mint_token();
    let mut stored: Vec<String> = scopes.iter().map(|s| s.as_str().to_owned()).collect();
    stored.push(Scope::Web.as_str().to_owned());
    stored.extend(parent.map(|digest| format!("{}{digest}", auth::PARENT)));
    let info = TokenInfo {
        prefix: minted.prefix,
        user: user.clone(),
        scopes: stored,
        created_at: now,
        last_used_at: None,
        revoked: false,
    };
    state.store.add_token(&minted.hash, info).await?;
    end_oldest_sessions(&state, &user, now).await?;
    tracing::info!(user = %user, "web console sign-in");
    let secret = crate::http::links::secret(&state).await?;
    let session =
        SessionInfo { user, csrf: csrf(&secret, &minted.hash), expires_at: expires(&state, now) };
    let max_age = i64::from(state.settings().server.session_hours) * 3600;
    let mut response = Json(session).into_response();
    response.headers_mut().insert(SET_COOKIE, set_cookie(&state, &minted.secret, max_age));
    Ok(response)
}

/// Web console sessions one person may hold at once; signing in again ends the oldest.
pub const MAX_SESSIONS: usize = 20;

/// Ends `user`'s oldest live sessions past [`MAX_SESSIONS`].
async fn end_oldest_sessions(state: &AppState, user: &str, now: Timestamp) -> ApiResult<()> {
    let mut live: Vec<TokenInfo> = state
        .store
        .tokens()
        .await?
        .into_iter()
        .filter(|t| {
            t.user == user && !t.revoked && t.scopes.iter().any(|s| s == Scope::Web.as_str())
        })
        .filter(|t| now < expires(state, t.created_at))
        .collect();
    live.sort_by_key(|t| t.created_at);
    let over = live.len().saturating_sub(MAX_SESSIONS);
    for old in &live[..over] {
        state.store.revoke_token(&old.prefix).await?;
    }
    Ok(())
}

/// `GET /api/v1/session`: who is signed in, and the CSRF token to send back.
pub async fn info(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<SessionInfo>> {
    let Some(created) = caller.session else {
        return Err(ApiError::unauthorized("not signed in: this is a token, not a session"));
    };
    let secret = crate::http::links::secret(&state).await?;
    let csrf = csrf(&secret, &caller.digest);
    Ok(Json(SessionInfo { user: caller.user, csrf, expires_at: expires(&state, created) }))
}

/// `DELETE /api/v1/session`: signs out; the session's token is revoked on every node.
pub async fn delete(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    if caller.session.is_none() {
        return Err(ApiError::unauthorized("not signed in: this is a token, not a session"));
    }
    let revoked = state.store.revoke_token(&caller.prefix).await;
    state.live_tokens.remove(&caller.digest);
    // The browser forgets the cookie whatever the store said.
    let mut response = match revoked {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => ApiError::from(e).into_response(),
    };
    response.headers_mut().insert(SET_COOKIE, set_cookie(&state, "", 0));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_in_code_names_its_user_until_it_expires() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let key = LinkKeys::parse(b"key").unwrap();
        let code = signin_code(b"key", "alice", now + SignedDuration::from_mins(15));
        assert_eq!(check_code(&key, &code, now).unwrap().0, "alice");
        let later = now + SignedDuration::from_mins(15);
        assert!(check_code(&key, &code, later).unwrap_err().message.contains("expired"));
        assert!(check_code(&LinkKeys::parse(b"other key").unwrap(), &code, now).is_err());
        let staged = LinkKeys::parse(b"new key\nkey").unwrap();
        assert_eq!(
            check_code(&staged, &code, now).unwrap().0,
            "alice",
            "an older key still counts"
        );
        let forged =
            code.replacen(&URL_SAFE_NO_PAD.encode("alice"), &URL_SAFE_NO_PAD.encode("bob"), 1);
        assert!(check_code(&key, &forged, now).is_err());
        assert!(check_code(&key, "not.a.code", now).is_err());
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, "theme=dark; reveille_session=rvt_abc".parse().unwrap());
        assert_eq!(cookie(&headers).as_deref(), Some("rvt_abc"));
        assert_eq!(cookie(&HeaderMap::new()), None);
    }
}
