//! What a backend supplies, and nothing else: its connections (the writer thread's session,
//! and reads off the async runtime), its SQL (the query traits below, one per role, each a
//! plain blocking call on one connection), and the state a cluster shares ([`crate::Cluster`]).
//! Everything built on them — the writer and read plumbing, skipping unreadable rows, the
//! durable answers — is written once in [`crate::roles`].

use async_trait::async_trait;
use jiff::Timestamp;
use reveille_protocol::{FeedEvent, Incident, IncidentDetail, IncidentState};

use crate::engine::Tx;
use crate::quarantine::{Quarantine, Unreadable};
use crate::writer::{self, Writer};
use crate::{
    Claim, DeviceRecord, HeartbeatRecord, Hub, IncidentFilter, KeyInfo, OverrideRecord, Pruned,
    Result, TokenInfo,
};

/// A database Reveille runs on. [`crate::Store`] comes with it.
#[async_trait]
pub trait Backend: Clone + crate::Cluster + Send + Sync + 'static {
    /// The writer thread's connection: the steps of group commit, the page pipeline's
    /// transaction, and every write.
    type Session: writer::Session + Tx + IncidentWrites + CredentialWrites + RecordWrites;
    /// A read connection.
    type Reader: IncidentReads + CredentialReads + RecordReads + Send + 'static;

    /// The writer thread.
    fn writer(&self) -> &Writer<Self::Session>;
    /// Committed feed entries, published in id order.
    fn hub(&self) -> &Hub;
    /// The unreadable rows met so far.
    fn quarantine(&self) -> &Quarantine;
    /// Runs `f` on a read connection, off the async runtime's threads. `f` may run twice when
    /// the connection turns out to be dead (the database restarted): it is opened again at once.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&mut Self::Reader) -> Result<T> + Send + 'static;
}

/// Incidents and the feed, read.
pub trait IncidentReads {
    fn incident(&mut self, id: i64) -> Result<IncidentDetail>;
    /// Incidents `filter` matches, newest first; rows that cannot be decoded go to `skipped`.
    fn incidents(
        &mut self,
        filter: &IncidentFilter,
        skipped: &mut Vec<Unreadable>,
    ) -> Result<Vec<Incident>>;
    fn count_by_state(&mut self) -> Result<Vec<(IncidentState, u64)>>;
    fn feed_since(
        &mut self,
        user: &str,
        after: i64,
        limit: usize,
        skipped: &mut Vec<Unreadable>,
    ) -> Result<Vec<FeedEvent>>;
    fn feed_head(&mut self) -> Result<i64>;
    fn feed_all_since(
        &mut self,
        after: i64,
        limit: usize,
        skipped: &mut Vec<Unreadable>,
    ) -> Result<Vec<(String, FeedEvent)>>;
    fn feed_horizon(&mut self) -> Result<i64>;
}

/// Incidents and the feed, written (beside the page pipeline's [`Tx`]).
pub trait IncidentWrites {
    /// Takes the claim if nobody has: true when this transaction does the work.
    fn claim(&mut self, claim: &Claim) -> Result<bool>;
    /// Marks a signed link used; false if it already was.
    fn use_link(&mut self, signature: &str, now: Timestamp) -> Result<bool>;
    /// One bounded step of retention.
    fn prune_step(&mut self, before: Timestamp, feed_kept_after: Option<i64>) -> Result<Pruned>;
    /// Notes each unreadable row on its incident's timeline.
    fn note_unreadable(&mut self, rows: &[Unreadable], now: Timestamp) -> Result<()>;
}

/// Tokens and integration keys, read.
pub trait CredentialReads {
    fn token(&mut self, hash: &str) -> Result<Option<TokenInfo>>;
    fn tokens(&mut self) -> Result<Vec<TokenInfo>>;
    fn key(&mut self, hash: &str) -> Result<Option<KeyInfo>>;
    fn keys(&mut self) -> Result<Vec<KeyInfo>>;
}

/// Tokens and integration keys, written.
pub trait CredentialWrites {
    fn add_token(&mut self, hash: &str, info: &TokenInfo) -> Result<()>;
    fn revoke_token(&mut self, prefix: &str) -> Result<TokenInfo>;
    fn touch_token(&mut self, hash: &str, now: Timestamp) -> Result<()>;
    fn add_key(&mut self, hash: &str, info: &KeyInfo) -> Result<()>;
    fn revoke_key(&mut self, prefix: &str) -> Result<KeyInfo>;
}

/// Overrides, heartbeats, handoffs, settings, phone topics and devices, read.
pub trait RecordReads {
    fn overrides(&mut self) -> Result<Vec<OverrideRecord>>;
    fn heartbeats(&mut self) -> Result<Vec<HeartbeatRecord>>;
    fn handoff(&mut self, schedule: &str) -> Result<Option<Timestamp>>;
    fn meta(&mut self, key: &str) -> Result<Option<String>>;
    fn topic_user(&mut self, topic: &str) -> Result<Option<String>>;
    fn devices(&mut self, user: Option<&str>) -> Result<Vec<DeviceRecord>>;
}

/// Overrides, heartbeats, handoffs, settings, phone topics and devices, written.
pub trait RecordWrites {
    fn add_override(&mut self, o: &OverrideRecord) -> Result<OverrideRecord>;
    fn remove_override(&mut self, id: i64) -> Result<OverrideRecord>;
    fn heartbeat_ping(&mut self, name: &str, now: Timestamp) -> Result<Option<HeartbeatRecord>>;
    fn set_heartbeat_missed(&mut self, name: &str, missed: bool) -> Result<()>;
    fn set_handoff(&mut self, schedule: &str, at: Timestamp) -> Result<()>;
    fn meta_or_insert(&mut self, key: &str, fresh: &str) -> Result<String>;
    fn set_meta(&mut self, key: &str, value: &str) -> Result<()>;
    fn phone_topic(&mut self, user: &str, fresh: &str, now: Timestamp) -> Result<String>;
    fn add_device(&mut self, device: &DeviceRecord, max: usize) -> Result<DeviceRecord>;
    fn remove_device(&mut self, id: i64) -> Result<DeviceRecord>;
    fn set_push_ok(&mut self, device: i64, ok: bool) -> Result<()>;
}
