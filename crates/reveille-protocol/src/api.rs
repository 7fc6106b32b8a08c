//! Request and response bodies of Reveille's REST API.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::alert::{Action, Link};

/// Body of `POST /api/v1/events`, the generic ingest endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenericEvent {
    /// Needed when authenticating with a token; implied by an integration key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
}

/// Answer of the generic ingest endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventAccepted {
    pub dedup_key: String,
    /// The incident the event landed on, if any (an ack for an unknown key lands nowhere).
    pub incident_id: Option<i64>,
}

/// Body of `POST /api/v1/incidents/{id}/snooze`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnoozeRequest {
    /// How long to stay quiet, in seconds.
    pub seconds: u64,
}

/// Answer of `GET /api/v1/incidents`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentList {
    pub incidents: Vec<crate::Incident>,
}

/// Answer of `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub time: Timestamp,
}
