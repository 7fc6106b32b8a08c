//! iCalendar feeds of on-call shifts, which calendar apps subscribe to: one per person (their
//! shifts on every schedule) and one per schedule, from 2 days back to 90 ahead. Overrides are
//! named as such, every event is `TRANSP:TRANSPARENT` (a shift does not make anyone busy).
//!
//! Calendar apps cannot send a token, so each URL carries its own read-only key: an HMAC of what
//! it shows, and of that calendar's generation, under the cluster's calendar secret (made once,
//! kept in the database: a calendar subscribed once keeps working through link-key changes).
//! It opens that one calendar and nothing else. A person whose URL leaked makes a new one
//! (`POST /api/v1/calendars/reset`): the generation moves on and the old URL opens nothing.
//! URLs handed out before the calendar secret existed were signed with the link key: they are
//! still accepted until the link key is replaced.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jiff::{SignedDuration, Timestamp};
use reveille_core::schedule::Schedule;
use reveille_protocol::console::{CalendarLink, CalendarLinks};
use serde::Deserialize;
use sha2::Sha256;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::auth::{Caller, Scope};

/// What a calendar's key is the HMAC of. Generation 0 (never reset) is signed as before
/// generations existed, so URLs handed out earlier keep working.
fn signed(kind: &str, name: &str, generation: u64) -> String {
    match generation {
        0 => format!("calendar\n{kind}\n{name}"),
        n => format!("calendar\n{kind}\n{name}\n{n}"),
    }
}

fn mac(secret: &[u8], message: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(message.as_bytes());
    mac
}

fn key(secret: &[u8], kind: &str, name: &str, generation: u64) -> String {
    URL_SAFE_NO_PAD.encode(mac(secret, &signed(kind, name, generation)).finalize().into_bytes())
}

fn meta_key(kind: &str, name: &str) -> String {
    format!("calendar_generation:{kind}:{name}")
}

/// The calendar's current generation (0 until it is first reset).
async fn generation(state: &AppState, kind: &str, name: &str) -> ApiResult<u64> {
    let stored = state.store.meta(&meta_key(kind, name)).await?;
    Ok(stored.and_then(|g| g.parse().ok()).unwrap_or(0))
}

async fn url(state: &AppState, secret: &[u8], kind: &str, name: &str) -> ApiResult<String> {
    let generation = generation(state, kind, name).await?;
    let settings = state.settings();
    let base = settings.server.base_url.trim_end_matches('/');
    // Names are free text: anything but the unreserved characters is percent-encoded.
    let path: String = name
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    Ok(format!("{base}/calendars/{kind}/{path}.ics?key={}", key(secret, kind, name, generation)))
}

