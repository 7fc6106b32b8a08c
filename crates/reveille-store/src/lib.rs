//! Reveille's durable storage: what every backend shares.
//!
//! [`Store`] is what the server needs: apply alert events and people's commands to incidents
//! atomically (the rules come from `reveille-core`, driven by the shared [`engine`]), keep each
//! user's feed as a durable ordered log, and keep credential hashes. The backends live in their
//! own crates, named after their technology: `reveille-store-sqlite` (embedded, the default) and
//! `reveille-store-postgres` (several nodes). A method that returns `Ok` has committed *and*
//! synced its write: callers may promise durability on that basis.
//!
//! Committed feed entries are published to the store's [`Hub`] in feed-id order, so a subscriber
//! that subscribes before reading its backlog sees every entry exactly once. [`conformance`]
//! (feature `conformance`) is the suite every backend must pass.

#[cfg(feature = "conformance")]
pub mod conformance;
pub mod engine;
mod hub;
pub mod quarantine;
pub mod writer;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use reveille_core::{Command, ServiceRules};
use reveille_protocol::{AlertEvent, FeedEvent, Incident, IncidentDetail, IncidentState};

pub use hub::{Hub, Published};

/// The one error type of this crate.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("{0} not found")]
    NotFound(String),
    /// The rules refuse the command (e.g. snoozing a resolved incident).
    #[error("{0}")]
    Refused(String),
    /// The database could not do its job; nothing was written. Callers should retry later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Another writer (another node) got in the way; running the transaction again will work.
    #[error("storage conflict: {0}")]
    Conflict(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The database failed: nothing was written, and trying later may work.
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        Error::Unavailable(cause.to_string())
    }
}

// The errors of the databases the backends use, as this crate's: each backend turns on its
// feature, so its code can use `?` on its driver's calls.
#[cfg(feature = "sqlite")]
impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::unavailable(e)
    }
}

#[cfg(feature = "postgres")]
impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Self {
        use postgres::error::SqlState;
        let conflict = [
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::UNIQUE_VIOLATION,
            SqlState::LOCK_NOT_AVAILABLE,
        ];
        match e.code() {
            Some(code) if conflict.contains(code) => Error::Conflict(e.to_string()),
            _ => Error::unavailable(e),
        }
    }
}

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
    }
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

