//! ntfy's message JSON, made from Reveille's feed entries.
//!
//! A page becomes a `message` (priority 5 for high urgency, 3 for low) with an `http` action
//! "Acknowledge" that posts to a signed, single-use link; its `sequence_id` names the incident,
//! so when the incident is acknowledged, snoozed or resolved anywhere a `message_delete` for the
//! same sequence withdraws the notification on every phone.

use reveille_protocol::{FeedEvent, FeedKind, IncidentState, Severity, Urgency};
use serde::Serialize;

/// How long ntfy keeps messages: what `since=all` replays.
pub const CACHE_HOURS: i64 = 12;

const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A feed id as a 12-character ntfy message id: `rv` and ten base-36 digits.
pub fn message_id(feed_id: i64) -> String {
    let mut digits = [b'0'; 10];
    let mut n = feed_id.max(0) as u64;
    for d in digits.iter_mut().rev() {
        *d = ALPHABET[(n % 36) as usize];
        n /= 36;
    }
    format!("rv{}", String::from_utf8_lossy(&digits))
}

/// The feed id inside one of our message ids.
pub fn feed_id(message_id: &str) -> Option<i64> {
    let digits = message_id.strip_prefix("rv").filter(|d| d.len() == 10)?;
    i64::from_str_radix(digits, 36).ok()
}

pub fn sequence_id(incident: i64) -> String {
    format!("rv-incident-{incident}")
}

#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub id: &'static str,
    pub action: &'static str,
    pub label: &'static str,
    pub url: String,
    pub method: &'static str,
    pub clear: bool,
}

/// One event of an ntfy stream.
#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence_id: Option<String>,
    pub time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
    pub event: &'static str,
    pub topic: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub click: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
}

impl Message {
    /// `open` and `keepalive`: only id, time, event and the topics as requested.
    pub fn control(event: &'static str, topics: &str, id: String, time: i64) -> Self {
        Self {
            id,
            sequence_id: None,
            time,
            expires: None,
            event,
            topic: topics.to_owned(),
            title: None,
            message: None,
            priority: None,
            tags: Vec::new(),
            click: None,
            actions: Vec::new(),
        }
    }

    /// Whether this event carries something to show (ntfy's message-like events).
    pub fn is_message_like(&self) -> bool {
        matches!(self.event, "message" | "message_delete" | "message_clear")
    }
}

/// Renders a feed entry for a topic, or None if phones need not hear of it.
/// `ack_url` is the signed acknowledge link for pages.
pub fn from_entry(
    entry: &FeedEvent,
    topic: &str,
    base_url: &str,
    ack_url: Option<String>,
) -> Option<Message> {
    let incident = &entry.incident;
    let time = entry.at.as_second();
    let mut m = Message::control("message", topic, message_id(entry.id), time);
    m.sequence_id = Some(sequence_id(incident.id));
    m.expires = Some(time + CACHE_HOURS * 3600);
    match entry.kind {
        FeedKind::Page => {
            let drill = if incident.drill { "DRILL " } else { "" };
            m.title = Some(format!("{drill}[{}] {}", incident.severity.as_str(), incident.service));
            m.message = Some(if incident.summary.is_empty() {
                "triggered".into()
            } else {
                incident.summary.clone()
            });
            m.priority = Some(if incident.urgency == Urgency::High { 5 } else { 3 });
            let emoji = match incident.severity {
                Severity::Critical => "rotating_light",
                Severity::Error | Severity::Warning => "warning",
                Severity::Info => "information_source",
            };
            m.tags = vec![emoji.into(), incident.severity.as_str().into()];
            if incident.drill {
                m.tags.push("drill".into());
            }
            m.click = Some(format!(
                "{}/api/v1/incidents/{}",
                base_url.trim_end_matches('/'),
                incident.id
            ));
            m.actions = ack_url
                .map(|url| Action {
                    id: "ack",
                    action: "http",
                    label: "Acknowledge",
                    url,
                    method: "POST",
                    clear: true,
                })
                .into_iter()
                .collect();
            Some(m)
        }
        FeedKind::Incident => match incident.state {
            IncidentState::Acknowledged | IncidentState::Snoozed | IncidentState::Resolved => {
                m.event = "message_delete";
                Some(m)
            }
            IncidentState::Triggered => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_twelve_alphanumerics_and_round_trip() {
        for id in [0, 1, 35, 36, 1_000_000, 3_656_158_440_062_975] {
            let m = message_id(id);
            assert_eq!(m.len(), 12);
            assert!(m.chars().all(|c| c.is_ascii_alphanumeric()));
            assert_eq!(feed_id(&m), Some(id));
        }
        assert!(message_id(1) < message_id(2) && message_id(35) < message_id(36));
        assert_eq!(feed_id("abcdefghijkl"), None, "another server's id");
    }
}
