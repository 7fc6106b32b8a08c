//! Feed events: a user's ordered, resumable stream of pages and incident changes.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::incident::Incident;

/// Why a feed entry exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum FeedKind {
    /// The user is paged: a device should notify, and ring if the urgency is high.
    Page,
    /// An incident the user was paged for changed state (acknowledged, resolved, snoozed…).
    Incident,
}

impl FeedKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Page => "page",
            Self::Incident => "incident",
        }
    }
}

/// One durable feed entry. `id` increases monotonically and is the SSE event id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedEvent {
    pub id: i64,
    pub kind: FeedKind,
    pub at: Timestamp,
    /// The incident as it was when the entry was written.
    pub incident: Incident,
}

/// Data of the SSE `open` event sent when a feed connection starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedOpen {
    pub user: String,
    pub time: Timestamp,
    /// The newest feed id at the moment the stream opened.
    pub head: i64,
    /// The newest feed id that retention removed: a device resuming from before it has missed
    /// entries (of incidents resolved long ago) and must list what is open instead.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pruned_through: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Data of the SSE `heartbeat` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub time: Timestamp,
}
