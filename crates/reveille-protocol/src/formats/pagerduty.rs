//! PagerDuty Events API v2 (`POST /v2/enqueue`).

use serde::{Deserialize, Serialize};

/// An event as a PagerDuty integration sends it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Event {
    pub routing_key: Option<String>,
    pub event_action: Option<String>,
    pub dedup_key: Option<String>,
    pub payload: Option<Payload>,
    #[serde(default)]
    pub images: Vec<serde_json::Value>,
    #[serde(default)]
    pub links: Vec<Link>,
    pub client: Option<String>,
    pub client_url: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Payload {
    pub summary: Option<String>,
    pub source: Option<String>,
    pub severity: Option<String>,
    pub timestamp: Option<String>,
    pub component: Option<String>,
    pub group: Option<String>,
    pub class: Option<String>,
    pub custom_details: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Link {
    pub href: Option<String>,
    pub text: Option<String>,
}

/// The 202 answer: `{"status":"success","message":"Event processed","dedup_key":"..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Accepted {
    pub status: String,
    pub message: String,
    pub dedup_key: String,
}

impl Accepted {
    pub fn new(dedup_key: String) -> Self {
        Self { status: "success".into(), message: "Event processed".into(), dedup_key }
    }
}

/// The 400 answer: `{"status":"invalid event","message":"Event object is invalid","errors":[...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invalid {
    pub status: String,
    pub message: String,
    pub errors: Vec<String>,
}

impl Invalid {
    pub fn new(errors: Vec<String>) -> Self {
        Self { status: "invalid event".into(), message: "Event object is invalid".into(), errors }
    }
}
