//! Credentials: API tokens for people and their devices, integration keys for monitoring tools.
//!
//! Both are random secrets shown once and stored only as SHA-256 hashes (they carry 165 to 256
//! bits of entropy, so a fast hash is enough). A key can only ingest; a token can ingest only
//! with the `ingest` scope.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::Method;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::{ApiError, ApiResult};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Follow the feed, list and read incidents.
    Read,
    /// Acknowledge, resolve, snooze, send receipts.
    Respond,
    /// Send alerts through the generic endpoint (`reveille page`).
    Ingest,
    /// A web console session: only as its cookie, with a CSRF token to change anything, for
    /// `server.session_hours` ([`crate::http::session`]).
    Web,
    /// Run the server: reload its configuration (`POST /-/reload`).
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 5] =
        [Scope::Read, Scope::Respond, Scope::Ingest, Scope::Web, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Respond => "respond",
            Self::Ingest => "ingest",
            Self::Web => "web",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == s)
    }
}

/// A new secret, its hash for the store, and the prefix shown in lists.
pub struct Minted {
    pub secret: String,
    pub hash: String,
    pub prefix: String,
}

pub fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system has no random source");
    bytes
}

/// A 256-bit API token: `rvt_` and 43 base64url characters.
pub fn mint_token() -> Minted {
    minted(format!("rvt_{}", URL_SAFE_NO_PAD.encode(random::<32>())))
}

/// An integration key of 32 lowercase letters and digits, the length PagerDuty tools expect.
pub fn mint_key() -> Minted {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut key = String::with_capacity(32);
    while key.len() < 32 {
        for byte in random::<64>() {
            // 252 = 7 * 36: rejecting the rest keeps every character equally likely.
            if byte < 252 && key.len() < 32 {
                key.push(ALPHABET[usize::from(byte % 36)] as char);
            }
        }
    }
    minted(key)
}

fn minted(secret: String) -> Minted {
    let prefix = secret.chars().take(if secret.starts_with("rvt_") { 10 } else { 6 }).collect();
    Minted { hash: hash(&secret), prefix, secret }
}

/// A fresh dedup key for triggers that bring none: 32 hex characters, as PagerDuty makes them.
pub fn new_dedup_key() -> String {
    random::<16>().iter().map(|b| format!("{b:02x}")).collect()
}

pub fn hash(secret: &str) -> String {
    use std::fmt::Write as _;
    let mut hex = String::with_capacity(64);
    for byte in Sha256::digest(secret.as_bytes()) {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// The secret of an `Authorization: Bearer …` or `Basic …` header (Basic carries it as password).
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" => Some(rest.trim().to_owned()),
        "basic" => {
            let decoded = String::from_utf8(STANDARD.decode(rest.trim()).ok()?).ok()?;
            decoded.split_once(':').map(|(_, password)| password.to_owned())
        }
        _ => None,
    }
}

/// A person (or their device) authenticated by an API token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: String,
    pub scopes: Vec<Scope>,
    /// The stored digest of the caller's token: streams it opens end when it is revoked.
    pub digest: String,
    /// The token's public prefix, which links minted for it carry.
    pub prefix: String,
    /// For a web console session: when it was made.
    pub session: Option<Timestamp>,
}

impl Caller {
    pub fn require(&self, scope: Scope) -> ApiResult<()> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("this token lacks the {} scope", scope.as_str())))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        if let Some(secret) = bearer(&parts.headers) {
            return caller(state, &secret)
                .await?
                .ok_or_else(|| ApiError::unauthorized("this token is unknown or revoked"));
        }
        let secret = crate::http::session::cookie(&parts.headers)
            .ok_or_else(|| ApiError::unauthorized("send a token: Authorization: Bearer <token>"))?;
        let caller = lookup(state, &secret)
            .await?
            .filter(|c| c.session.is_some())
            .ok_or_else(|| ApiError::unauthorized("the session has ended: sign in again"))?;
        if !matches!(parts.method, Method::GET | Method::HEAD) {
            crate::http::session::check_csrf(state, &parts.headers, &caller.digest).await?;
        }
        Ok(caller)
    }
}

/// Looks up an API token presented as one (a bearer token, ntfy's credentials): a browser
/// session's secret is not one, and is refused here.
pub async fn caller(state: &AppState, secret: &str) -> ApiResult<Option<Caller>> {
    Ok(lookup(state, secret).await?.filter(|c| c.session.is_none()))
}

