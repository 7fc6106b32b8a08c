//! One published ntfy message: read from ntfy's headers and query parameters (each under all of
//! ntfy's names) or from its JSON form, and translated into an alert event.
//!
//! Translation, as the README says:
//! - priority 5 (`max`, `urgent`) → critical, 4 (`high`) → error: high urgency, the phone rings;
//!   3 (`default`, or none) → warning, 1–2 → info: low urgency, a quiet notification;
//! - the dedup key is the topic and the `X-Sequence-ID` when there is one, otherwise the topic and
//!   a digest of the title and message, so only an exact repeat joins an open incident;
//! - a message tagged `resolved`, `white_check_mark` or `heavy_check_mark` resolves the incident
//!   with its key (so, in practice, the one with its sequence ID);
//! - the title (or the message's first line) is the summary; `X-Click`, `view` actions and
//!   `X-Attach` become links; the whole message is kept in the details under `ntfy`.

use axum::http::HeaderMap;
use reveille_protocol::limits::Part;
use reveille_protocol::{Action as EventAction, AlertEvent, Link, Severity};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::actions::{self, Action};
use crate::deliver::ntfy::NtfyError;
use crate::ingest::{bounded, truncate};

/// What ntfy stores for a message published with an empty body.
const EMPTY: &str = "triggered";
/// Tags that resolve instead of paging.
pub const RESOLVING_TAGS: [&str; 3] = ["resolved", "white_check_mark", "heavy_check_mark"];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    pub topic: String,
    pub title: String,
    pub message: String,
    /// 1–5; 0 when the sender gave none (ntfy's default, 3).
    pub priority: u8,
    pub tags: Vec<String>,
    pub click: String,
    pub attach: String,
    pub actions: Vec<Action>,
    pub sequence_id: String,
}

/// The parameters of a request: a header by any of its names, then the query parameter.
pub struct Params<'a> {
    pub headers: &'a HeaderMap,
    pub query: &'a [(String, String)],
}

impl Params<'_> {
    pub fn get(&self, names: &[&str]) -> String {
        let header = names.iter().find_map(|n| {
            let value = self.headers.get(*n)?;
            let text = decode_header(value.as_bytes());
            (!text.trim().is_empty()).then(|| text.trim().to_owned())
        });
        header
            .or_else(|| {
                names.iter().find_map(|n| {
                    let n = n.to_ascii_lowercase();
                    self.query
                        .iter()
                        .find(|(k, v)| *k == n && !v.trim().is_empty())
                        .map(|(_, v)| v.trim().to_owned())
                })
            })
            .unwrap_or_default()
    }
}

/// A header value as text: raw UTF-8, or an RFC 2047 word (`=?UTF-8?B?…?=`) as ntfy decodes.
fn decode_header(raw: &[u8]) -> String {
    use base64::Engine;
    let text = String::from_utf8_lossy(raw).into_owned();
    let encoded = text
        .get(..10)
        .filter(|p| p.eq_ignore_ascii_case("=?utf-8?b?"))
        .and_then(|_| text[10..].strip_suffix("?="));
    match encoded.and_then(|e| base64::engine::general_purpose::STANDARD.decode(e).ok()) {
        Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        None => text,
    }
}

/// ntfy's priority names and numbers; `None` for anything else.
pub fn priority(text: &str) -> Option<u8> {
    match text.trim().to_ascii_lowercase().as_str() {
        "" => Some(0),
        "1" | "min" => Some(1),
        "2" | "low" => Some(2),
        "3" | "default" => Some(3),
        "4" | "high" => Some(4),
        "5" | "max" | "urgent" => Some(5),
        _ => None,
    }
}