/// `GET /api/v1/calendars`: the caller's own calendar URL and every schedule's.
pub async fn links(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<CalendarLinks>> {
    caller.require(Scope::Read)?;
    links_of(&state, &caller.user).await.map(Json)
}

/// Where the calendar secret is kept.
const SECRET: &str = "calendar_secret";

/// The cluster's calendar secret, made on first use.
async fn secret(state: &AppState) -> ApiResult<Vec<u8>> {
    let fresh = URL_SAFE_NO_PAD.encode(crate::http::auth::random::<32>());
    Ok(state.store.meta_or_insert(SECRET, &fresh).await?.into_bytes())
}

async fn links_of(state: &AppState, user: &str) -> ApiResult<CalendarLinks> {
    let secret = secret(state).await?;
    let directory = state.directory();
    let mut names: Vec<&String> = directory.schedules.keys().collect();
    names.sort();
    let mut schedules = Vec::with_capacity(names.len());
    for name in names {
        let url = url(state, &secret, "schedule", name).await?;
        schedules.push(CalendarLink { schedule: name.clone(), url });
    }
    Ok(CalendarLinks { me: url(state, &secret, "user", user).await?, schedules })
}

/// `POST /api/v1/calendars/reset`: a new URL for the caller's own calendar; the old one opens
/// nothing from now on (in a calendar app that subscribed to it, the shifts stop updating).
pub async fn reset(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<CalendarLinks>> {
    caller.require(Scope::Respond)?;
    let next = generation(&state, "user", &caller.user).await? + 1;
    state.store.set_meta(&meta_key("user", &caller.user), &next.to_string()).await?;
    tracing::info!(user = %caller.user, "calendar URL reset");
    links_of(&state, &caller.user).await.map(Json)
}

#[derive(Debug, Deserialize)]
pub struct KeyQuery {
    key: String,
}

/// `GET /calendars/{user|schedule}/{name}.ics?key=…`
pub async fn feed(
    State(state): State<AppState>,
    Path((kind, file)): Path<(String, String)>,
    Query(query): Query<KeyQuery>,
) -> ApiResult<Response> {
    let refused = || ApiError::not_found("no such calendar");
    let name = file.strip_suffix(".ics").ok_or_else(refused)?;
    // Compared as MACs, in constant time.
    let sent = URL_SAFE_NO_PAD.decode(&query.key).map_err(|_| refused())?;
    let message = signed(&kind, name, generation(&state, &kind, name).await?);
    let verified = |key: &[u8]| mac(key, &message).verify_slice(&sent).is_ok();
    let genuine = verified(&secret(&state).await?)
        || crate::http::links::keys(&state).await.is_ok_and(|keys| keys.accept(verified));
    if !genuine {
        return Err(refused());
    }
    let now = state.clock.now();
    let (from, until) =
        (now - SignedDuration::from_hours(48), now + SignedDuration::from_hours(24 * 90));
    let directory = state.directory();
    let mut events = Vec::new();
    match kind.as_str() {
        "schedule" => {
            let s = directory.schedules.get(name).ok_or_else(refused)?;
            events.extend(shifts(s, from, until, None));
        }
        "user" if state.settings().users.iter().any(|u| u.name == name) => {
            let mut schedules: Vec<_> = directory.schedules.values().collect();
            schedules.sort_by(|a, b| a.name.cmp(&b.name));
            for s in schedules {
                events.extend(shifts(s, from, until, Some(name)));
            }
        }
        _ => return Err(refused()),
    }
    let title = format!("On call: {name}");
    let body = ics(&title, &format!("{kind}-{name}"), now, &events);
    Ok(([(CONTENT_TYPE, "text/calendar; charset=utf-8"), (CACHE_CONTROL, "no-cache")], body)
        .into_response())
}

/// One calendar event.
#[derive(Debug, Clone, PartialEq)]
pub struct Shift {
    pub start: Timestamp,
    pub end: Timestamp,
    pub summary: String,
}

/// The shifts of `s` between the instants; of `user` only when given.
fn shifts(s: &Schedule, from: Timestamp, until: Timestamp, user: Option<&str>) -> Vec<Shift> {
    let mut out = Vec::new();
    for (start, end, who) in s.shifts(from, until) {
        let overridden = s.overrides.iter().any(|o| o.start <= start && start < o.end);
        let tag = if overridden { " (override)" } else { "" };
        let summary = match user {
            None => {
                let Some(primary) = &who.primary else { continue };
                let mut text = format!("{}: {primary}{tag}", s.name);
                if !who.shadows.is_empty() {
                    text += &format!(", shadow {}", who.shadows.join(", "));
                }
                text
            }
            Some(u) if who.primary.as_deref() == Some(u) => format!("On call: {}{tag}", s.name),
            Some(u) if who.shadows.iter().any(|x| x == u) => format!("Shadow: {}", s.name),
            Some(_) => continue,
        };
        out.push(Shift { start, end, summary });
    }
    out
}

fn utc(t: Timestamp) -> String {
    t.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// Escapes text for an iCalendar value (RFC 5545 §3.3.11).
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | ';' | ',' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Folds a content line at 75 octets, never inside a character (RFC 5545 §3.1).
fn fold(line: &str, out: &mut String) {
    let mut used = 0;
    for c in line.chars() {
        if used + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push(c);
        used += c.len_utf8();
    }
    out.push_str("\r\n");
}

/// The calendar document.
pub fn ics(title: &str, id: &str, now: Timestamp, shifts: &[Shift]) -> String {
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//Reveille//On-call shifts//EN".to_owned(),
        "CALSCALE:GREGORIAN".to_owned(),
        "METHOD:PUBLISH".to_owned(),
        format!("X-WR-CALNAME:{}", text(title)),
        "REFRESH-INTERVAL;VALUE=DURATION:PT1H".to_owned(),
    ];
    for shift in shifts {
        lines.push("BEGIN:VEVENT".to_owned());
        lines.push(format!("UID:{}-{}@reveille", text(id), shift.start.as_second()));
        lines.push(format!("DTSTAMP:{}", utc(now)));
        lines.push(format!("DTSTART:{}", utc(shift.start)));
        lines.push(format!("DTEND:{}", utc(shift.end)));
        lines.push(format!("SUMMARY:{}", text(&shift.summary)));
        lines.push("TRANSP:TRANSPARENT".to_owned());
        lines.push("END:VEVENT".to_owned());
    }
    lines.push("END:VCALENDAR".to_owned());
    let mut out = String::new();
    for line in lines {
        fold(&line, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_fold_and_text_is_escaped() {
        let t = Timestamp::from_second(1_800_000_000).unwrap();
        let shift = Shift {
            start: t,
            end: t + SignedDuration::from_hours(8),
            summary: format!("db; primary, {}\nnext", "é".repeat(60)),
        };
        let doc = ics("On call: alice", "user-alice", t, &[shift]);
        assert!(doc.contains("DTSTART:20270115T080000Z\r\n"), "{doc}");
        assert!(doc.contains("TRANSP:TRANSPARENT\r\n"));
        assert!(doc.contains("SUMMARY:db\\; primary\\, é"), "{doc}");
        for line in doc.split("\r\n") {
            assert!(line.len() <= 75, "{line:?} is longer than 75 octets");
        }
        let unfolded = doc.replace("\r\n ", "");
        assert!(unfolded.contains(&format!("{}\\nnext", "é".repeat(60))));
    }
}
