//! The normalised alert event every ingest format is translated into.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// What a monitoring tool asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Trigger,
    Acknowledge,
    Resolve,
}

/// PagerDuty's four severities, which every other format is mapped onto.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
    Critical,
}

impl Severity {
    /// Parses the exact lowercase PagerDuty names.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "critical" => Some(Self::Critical),
            "error" => Some(Self::Error),
            "warning" => Some(Self::Warning),
            "info" => Some(Self::Info),
            _ => None,
        }
    }

    /// Maps the many spellings tools use (`page`, `P1`, `major`, `warn`…) onto the four levels.
    pub fn parse_loose(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "critical" | "crit" | "page" | "fatal" | "emergency" | "alert" | "high" | "p1" => {
                Some(Self::Critical)
            }
            "error" | "err" | "major" | "p2" => Some(Self::Error),
            "warning" | "warn" | "minor" | "medium" | "p3" => Some(Self::Warning),
            "info" | "informational" | "low" | "none" | "notice" | "debug" | "p4" | "p5" => {
                Some(Self::Info)
            }
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Info => "info",
        }
    }
}

/// High urgency pages and rings; low urgency only notifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum Urgency {
    High,
    Low,
}

impl Urgency {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::High => "high",
            Self::Low => "low",
        }
    }
}

/// A link shown with the incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Link {
    pub href: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// One alert event from any source, after its adapter has validated and normalised it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    pub action: Action,
    /// Events with the same key on the same service belong to the same open incident.
    pub dedup_key: String,
    /// Empty for acknowledge and resolve events that carry no text.
    #[serde(default)]
    pub summary: String,
    pub severity: Severity,
    /// The affected system, e.g. a host name.
    #[serde(default)]
    pub source: String,
    /// Free-form context (labels, annotations, custom details), always a JSON object.
    #[serde(default)]
    pub details: serde_json::Value,
    #[serde(default)]
    pub links: Vec<Link>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook_url: Option<String>,
    /// When the monitoring tool says the problem started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<Timestamp>,
}