/// `PUT`/`POST /{topic}`: the body is the message, everything else comes as parameters.
pub fn from_params(topic: &str, params: &Params, body: &[u8]) -> Result<Published, NtfyError> {
    let delay = params.get(&["x-delay", "delay", "x-at", "at", "x-in", "in"]);
    if !delay.is_empty() {
        return Err(NtfyError::new(
            40004,
            "invalid delay parameter: Reveille pages at once and does not hold messages (X-Delay)",
        ));
    }
    let body = std::str::from_utf8(body).map_err(|_| {
        NtfyError::new(
            40013,
            "invalid request: the message must be UTF-8 text; Reveille takes no attachments",
        )
    })?;
    let raw_priority = params.get(&["x-priority", "priority", "prio", "p"]);
    let priority = priority(&raw_priority).ok_or_else(|| bad_priority(&raw_priority))?;
    let raw_actions = params.get(&["x-actions", "actions", "action"]);
    let actions = if raw_actions.is_empty() {
        Vec::new()
    } else {
        actions::parse(&raw_actions).map_err(bad_actions)?
    };
    let message = if body.trim().is_empty() {
        params.get(&["x-message", "message", "m"]).replace("\\n", "\n")
    } else {
        body.to_owned()
    };
    Ok(Published {
        topic: topic.to_owned(),
        title: params.get(&["x-title", "title", "t"]),
        message: if message.trim().is_empty() { EMPTY.into() } else { message },
        priority,
        tags: params
            .get(&["x-tags", "tags", "tag", "ta"])
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
        click: params.get(&["x-click", "click"]),
        attach: params.get(&["x-attach", "attach", "a"]),
        actions,
        sequence_id: params.get(&["x-sequence-id", "sequence-id", "sid"]),
    })
}

/// ntfy's JSON publishing (`POST /`): what the JSON names wins over the headers.
#[derive(Debug, Default, Deserialize)]
pub struct Json {
    pub topic: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub priority: Option<u8>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub click: Option<String>,
    #[serde(default)]
    pub attach: Option<String>,
    #[serde(default)]
    pub actions: Option<Vec<Action>>,
    #[serde(default)]
    pub sequence_id: Option<String>,
    #[serde(default)]
    pub delay: Option<String>,
}

pub fn from_json(params: &Params, body: &[u8]) -> Result<Published, NtfyError> {
    let json: Json = crate::http::incidents::parse_json(body).map_err(|e| {
        NtfyError::new(
            40017,
            format!("invalid request: request body must be message JSON: {}", e.message),
        )
    })?;
    if !crate::deliver::ntfy::valid_topic(&json.topic) {
        return Err(NtfyError::new(40009, "invalid request: topic invalid ('topic')"));
    }
    if json.delay.as_deref().is_some_and(|d| !d.trim().is_empty()) {
        return Err(NtfyError::new(
            40004,
            "invalid delay parameter: Reveille pages at once ('delay')",
        ));
    }
    let mut published =
        from_params(&json.topic, params, json.message.as_deref().unwrap_or("").as_bytes())?;
    let set = |target: &mut String, value: Option<String>| {
        if let Some(v) = value.filter(|v| !v.trim().is_empty()) {
            *target = v;
        }
    };
    set(&mut published.title, json.title);
    set(&mut published.click, json.click);
    set(&mut published.attach, json.attach);
    set(&mut published.sequence_id, json.sequence_id);
    if let Some(p) = json.priority.filter(|p| *p != 0) {
        published.priority =
            priority(&p.to_string()).ok_or_else(|| bad_priority(&p.to_string()))?;
    }
    if let Some(tags) = json.tags.filter(|t| !t.is_empty()) {
        published.tags = tags;
    }
    if let Some(mut list) = json.actions.filter(|a| !a.is_empty()) {
        actions::validate(&mut list).map_err(bad_actions)?;
        published.actions = list;
    }
    Ok(published)
}

fn bad_priority(given: &str) -> NtfyError {
    let given = crate::error::quoted(given);
    NtfyError::new(
        40007,
        format!(
            "invalid priority parameter: X-Priority {given} must be 1-5, min, low, default, high, max or urgent"
        ),
    )
}

