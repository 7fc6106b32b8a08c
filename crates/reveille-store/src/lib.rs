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
use reveille_protocol::{AlertEvent, FeedEvent, Incident, IncidentDetail, IncidentState, Urgency};

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
    /// A stored row cannot be decoded (written by another version, damaged): trying again
    /// will not help. Readers skip such a row, say so, and go on.
    #[error("a stored row cannot be read: {0}")]
    Corrupt(String),
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
        // Another node's write got in the way: running the transaction again will work. (A
        // deadline that ran out is not one of these: the lock holder may be frozen, so the
        // caller hears `Unavailable` at once and retries later, perhaps on another node.)
        let conflict = [
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::UNIQUE_VIOLATION,
        ];
        // "db error" alone says nothing: the server's own message does.
        let message = match e.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => e.to_string(),
        };
        match e.code() {
            Some(code) if conflict.contains(code) => Error::Conflict(message),
            _ => Error::Unavailable(message),
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
    /// Applies `commands`, in order, to each incident of `ids` in one transaction; each
    /// incident's answer is its own (`NotFound`, `Refused`), the `Err` of the whole is the
    /// database's.
    async fn command_many(
        &self,
        ids: Vec<i64>,
        actor: &str,
        commands: Vec<Command>,
        now: Timestamp,
    ) -> Result<Vec<(i64, Result<Incident>)>>;
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
    /// How the writer is getting on: writes waiting, and how long since the last commit.
    fn progress(&self) -> writer::Progress;

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
    /// A stored value, read without writing anything.
    async fn meta(&self, key: &str) -> Result<Option<String>>;

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
    /// Spends a signed link and applies the command it carries in one transaction: a command
    /// that fails leaves the link unspent; a link spent already is `Refused`.
    async fn command_by_link(
        &self,
        signature: &str,
        id: i64,
        actor: &str,
        command: Command,
        now: Timestamp,
    ) -> Result<Incident>;

    /// Feed entries of every user after `after`, oldest first: the outbox of push delivery.
    async fn feed_all_since(&self, after: i64, limit: usize) -> Result<Vec<(String, FeedEvent)>>;

    /// Claims `claim` and, if this is the first to, ingests `batch` in the same transaction.
    /// None when it was claimed already (by another node, or an earlier tick).
    async fn ingest_once(
        &self,
        claim: Claim,
        batch: Option<IngestBatch>,
    ) -> Result<Option<Vec<Landed>>>;
    /// Takes or renews the lease `name` for `holder` until `until`, unless another holds it.
    async fn lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Lease>;
    /// Records this node as alive at `now` with its device connections (all of them), and
    /// returns what every node reported. One node alone reports to itself.
    async fn report_node(&self, node: NodeInfo, presence: Vec<UserPresence>)
    -> Result<ClusterView>;
    /// Records whether the provider accepted the last push to a device.
    async fn set_push_ok(&self, device: i64, ok: bool) -> Result<()>;
    /// Takes up to `want` tokens from the rate bucket of `key` (shared by every node): how
    /// many were granted.
    async fn take_tokens(
        &self,
        key: &str,
        want: u32,
        per_minute: u32,
        now: Timestamp,
    ) -> Result<u32>;

    /// Removes history from before `before`: incidents resolved before it (with their timelines
    /// and feed entries), raw events, used links, overrides that ended, and tokens revoked or web
    /// console sessions made before it. Never anything of an open incident, nor a feed entry
    /// after `feed_kept_after` (a resume point still to be read). Works in small transactions,
    /// so pages never wait long behind it.
    async fn prune(&self, before: Timestamp, feed_kept_after: Option<i64>) -> Result<Pruned>;
    /// The newest feed id retention removed (0 if none): a device resuming from before it has
    /// missed entries and must list what is open instead.
    async fn feed_horizon(&self) -> Result<i64>;

    /// The last handoff of a schedule that was drilled, if any.
    async fn handoff(&self, schedule: &str) -> Result<Option<Timestamp>>;
    async fn set_handoff(&self, schedule: &str, at: Timestamp) -> Result<()>;
}
