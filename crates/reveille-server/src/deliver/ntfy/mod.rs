//! An ntfy-compatible subscribe API, so the stock ntfy app is a phone pager.
//!
//! Each user has one unguessable topic (`reveille phone setup`). The app subscribes with the
//! user's token (as the Basic password, or a Bearer header) to `/{topic}/json` (or `sse`, `raw`,
//! `ws`), exactly as it would to an ntfy server; the stream is that user's Reveille feed rendered
//! as ntfy messages, with ntfy's `since=` and `poll=1`. Ordering comes from [`crate::deliver::follow`].

pub mod message;
mod stream;

use std::borrow::Cow;

use axum::Json;
use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::deliver::follow::Start;
use crate::http::auth::{Scope, caller};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/{topics}/ws", get(stream::ws))
        .route("/{topics}/{format}", get(stream::http))
}

/// ntfy's error body: `{"code":40101,"http":401,"error":"unauthorized","link":"…"}`.
#[derive(Debug, Clone, Serialize)]
pub struct NtfyError {
    code: u32,
    http: u16,
    error: Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<&'static str>,
    /// Seconds after which a retry may succeed (sent as `Retry-After`).
    #[serde(skip)]
    retry_after: Option<u64>,
}

const AUTH_LINK: &str = "https://ntfy.sh/docs/publish/#authentication";

impl NtfyError {
    const fn fixed(code: u32, error: &'static str, link: Option<&'static str>) -> Self {
        Self {
            code,
            http: (code / 100) as u16,
            error: Cow::Borrowed(error),
            link,
            retry_after: None,
        }
    }

    pub const UNAUTHORIZED: Self = Self::fixed(40101, "unauthorized", Some(AUTH_LINK));
    pub const FORBIDDEN: Self = Self::fixed(40301, "forbidden", Some(AUTH_LINK));
    pub const BAD_SINCE: Self = Self::fixed(40008, "invalid since parameter", None);
    pub const BAD_TOPIC: Self = Self::fixed(40009, "invalid topic", None);
    pub const TOO_MANY_SUBSCRIPTIONS: Self = Self::fixed(
        42903,
        "limit reached: too many active subscriptions",
        Some("https://ntfy.sh/docs/publish/#limitations"),
    );
    pub const UNAVAILABLE: Self = Self::fixed(50301, "storage unavailable, retry later", None);

    /// An error with ntfy's five-digit `code` (its first three digits are the HTTP status) and
    /// words of Reveille's own.
    pub fn new(code: u32, error: impl Into<String>) -> Self {
        Self { error: Cow::Owned(error.into()), ..Self::fixed(code, "", None) }
    }

    /// Reveille's own error in ntfy's shape: the same status and words.
    pub fn from_api(e: crate::error::ApiError) -> Self {
        let message = e.message.clone();
        Self {
            retry_after: e.retry_after,
            ..Self::new(u32::from(e.status().as_u16()) * 100 + 1, message)
        }
    }
}

impl IntoResponse for NtfyError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.http).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = format!("{}\n", serde_json::to_string(&self).unwrap_or_default());
        let retry_after = self.retry_after.or_else(|| {
            (status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS)
                .then_some(5)
        });
        let mut response =
            (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        }
        response
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct Params {
    since: Option<String>,
    poll: Option<String>,
    auth: Option<String>,
}

/// An authorised subscription: whose feed, under which topic names.
pub struct Subscription {
    pub user: String,
    pub topic: String,
    /// The topics as the client listed them (what `open` and `keepalive` carry).
    pub topics: String,
    pub start: Start,
    /// The prefix of the token that authenticated it.
    pub token: String,
}