fn bad_actions(why: String) -> NtfyError {
    NtfyError::new(40018, format!("invalid request: actions invalid (X-Actions): {why}"))
}

impl Published {
    fn resolves(&self) -> bool {
        self.tags.iter().any(|t| RESOLVING_TAGS.contains(&t.to_ascii_lowercase().as_str()))
    }

    /// The alert event for this message, or a 400 naming the parameter out of bounds.
    pub fn to_alert(&self) -> Result<AlertEvent, NtfyError> {
        if self.sequence_id.chars().count() > 255 {
            return Err(NtfyError::new(
                40001,
                "invalid request: X-Sequence-ID is longer than 255 characters",
            ));
        }
        let key = if self.sequence_id.is_empty() {
            let digest = Sha256::digest(format!("{}\n{}", self.title, self.message));
            let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
            format!("ntfy/{}/text-{hex}", self.topic)
        } else {
            format!("ntfy/{}/{}", self.topic, self.sequence_id)
        };
        let first_line = self.message.lines().find(|l| !l.trim().is_empty()).unwrap_or(EMPTY);
        let summary = if self.title.is_empty() { first_line } else { &self.title };
        let severity = match self.priority {
            5 => Severity::Critical,
            4 => Severity::Error,
            0 | 3 => Severity::Warning,
            _ => Severity::Info,
        };
        let mut links = Vec::new();
        let mut add = |href: &str, text: &str| {
            if !href.is_empty() {
                links.push(Link { href: href.to_owned(), text: Some(text.to_owned()) });
            }
        };
        add(&self.click, "Open");
        for a in self.actions.iter().filter(|a| a.action == "view") {
            add(&a.url, &a.label);
        }
        add(&self.attach, "Attachment");
        let view_links = self.actions.iter().filter(|a| a.action == "view").count();
        let details = serde_json::json!({ "ntfy": Answer::of(self, String::new(), 0) });
        let event = AlertEvent {
            action: if self.resolves() { EventAction::Resolve } else { EventAction::Trigger },
            dedup_key: key,
            summary: truncate(summary.trim(), 1024),
            severity,
            source: self.topic.clone(),
            details,
            links,
            runbook_url: None,
            occurred_at: None,
        };
        bounded(event, |part| match part {
            Part::DedupKey => "X-Sequence-ID".into(),
            Part::Summary => "X-Title".into(),
            Part::Source => "topic".into(),
            Part::Details | Part::RunbookUrl => "message".into(),
            Part::Link(0) if !self.click.is_empty() => "X-Click".into(),
            Part::Link(i) if i <= view_links => "X-Actions".into(),
            Part::Link(_) => "X-Attach".into(),
        })
        .map_err(|p| NtfyError::new(40001, format!("invalid request: {}", p.with_field())))
    }
}

/// The message as ntfy answers a publish with it (and as Reveille keeps it in the details).
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence_id: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub time: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub expires: i64,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub event: &'static str,
    pub topic: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub title: String,
    pub message: String,
    #[serde(skip_serializing_if = "is_zero_u8")]
    pub priority: u8,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub click: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

fn is_zero_u8(n: &u8) -> bool {
    *n == 0
}

impl Answer {
    /// `id` empty and `time` 0 leave those out (the copy kept in the details).
    pub fn of(p: &Published, id: String, time: i64) -> Self {
        Self {
            id,
            sequence_id: (!p.sequence_id.is_empty()).then(|| p.sequence_id.clone()),
            time,
            expires: if time == 0 {
                0
            } else {
                time + crate::deliver::ntfy::message::CACHE_HOURS * 3600
            },
            event: if time == 0 { "" } else { "message" },
            topic: p.topic.clone(),
            title: p.title.clone(),
            message: p.message.clone(),
            priority: p.priority,
            tags: p.tags.clone(),
            click: p.click.clone(),
            actions: p.actions.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
