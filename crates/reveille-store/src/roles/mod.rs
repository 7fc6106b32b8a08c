//! The store by role, each a trait the server holds as part of [`Store`], and (but for
//! [`Cluster`]) written once for every [`Backend`](crate::Backend): [`incidents`],
//! [`credentials`], [`records`].

mod credentials;
mod incidents;
mod records;

use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use reveille_core::Command;
use reveille_protocol::{FeedEvent, Incident, IncidentDetail, IncidentState};

use crate::{
    Claim, ClusterView, Deafness, DeviceRecord, HeartbeatRecord, Hub, IncidentFilter, IngestBatch,
    KeyInfo, Landed, Lease, NodeInfo, OverrideRecord, Pruned, Result, Rules, TokenInfo,
    UserPresence, writer,
};

/// Everything the server keeps.
pub trait Store: Incidents + Credentials + Records + Cluster + 'static {}

impl<T: Incidents + Credentials + Records + Cluster + 'static> Store for T {}

/// Incidents, the page pipeline that changes them, and each person's feed.
#[async_trait]
pub trait Incidents: Send + Sync {
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
    /// A person asks for the next level of the incident's escalation policy now (`how`: " by
    /// pressing 6 on a call"); `Refused` when it is not waiting for anyone or the ladder ended.
    async fn escalate_now(
        &self,
        id: i64,
        actor: &str,
        how: &str,
        rules: Arc<Rules>,
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
    /// Claims `claim` and, if this is the first to, ingests `batch` in the same transaction.
    /// None when it was claimed already (by another node, or an earlier tick).
    async fn ingest_once(
        &self,
        claim: Claim,
        batch: Option<IngestBatch>,
    ) -> Result<Option<Vec<Landed>>>;

    async fn incident(&self, id: i64) -> Result<IncidentDetail>;
    async fn incidents(&self, filter: IncidentFilter) -> Result<Vec<Incident>>;
    async fn count_by_state(&self) -> Result<Vec<(IncidentState, u64)>>;

    /// The user's feed entries with an id greater than `after`, oldest first.
    async fn feed_since(&self, user: &str, after: i64, limit: usize) -> Result<Vec<FeedEvent>>;
    /// The newest feed id of the whole store (0 when empty).
    async fn feed_head(&self) -> Result<i64>;
    /// Feed entries of every user after `after`, oldest first: what the outboxes read.
    async fn feed_all_since(&self, after: i64, limit: usize) -> Result<Vec<(String, FeedEvent)>>;
    /// The newest feed id retention removed (0 if none): a device resuming from before it has
    /// missed entries and must list what is open instead.
    async fn feed_horizon(&self) -> Result<i64>;
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
}

/// API tokens and integration keys, kept as hashes.
#[async_trait]
pub trait Credentials: Send + Sync {
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
}

/// What else the server keeps: overrides, heartbeats, handoffs, settings and cursors, phone
/// topics, devices, signed links; and retention of what is old.
#[async_trait]
pub trait Records: Send + Sync {
    /// Stores an override and returns it with its id.
    async fn add_override(&self, o: OverrideRecord) -> Result<OverrideRecord>;
    async fn overrides(&self) -> Result<Vec<OverrideRecord>>;
    async fn remove_override(&self, id: i64) -> Result<OverrideRecord>;

    /// Records a ping; returns the monitor as it was before (None for its first ping).
    async fn heartbeat_ping(&self, name: &str, now: Timestamp) -> Result<Option<HeartbeatRecord>>;
    async fn heartbeats(&self) -> Result<Vec<HeartbeatRecord>>;
    async fn set_heartbeat_missed(&self, name: &str, missed: bool) -> Result<()>;

    /// The last handoff of a schedule that was drilled, if any.
    async fn handoff(&self, schedule: &str) -> Result<Option<Timestamp>>;
    async fn set_handoff(&self, schedule: &str, at: Timestamp) -> Result<()>;

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
    /// Records whether the provider accepted the last push to a device.
    async fn set_push_ok(&self, device: i64, ok: bool) -> Result<()>;

    /// Marks a signed link as used; false if it already was.
    async fn use_link(&self, signature: &str, now: Timestamp) -> Result<bool>;

    /// Removes history from before `before`: incidents resolved before it (with their timelines
    /// and feed entries), raw events, used links, overrides that ended, and tokens revoked or web
    /// console sessions made before it. Never anything of an open incident, nor a feed entry
    /// after `feed_kept_after` (a resume point still to be read). Works in small transactions,
    /// so pages never wait long behind it.
    async fn prune(&self, before: Timestamp, feed_kept_after: Option<i64>) -> Result<Pruned>;
}

/// What the nodes of a cluster share: leases, which nodes are alive (and their devices), rate
/// buckets. This one each backend writes itself: with one node (SQLite) there is nobody to
/// share with.
#[async_trait]
pub trait Cluster: Send + Sync {
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
    /// Takes up to `want` tokens from the rate bucket of `key` (shared by every node): how
    /// many were granted.
    async fn take_tokens(
        &self,
        key: &str,
        want: u32,
        per_minute: u32,
        now: Timestamp,
    ) -> Result<u32>;
}