pub fn valid_topic(t: &str) -> bool {
    (1..=64).contains(&t.len())
        && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The secret a request carries in ntfy's ways: a Bearer token, the password of Basic auth, or
/// `?auth=` holding the whole Authorization header base64url-encoded without padding. Also
/// whether any credential was presented at all (ntfy answers 401 to a wrong one, 403 to none).
pub fn credential(headers: &HeaderMap, auth_param: Option<&str>) -> (Option<String>, bool) {
    let from_query = auth_param.and_then(|a| URL_SAFE_NO_PAD.decode(a.trim_end_matches('=')).ok());
    let mut auth_headers = HeaderMap::new();
    if let Some(value) = from_query.and_then(|v| header::HeaderValue::from_bytes(&v).ok()) {
        auth_headers.insert(header::AUTHORIZATION, value);
    }
    let presented = headers.get(header::AUTHORIZATION).is_some() || !auth_headers.is_empty();
    let secret =
        crate::http::auth::bearer(headers).or_else(|| crate::http::auth::bearer(&auth_headers));
    (secret, presented)
}

/// Authenticates the request and checks that every topic listed belongs to its user.
pub async fn authorize(
    state: &AppState,
    topics: &str,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Subscription, NtfyError> {
    if !topics.split(',').all(valid_topic) {
        return Err(NtfyError::BAD_TOPIC);
    }
    let (secret, presented) = credential(headers, params.auth.as_deref());
    let caller = match secret {
        Some(secret) => caller(state, &secret).await.map_err(|_| NtfyError::UNAVAILABLE)?,
        None => None,
    };
    let caller = match (caller, presented) {
        (Some(c), _) => c,
        (None, true) => return Err(NtfyError::UNAUTHORIZED),
        (None, false) => return Err(NtfyError::FORBIDDEN),
    };
    if caller.require(Scope::Read).is_err() {
        return Err(NtfyError::FORBIDDEN);
    }
    let mut own = None;
    for topic in topics.split(',') {
        match state.store.topic_user(topic).await.map_err(|_| NtfyError::UNAVAILABLE)? {
            Some(user) if user == caller.user => own = Some(topic.to_owned()),
            _ => return Err(NtfyError::FORBIDDEN),
        }
    }
    let start =
        Start { token: Some(caller.digest.clone()), ..parse_since(params, state.clock.now())? };
    Ok(Subscription {
        user: caller.user,
        topic: own.unwrap_or_default(),
        topics: topics.to_owned(),
        start,
        token: caller.prefix,
    })
}

/// ntfy's `since=`: none, all, latest, a message id, a unix time, or a duration like `10m`.
fn parse_since(params: &Params, now: Timestamp) -> Result<Start, NtfyError> {
    let poll = params.poll.as_deref().is_some_and(|p| matches!(p, "1" | "true" | "yes"));
    let cached = Start {
        after: Some(0),
        not_before: Some(now - SignedDuration::from_hours(message::CACHE_HOURS)),
        poll,
        token: None,
        device: "ntfy",
    };
    let since = params.since.as_deref().unwrap_or(if poll { "all" } else { "none" });
    Ok(match since {
        "none" => Start { after: None, not_before: None, poll, token: None, device: "ntfy" },
        // ntfy replays its whole cache for `latest` too when it cannot tell; so does Reveille.
        "all" | "latest" => cached,
        id if id.len() == 12 && id.chars().all(|c| c.is_ascii_alphanumeric()) => {
            match message::feed_id(id) {
                Some(feed) => {
                    Start { after: Some(feed), not_before: None, poll, token: None, device: "ntfy" }
                }
                // An id this server never sent (or one long expired): replay the cache, like ntfy.
                None => cached,
            }
        }
        n if n.chars().all(|c| c.is_ascii_digit()) => {
            let t = n
                .parse()
                .ok()
                .and_then(|s| Timestamp::from_second(s).ok())
                .ok_or(NtfyError::BAD_SINCE)?;
            Start { after: Some(0), not_before: Some(t), poll, token: None, device: "ntfy" }
        }
        d => {
            let ago: SignedDuration = d.parse().map_err(|_| NtfyError::BAD_SINCE)?;
            // A duration reaching before the year -9999 is refused, not a panic.
            let t = now.checked_sub(ago.abs()).map_err(|_| NtfyError::BAD_SINCE)?;
            Start { after: Some(0), not_before: Some(t), poll, token: None, device: "ntfy" }
        }
    })
}

/// `GET /{topics}/auth`: `{"success":true}` when the credentials may read every topic.
async fn check(state: &AppState, topics: &str, headers: &HeaderMap, params: Params) -> Response {
    let params = Params { since: None, ..params };
    match authorize(state, topics, headers, &params).await {
        Ok(_) => Json(serde_json::json!({ "success": true })).into_response(),
        Err(e) => e.into_response(),
    }
}

/// A new, unguessable topic name.
pub fn new_topic() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let letters: String = crate::http::auth::random::<24>()
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % 36] as char)
        .collect();
    format!("rv_{letters}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn since(s: &str) -> Result<Start, NtfyError> {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        parse_since(&Params { since: Some(s.into()), ..Params::default() }, now)
    }

    #[test]
    fn since_takes_every_form_ntfy_accepts() {
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        assert_eq!(since("none").unwrap().after, None);
        assert_eq!(since("all").unwrap().not_before, Some(now - SignedDuration::from_hours(12)));
        assert_eq!(since(&message::message_id(41)).unwrap().after, Some(41));
        assert_eq!(since("zzzzzzzzzzzz").unwrap().after, Some(0), "unknown id: the cache");
        assert_eq!(
            since("1799999000").unwrap().not_before,
            Timestamp::from_second(1_799_999_000).ok()
        );
        assert_eq!(since("10m").unwrap().not_before, Some(now - SignedDuration::from_mins(10)));
        assert_eq!(since("1h30m").unwrap().not_before, Some(now - SignedDuration::from_mins(90)));
        assert!(since("yesterday").is_err());
        let poll =
            parse_since(&Params { poll: Some("1".into()), ..Params::default() }, now).unwrap();
        assert!(poll.poll && poll.after == Some(0), "poll without since means all");
    }

    #[test]
    fn topics_are_unguessable_and_valid() {
        let (a, b) = (new_topic(), new_topic());
        assert_ne!(a, b);
        assert!(valid_topic(&a) && a.len() == 27);
    }
}
