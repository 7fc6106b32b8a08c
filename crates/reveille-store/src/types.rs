//! The records the store keeps and the questions it answers, as plain data every role shares.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;
use reveille_core::ServiceRules;
use reveille_protocol::{AlertEvent, IncidentState, Urgency};

/// Alert events from one request, all applied in one transaction.
#[derive(Debug, Clone)]
pub struct IngestBatch {
    pub rules: ServiceRules,
    /// Which adapter they came through: `pagerduty`, `alertmanager`, `grafana`, `opsgenie`, `api`.
    pub source: String,
    pub events: Vec<AlertEvent>,
    pub received_at: Timestamp,
}

/// Where one ingested event landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landed {
    pub dedup_key: String,
    /// None when an acknowledge or resolve matched no open incident.
    pub incident_id: Option<i64>,
}

/// Every service's rules by name: what the escalation worker needs to move ladders on.
pub type Rules = HashMap<String, ServiceRules>;

/// Users who cannot hear a page right now, with the reason (e.g. "has had no live device for 2m").
pub type Deafness = Arc<HashMap<String, String>>;

/// An override of a schedule made through the API or the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideRecord {
    pub id: i64,
    pub schedule: String,
    pub user: String,
    pub start: Timestamp,
    pub end: Timestamp,
    pub created_by: String,
    pub created_at: Timestamp,
}

/// The last ping of a heartbeat monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatRecord {
    pub name: String,
    pub last_ping: Timestamp,
    /// True while the monitor is overdue and its incident is open.
    pub missed: bool,
}

/// A phone or tablet registered for native push (FCM or APNs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    pub id: i64,
    pub user: String,
    /// `fcm` or `apns`.
    pub platform: String,
    /// The provider's registration token for the app on this device.
    pub token: String,
    pub name: String,
    pub created_at: Timestamp,
    /// Whether the provider accepted the last push to it (None: none sent yet).
    pub push_ok: Option<bool>,
}

/// Which incidents to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    pub open_only: bool,
    pub service: Option<String>,
    /// Only incidents this user was paged for.
    pub user: Option<String>,
    /// Only drills (true) or only real incidents (false).
    pub drill: Option<bool>,
    /// Only incidents in this state.
    pub state: Option<IncidentState>,
    pub urgency: Option<Urgency>,
    /// Only incidents created at or after `since` and before `until`.
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Only incidents with a smaller id: the next page after the one that ended there.
    pub before: Option<i64>,
    pub limit: usize,
}

/// What one pass of retention removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Resolved incidents, with their timelines.
    pub incidents: u64,
    pub feed_entries: u64,
    /// Raw events as they were received.
    pub events: u64,
    /// Used acknowledge links.
    pub links: u64,
    /// Overrides that ended.
    pub overrides: u64,
    /// Revoked tokens and web console sessions.
    pub tokens: u64,
}

impl Pruned {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub fn add(&mut self, other: Pruned) {
        self.incidents += other.incidents;
        self.feed_entries += other.feed_entries;
        self.events += other.events;
        self.links += other.links;
        self.overrides += other.overrides;
        self.tokens += other.tokens;
    }
}

/// Timed work that must happen once, whichever node's worker sees it due: claimed in the same
/// transaction that does it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// A heartbeat monitor missed its ping: still armed at `last_ping`, not yet marked missed.
    HeartbeatMissed { name: String, last_ping: Timestamp },
    /// A schedule's handoff at `at` is drilled: the last handoff drilled is still `previous`.
    Handoff { schedule: String, previous: Option<Timestamp>, at: Timestamp },
}

/// How asking for a lease went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    /// Ours until the time asked; `took_over` names the node whose lease had run out (it may
    /// have done part of the work without recording it).
    Granted { took_over: Option<String> },
    /// Another node holds it.
    Held(String),
}

/// One user's device connections on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPresence {
    pub user: String,
    pub open: u32,
    /// Since when the user has had no connection on that node (when `open` is 0).
    pub since: Timestamp,
}

/// A node of the cluster, as last reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    pub seen: Timestamp,
    /// When the node started (the epoch for a node that does not say).
    pub started: Timestamp,
    /// Which acknowledge-link keys the node accepts, the one it signs with first (fingerprints,
    /// not keys).
    pub link_keys: Vec<String>,
}

/// What every node reported: the nodes, and each one's device connections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterView {
    pub nodes: Vec<NodeInfo>,
    pub presence: Vec<(String, UserPresence)>,
}

/// A token bucket: `per_minute` tokens refill a minute, up to `per_minute`. Takes up to `want`
/// tokens at `now`; returns what is left and how many were granted.
pub fn take_tokens(
    tokens: f64,
    at: Timestamp,
    now: Timestamp,
    per_minute: f64,
    want: u32,
) -> (f64, u32) {
    let elapsed = now.duration_since(at).as_secs_f64().max(0.0);
    let tokens = (tokens + elapsed * per_minute / 60.0).min(per_minute);
    let granted = (tokens.floor() as u32).min(want);
    (tokens - f64::from(granted), granted)
}

/// A stored API token, never with its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The first characters of the token, enough to tell tokens apart in a list.
    pub prefix: String,
    pub user: String,
    pub scopes: Vec<String>,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked: bool,
}

/// A stored integration key of a service, never with its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub prefix: String,
    pub service: String,
    pub created_at: Timestamp,
    pub revoked: bool,
}
