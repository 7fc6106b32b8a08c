//! Incidents as the API and the feed show them, with their timeline and device receipts.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::alert::{Link, Severity, Urgency};

/// Where an incident is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum IncidentState {
    Triggered,
    Acknowledged,
    /// Silenced until `snoozed_until`, then triggered again if still open.
    Snoozed,
    Resolved,
}

impl IncidentState {
    pub const ALL: [IncidentState; 4] =
        [Self::Triggered, Self::Acknowledged, Self::Snoozed, Self::Resolved];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Triggered => "triggered",
            Self::Acknowledged => "acknowledged",
            Self::Snoozed => "snoozed",
            Self::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Open incidents still need a human; resolved ones are history.
    pub fn is_open(self) -> bool {
        self != Self::Resolved
    }
}

/// An incident as shown by the API and carried in feed events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: i64,
    pub service: String,
    pub dedup_key: String,
    pub state: IncidentState,
    pub urgency: Urgency,
    pub severity: Severity,
    pub summary: String,
    pub source: String,
    pub details: serde_json::Value,
    pub links: Vec<Link>,
    pub runbook_url: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub acknowledged_by: Option<String>,
    pub resolved_by: Option<String>,
    pub snoozed_until: Option<Timestamp>,
    /// Users who were paged for this incident; they follow its state changes.
    pub paged: Vec<String>,
    /// Where the incident is on its escalation ladder; None for incidents that never escalate.
    #[serde(default)]
    pub escalation: Option<Escalation>,
    /// A practice page: rings one person, never escalates.
    #[serde(default)]
    pub drill: bool,
    /// Users whose device reported it cannot make sound for this page.
    #[serde(default)]
    pub silent: Vec<String>,
}

/// A step on the escalation ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    /// Index of the level paged last (0 is the first level).
    pub level: usize,
    /// How many times the ladder has started over.
    pub round: u32,
    /// When the next level is due if nobody acknowledges; None when the ladder is done.
    pub next_at: Option<Timestamp>,
}

/// One line of an incident's history: who did what, when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct TimelineEntry {
    #[ts(type = "string")]
    pub at: Timestamp,
    /// A user name, a device, a monitoring source or `reveille` itself.
    pub actor: String,
    /// Stable machine name: `triggered`, `deduplicated`, `paged`, `acknowledged`, `receipt`, …
    pub kind: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    #[ts(type = "unknown")]
    pub data: serde_json::Value,
}

/// An incident with its whole timeline, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentDetail {
    #[serde(flatten)]
    pub incident: Incident,
    pub timeline: Vec<TimelineEntry>,
}

/// What a device reports about a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReceiptKind {
    Delivered,
    Ringing,
    Acked,
}

impl ReceiptKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Ringing => "ringing",
            Self::Acked => "acked",
        }
    }
}

/// A device's report: delivered, ringing (with how loud and whether anyone can hear it), acked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    pub kind: ReceiptKind,
    /// A name the device gives itself, e.g. `alice-laptop`.
    pub device: String,
    /// Alarm volume from 0.0 to 1.0 when ringing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<f32>,
    /// True when the output is muted or there is no output at all: the page is silent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted: Option<bool>,
    /// The audio output device in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}