/// Looks up a token or a session; records its use at most once a minute, off the request path.
/// A session ends with the token it was made from.
async fn lookup(state: &AppState, secret: &str) -> ApiResult<Option<Caller>> {
    let digest = hash(secret);
    let Some(info) = state.store.token(&digest).await? else {
        return Ok(None);
    };
    if info.revoked || state.settings().users.iter().all(|u| u.name != info.user) {
        return Ok(None);
    }
    let now = state.clock.now();
    if session_ended(state, &info, now) {
        return Ok(None);
    }
    let session = info.scopes.iter().any(|s| s == Scope::Web.as_str()).then_some(info.created_at);
    if let Some(parent) = info.scopes.iter().find_map(|s| s.strip_prefix(PARENT))
        && state.store.token(parent).await?.is_none_or(|p| p.revoked)
    {
        return Ok(None);
    }
    let stale = {
        let mut touched = state.touched.lock().unwrap_or_else(|p| p.into_inner());
        let last = touched.get(&digest).copied();
        let stale = last.is_none_or(|t| now.duration_since(t) >= SignedDuration::from_secs(60));
        if stale {
            touched.insert(digest.clone(), now);
        }
        stale
    };
    if stale {
        let store = state.store.clone();
        let digest = digest.clone();
        tokio::spawn(async move { store.touch_token(&digest, now).await });
    }
    let scopes = info.scopes.iter().filter_map(|s| Scope::parse(s)).collect();
    state.live_tokens.put(digest.clone(), info.user.clone(), now);
    Ok(Some(Caller { user: info.user, scopes, digest, prefix: info.prefix, session }))
}

/// Whether the token with this digest still authenticates (for a session, the token it was
/// made from too); a stream checks it at every heartbeat. Trusted for [`KEY_TRUST`] once seen
/// live; when the store cannot answer, the stream is kept (it cannot be told apart from a
/// revoked one, and a page may be on its way).
pub async fn token_live(state: &AppState, digest: &str) -> bool {
    let now = state.clock.now();
    if state.live_tokens.get(digest, now).is_some() {
        return true;
    }
    let info = match state.store.token(digest).await {
        Ok(Some(info)) if !info.revoked && !session_ended(state, &info, now) => info,
        Ok(_) => return false,
        Err(_) => return true,
    };
    if let Some(parent) = info.scopes.iter().find_map(|s| s.strip_prefix(PARENT)) {
        match state.store.token(parent).await {
            Ok(Some(p)) if !p.revoked => {}
            Ok(_) => return false,
            Err(_) => return true,
        }
    }
    state.live_tokens.put(digest.to_owned(), info.user, now);
    true
}

/// In a session's scopes: `from:` and the digest of the token it was signed in with.
pub const PARENT: &str = "from:";

/// Whether `info` is a web console session past its end.
fn session_ended(state: &AppState, info: &reveille_store::TokenInfo, now: Timestamp) -> bool {
    info.scopes.iter().any(|s| s == Scope::Web.as_str())
        && now >= crate::http::session::expires(state, info.created_at)
}

/// The service an integration key belongs to, if the key is live and the service configured.
pub async fn key_service(state: &AppState, secret: &str) -> ApiResult<Option<String>> {
    let digest = hash(secret);
    let now = state.clock.now();
    if let Some(service) = state.keys.get(&digest, now) {
        return Ok(Some(service));
    }
    let Some(info) = state.store.key(&digest).await? else {
        return Ok(None);
    };
    let live = !info.revoked && state.settings().service(&info.service).is_some();
    if live {
        state.keys.put(digest, info.service.clone(), now);
    }
    Ok(live.then_some(info.service))
}

/// How long a key found live is trusted without asking the database again: a key revoked with
/// `reveille key revoke` stops working within this time.
pub const KEY_TRUST: SignedDuration = SignedDuration::from_secs(1);

/// Integration keys recently found live, by hash. Under a stream of events each lookup was a hop
/// to the blocking thread pool, and those hops were a quarter of the server's time.
#[derive(Default)]
pub struct KeyCache(std::sync::Mutex<std::collections::HashMap<String, (String, Timestamp)>>);

impl KeyCache {
    fn get(&self, digest: &str, now: Timestamp) -> Option<String> {
        let keys = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (service, checked) = keys.get(digest)?;
        trusted(now, *checked).then(|| service.clone())
    }

    pub fn remove(&self, digest: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(digest);
    }

    fn put(&self, digest: String, service: String, now: Timestamp) {
        let mut keys = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if keys.len() >= 4096 {
            keys.retain(|_, (_, checked)| trusted(now, *checked));
        }
        keys.insert(digest, (service, now));
    }
}

/// Whether a key checked at `checked` may still be trusted at `now`; never when the clock went back.
fn trusted(now: Timestamp, checked: Timestamp) -> bool {
    (SignedDuration::ZERO..KEY_TRUST).contains(&now.duration_since(checked))
}
