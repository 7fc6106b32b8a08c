//! Signed, expiring, single-use links that acknowledge one incident for one user: what a phone's
//! notification button calls, so no long-lived token ever travels inside a notification.
//!
//! The signing key lives in its own file next to the database ([`key_path`], created 0600), not
//! in the database: whoever can read a copy of the database cannot forge a link. The file holds
//! one key per line: the first signs, every one is accepted, so a cluster changes keys without
//! refusing a link at any moment (`reveille link-key stage`, `promote`, `retire`; see the
//! README). `reveille rotate-link-key` replaces them all at once, which voids every link out. A
//! link minted for a stream carries the prefix of that stream's token and stops working when the
//! token is revoked.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jiff::{SignedDuration, Timestamp};
use reveille_core::Command;
use reveille_protocol::ErrorCode;
use serde::Deserialize;
use sha2::Sha256;

use std::path::{Path as FsPath, PathBuf};

use crate::AppState;
use crate::config::Settings;
use crate::error::{ApiError, ApiResult};

type HmacSha256 = Hmac<Sha256>;

/// Where the signing key of a server with these settings lives.
pub fn key_path(settings: &Settings) -> PathBuf {
    settings.link_key_path()
}

/// The keys of the link key file: the first signs, every one is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkKeys(Vec<Vec<u8>>);

impl LinkKeys {
    /// The keys of a key file's text, one per line; None if it holds none.
    pub fn parse(text: &[u8]) -> Option<Self> {
        let keys: Vec<Vec<u8>> = text
            .split(|b| *b == b'\n')
            .map(<[u8]>::trim_ascii)
            .filter(|k| !k.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        (!keys.is_empty()).then_some(Self(keys))
    }

    /// The file's text.
    pub fn text(&self) -> Vec<u8> {
        self.0.join(&b'\n').into_iter().chain([b'\n']).collect()
    }

    /// The key new links are signed with.
    pub fn signing(&self) -> &[u8] {
        &self.0[0]
    }

    /// Whether any accepted key makes `verify` true.
    pub fn accept(&self, verify: impl Fn(&[u8]) -> bool) -> bool {
        self.0.iter().any(|key| verify(key))
    }

    /// A short public fingerprint of each key (never the key), the signing key's first.
    pub fn fingerprints(&self) -> Vec<String> {
        use sha2::Digest;
        let print =
            |k: &Vec<u8>| Sha256::digest(k).iter().take(8).map(|b| format!("{b:02x}")).collect();
        self.0.iter().map(print).collect()
    }

    /// The keys with a new one accepted after the others (a rotation's first step).
    pub fn staged(&self) -> Self {
        let mut keys = self.0.clone();
        keys.push(fresh_key());
        Self(keys)
    }

    /// The newest key signing, the others still accepted (a rotation's second step).
    pub fn promoted(&self) -> Self {
        let mut keys = self.0.clone();
        let newest = keys.pop().expect("never empty");
        keys.insert(0, newest);
        Self(keys)
    }

    /// The signing key alone (a rotation's last step).
    pub fn retired(&self) -> Self {
        Self(vec![self.0[0].clone()])
    }
}

/// The key file as last read: its identity (inode, modification time, length) and keys.
pub type CachedKey = std::sync::Mutex<Option<((u64, std::time::SystemTime, u64), LinkKeys)>>;

/// The server's signing key, made on first use.
pub async fn secret(state: &AppState) -> ApiResult<Vec<u8>> {
    Ok(keys(state).await?.signing().to_vec())
}

/// Every key the server accepts. Every page minted for every stream needs them, so the file is
/// read again only when a stat shows it was replaced (a change takes effect at once, without a
/// read per page). Never made up here: a file missing, empty or half-written (an operator's copy
/// under way) is an error until it is whole, so a node never starts signing with a key of its
/// own that no other node knows ([`ensure`] makes the first one, at start).
pub async fn keys(state: &AppState) -> ApiResult<LinkKeys> {
    use std::os::unix::fs::MetadataExt;
    let path = key_path(&state.settings());
    let identity = || std::fs::metadata(&path).and_then(|m| Ok((m.ino(), m.modified()?, m.len())));
    let before = identity().ok();
    let mut cached = state.link_key.lock().unwrap_or_else(|p| p.into_inner());
    if let (Some(now), Some((seen, keys))) = (before, cached.as_ref())
        && now == *seen
    {
        return Ok(keys.clone());
    }
    let keys = load(&path).map_err(|e| {
        tracing::error!(error = %e, file = %path.display(), "cannot read the link signing keys");
        ApiError::new(ErrorCode::Unavailable, "the server cannot sign or check links now")
    })?;
    // Kept only if the file did not change while it was read.
    let after = identity().ok();
    *cached = after.filter(|after| Some(*after) == before).map(|identity| (identity, keys.clone()));
    Ok(keys)
}

/// The keys in `path`; an error if there is none, or the file holds none.
pub fn load(path: &FsPath) -> std::io::Result<LinkKeys> {
    let text = std::fs::read(path)?;
    LinkKeys::parse(&text).ok_or_else(|| std::io::Error::other("the link key file holds no key"))
}

/// Makes the first key at start when there is no key file (one node: the embedded database),
/// and checks that the one there is usable.
pub fn ensure(settings: &Settings) -> std::io::Result<LinkKeys> {
    load_or_create(&key_path(settings))
}

/// A new random key, as a line of the key file.
fn fresh_key() -> Vec<u8> {
    URL_SAFE_NO_PAD.encode(crate::http::auth::random::<32>()).into_bytes()
}

/// The keys in `path`, made there first if there is no file; an empty file is an error.
pub fn load_or_create(path: &FsPath) -> std::io::Result<LinkKeys> {
    match load(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let made = create_once(path, &fresh_key())?;
            LinkKeys::parse(&made).ok_or_else(|| std::io::Error::other("an empty link key file"))
        }
        loaded => loaded,
    }
}