/// Everything the server keeps.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Records the events and applies them to incidents. `Ok` means committed and synced.
    async fn ingest(&self, batch: IngestBatch) -> Result<Vec<Landed>>;
    /// Applies a person's command to an incident and returns it as it now is.
    async fn command(
        &self,
        id: i64,
        actor: &str,
        command: Command,
        now: Timestamp,
    ) -> Result<Incident>;
    /// Applies the passing of time to snoozes; returns how many incidents changed.
    async fn wake_due(&self, now: Timestamp, rules: Arc<Rules>) -> Result<usize>;
    /// Moves escalation ladders on that are due, or whose current level cannot hear the page.
    async fn escalate(&self, now: Timestamp, rules: Arc<Rules>, deaf: Deafness) -> Result<usize>;

    async fn incident(&self, id: i64) -> Result<IncidentDetail>;
    async fn incidents(&self, filter: IncidentFilter) -> Result<Vec<Incident>>;
    async fn count_by_state(&self) -> Result<Vec<(IncidentState, u64)>>;

    /// The user's feed entries with an id greater than `after`, oldest first.
    async fn feed_since(&self, user: &str, after: i64, limit: usize) -> Result<Vec<FeedEvent>>;
    /// The newest feed id of the whole store (0 when empty).
    async fn feed_head(&self) -> Result<i64>;
    /// Live feed entries, published after they are committed.
    fn hub(&self) -> &Hub;
    /// How many stored rows readers have skipped as unreadable since the process started. Every
    /// reader skips such a row (with an error log and a line on its incident's timeline) rather
    /// than fail: a feed read never stops at one, and unreadable rows do not count against a
    /// read's `limit`.
    fn unreadable_rows(&self) -> u64;
    /// Becomes `Some(reason)` when the store can no longer write at all (its writer died): the
    /// process should end so that a supervisor starts it again.
    fn stopped(&self) -> tokio::sync::watch::Receiver<Option<String>>;

    async fn add_token(&self, hash: &str, info: TokenInfo) -> Result<()>;
    async fn token(&self, hash: &str) -> Result<Option<TokenInfo>>;
    async fn tokens(&self) -> Result<Vec<TokenInfo>>;
    /// Revokes every token whose prefix starts with `prefix`; refuses an ambiguous prefix.
    async fn revoke_token(&self, prefix: &str) -> Result<TokenInfo>;
    async fn touch_token(&self, hash: &str, now: Timestamp) -> Result<()>;

    async fn add_key(&self, hash: &str, info: KeyInfo) -> Result<()>;
    async fn key(&self, hash: &str) -> Result<Option<KeyInfo>>;
    async fn keys(&self) -> Result<Vec<KeyInfo>>;
    async fn revoke_key(&self, prefix: &str) -> Result<KeyInfo>;

    /// Stores an override and returns it with its id.
    async fn add_override(&self, o: OverrideRecord) -> Result<OverrideRecord>;
    async fn overrides(&self) -> Result<Vec<OverrideRecord>>;
    async fn remove_override(&self, id: i64) -> Result<OverrideRecord>;

    /// Records a ping; returns the monitor as it was before (None for its first ping).
    async fn heartbeat_ping(&self, name: &str, now: Timestamp) -> Result<Option<HeartbeatRecord>>;
    async fn heartbeats(&self) -> Result<Vec<HeartbeatRecord>>;
    async fn set_heartbeat_missed(&self, name: &str, missed: bool) -> Result<()>;

    /// The value stored under `key`, storing `fresh` first if there is none (secrets, cursors).
    async fn meta_or_insert(&self, key: &str, fresh: &str) -> Result<String>;
    async fn set_meta(&self, key: &str, value: &str) -> Result<()>;

    /// A user's phone topic, creating it as `fresh` if the user has none.
    async fn phone_topic(&self, user: &str, fresh: &str, now: Timestamp) -> Result<String>;
    /// Whose phone topic this is.
    async fn topic_user(&self, topic: &str) -> Result<Option<String>>;

    /// Registers a device; registering it again keeps one record. Refused when the device (its
    /// platform and token) belongs to another user, or the user already has `max` devices.
    async fn add_device(&self, device: DeviceRecord, max: usize) -> Result<DeviceRecord>;
    async fn devices(&self, user: Option<&str>) -> Result<Vec<DeviceRecord>>;
    async fn remove_device(&self, id: i64) -> Result<DeviceRecord>;

    /// Marks a signed link as used; false if it already was.
    async fn use_link(&self, signature: &str, now: Timestamp) -> Result<bool>;

    /// Feed entries of every user after `after`, oldest first: the outbox of push delivery.
    async fn feed_all_since(&self, after: i64, limit: usize) -> Result<Vec<(String, FeedEvent)>>;

    /// Removes history from before `before`: incidents resolved before it (with their timelines
    /// and feed entries), raw events and used links. Never anything of an open incident, nor a
    /// feed entry after `feed_kept_after` (a resume point still to be read). Works in small
    /// transactions, so pages never wait long behind it.
    async fn prune(&self, before: Timestamp, feed_kept_after: Option<i64>) -> Result<Pruned>;
    /// The newest feed id retention removed (0 if none): a device resuming from before it has
    /// missed entries and must list what is open instead.
    async fn feed_horizon(&self) -> Result<i64>;

    /// The last handoff of a schedule that was drilled, if any.
    async fn handoff(&self, schedule: &str) -> Result<Option<Timestamp>>;
    async fn set_handoff(&self, schedule: &str, at: Timestamp) -> Result<()>;
}