/// Replaces the keys in `path` (0600, atomically).
pub fn write(path: &FsPath, keys: &LinkKeys) -> std::io::Result<()> {
    std::fs::rename(staged(path, &keys.text())?, path)
}

/// A private (0600) file with `contents`, written in full beside `path` first.
fn staged(path: &FsPath, contents: &[u8]) -> std::io::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut name = path.as_os_str().to_owned();
    name.push(format!(
        ".new-{}-{}",
        std::process::id(),
        URL_SAFE_NO_PAD.encode(crate::http::auth::random::<6>())
    ));
    let fresh = PathBuf::from(name);
    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&fresh)?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(fresh)
}

/// Puts `contents` at `path` unless a file is already there, and returns what is there then.
/// When two processes (the server and `reveille web-link`, say) make a key at once, both end up
/// with the same one: the first to link its file wins, the other reads it.
pub fn create_once(path: &FsPath, contents: &[u8]) -> std::io::Result<Vec<u8>> {
    let fresh = staged(path, contents)?;
    let linked = std::fs::hard_link(&fresh, path);
    std::fs::remove_file(&fresh)?;
    match linked {
        Ok(()) => Ok(contents.to_vec()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read(path),
        Err(e) => Err(e),
    }
}

/// Writes a new random signing key to `path` in place of every key there (0600, replaced
/// atomically); every link signed with an old one stops working.
pub fn rotate(path: &FsPath) -> std::io::Result<LinkKeys> {
    let keys = LinkKeys(vec![fresh_key()]);
    write(path, &keys)?;
    Ok(keys)
}

fn mac(secret: &[u8], incident: i64, user: &str, expires: i64, token: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(format!("ack\n{incident}\n{user}\n{expires}\n{token}").as_bytes());
    mac
}

/// A link that acknowledges `incident` as `user` until `expires`; with `token` (a token's
/// prefix), only while that token is not revoked.
pub fn ack_url(
    base: &str,
    secret: &[u8],
    incident: i64,
    user: &str,
    expires: Timestamp,
    token: Option<&str>,
) -> String {
    let exp = expires.as_second();
    let tok = token.unwrap_or("");
    let sig = URL_SAFE_NO_PAD.encode(mac(secret, incident, user, exp, tok).finalize().into_bytes());
    let bound = token.map(|t| format!("&tok={t}")).unwrap_or_default();
    format!(
        "{}/api/v1/links/ack/{incident}?user={user}&exp={exp}{bound}&sig={sig}",
        base.trim_end_matches('/')
    )
}

/// The link for a page sent now.
pub async fn ack_url_for(state: &AppState, incident: i64, user: &str) -> ApiResult<String> {
    let hours = i64::from(state.settings().phone.ack_link_hours);
    let expires = state.clock.now() + SignedDuration::from_hours(hours);
    let secret = secret(state).await?;
    Ok(ack_url(&state.settings().server.base_url, &secret, incident, user, expires, None))
}

#[derive(Debug, Deserialize)]
pub struct LinkQuery {
    user: String,
    exp: i64,
    #[serde(default)]
    tok: Option<String>,
    sig: String,
}

/// Checks a link's signature, token and expiry (not whether it was used); the incident id.
async fn check(state: &AppState, incident: &str, q: &LinkQuery) -> ApiResult<i64> {
    let refused = |m: &str| ApiError::forbidden(m);
    let id: i64 = incident.parse().map_err(|_| refused("this link is not valid"))?;
    let signature =
        URL_SAFE_NO_PAD.decode(&q.sig).map_err(|_| refused("this link is not valid"))?;
    let keys = keys(state).await?;
    let tok = q.tok.as_deref().unwrap_or("");
    if !keys.accept(|key| mac(key, id, &q.user, q.exp, tok).verify_slice(&signature).is_ok()) {
        return Err(refused(&format!("this link is not valid for incident {id}")));
    }
    if let Some(prefix) = &q.tok {
        let tokens = state.store.tokens().await?;
        if !tokens.iter().any(|t| &t.prefix == prefix && !t.revoked) {
            return Err(refused("the token this link was made for has been revoked"));
        }
    }
    if state.clock.now().as_second() >= q.exp {
        return Err(refused("this acknowledge link has expired; open Reveille to acknowledge"));
    }
    Ok(id)
}

/// `POST /api/v1/links/ack/{incident}?user=&exp=&sig=`: acknowledges, once. A browser (the
/// confirmation page's form) gets a page back; anything else the incident as JSON.
pub async fn ack(
    State(state): State<AppState>,
    Path(incident): Path<String>,
    Query(q): Query<LinkQuery>,
    headers: HeaderMap,
) -> Response {
    let browser = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let result: ApiResult<reveille_protocol::Incident> = async {
        let id = check(&state, &incident, &q).await?;
        let now = state.clock.now();
        // Spent in the acknowledgement's own transaction: a failed ack leaves it usable.
        Ok(state.store.command_by_link(&q.sig, id, &q.user, Command::Acknowledge, now).await?)
    }
    .await;
    match (result, browser) {
        (Ok(incident), false) => Json(incident).into_response(),
        (Err(e), false) => e.into_response(),
        (Ok(incident), true) => {
            let text = format!("Incident #{} is acknowledged by {}.", incident.id, q.user);
            page(StatusCode::OK, "Acknowledged", &text, None)
        }
        (Err(e), true) => page(e.status(), "Not acknowledged", &e.message, None),
    }
}

/// `GET /api/v1/links/ack/{incident}?…`: a page asking to confirm. Mail scanners and link
/// previews open links; only the button acknowledges.
pub async fn confirm(
    State(state): State<AppState>,
    Path(incident): Path<String>,
    Query(q): Query<LinkQuery>,
) -> Response {
    let id = match check(&state, &incident, &q).await {
        Ok(id) => id,
        Err(e) => return page(e.status(), "Not acknowledged", &e.message, None),
    };
    let summary = match state.store.incident(id).await {
        Ok(detail) => format!(
            "Incident #{id} on {}: {} (now {}).",
            detail.incident.service,
            detail.incident.summary,
            detail.incident.state.as_str()
        ),
        Err(_) => format!("Incident #{id}."),
    };
    let button = format!("Acknowledge as {}", q.user);
    page(StatusCode::OK, "Acknowledge?", &summary, Some(&button))
}

/// A small page under a CSP that allows no script at all; `button` posts the same URL.
fn page(status: StatusCode, title: &str, text: &str, button: Option<&str>) -> Response {
    let form = button.map_or_else(String::new, |b| {
        format!("<form method=\"post\"><button type=\"submit\">{}</button></form>", escape(b))
    });
    let html = format!(
        "<!doctype html><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{t}</title><style>body{{font:16px sans-serif;margin:2em;max-width:40em}}\
         button{{font-size:1.2em;padding:.5em 1em}}</style><h1>{t}</h1><p>{}</p>{form}",
        escape(text),
        t = escape(title),
    );
    let csp =
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'";
    (
        status,
        [(header::CONTENT_SECURITY_POLICY, csp), (header::CACHE_CONTROL, "no-store")],
        Html(html),
    )
        .into_response()
}

fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".into(),
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '"' => "&quot;".into(),
            '\'' => "&#39;".into(),
            c => c.to_string(),
        })
        .collect()
}
