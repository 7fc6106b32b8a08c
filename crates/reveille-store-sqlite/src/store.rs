//! [`Store`] for SQLite: writes go to the writer thread, reads to the pool.

use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use reveille_core::Command;
use reveille_protocol::{FeedEvent, Incident, IncidentDetail, IncidentState};
use reveille_store::{
    Claim, ClusterView, Deafness, DeviceRecord, Error, HeartbeatRecord, Hub, IncidentFilter,
    IngestBatch, KeyInfo, Landed, Lease, NodeInfo, OverrideRecord, Pruned, Result, Rules, Store,
    TokenInfo, UserPresence, engine,
};
use tokio::sync::watch;

use crate::{Sqlite, credentials, read, records, retention};

#[async_trait]
impl Store for Sqlite {
    async fn ingest(&self, batch: IngestBatch) -> Result<Vec<Landed>> {
        self.write(move |s| engine::ingest(s, &batch)).await
    }

    async fn command(
        &self,
        id: i64,
        actor: &str,
        command: Command,
        now: Timestamp,
    ) -> Result<Incident> {
        let actor = actor.to_owned();
        self.write(move |s| engine::command(s, id, &actor, &command, now)).await
    }

    async fn command_by_link(
        &self,
        signature: &str,
        id: i64,
        actor: &str,
        command: Command,
        now: Timestamp,
    ) -> Result<Incident> {
        let (signature, actor) = (signature.to_owned(), actor.to_owned());
        self.write(move |s| {
            if !records::use_link(&s.conn, &signature, now)? {
                return Err(Error::Refused("this link was already used".into()));
            }
            engine::command(s, id, &actor, &command, now)
        })
        .await
    }

    async fn command_many(
        &self,
        ids: Vec<i64>,
        actor: &str,
        commands: Vec<Command>,
        now: Timestamp,
    ) -> Result<Vec<(i64, Result<Incident>)>> {
        let actor = actor.to_owned();
        self.write(move |s| engine::command_many(s, &ids, &actor, &commands, now)).await
    }

    async fn wake_due(&self, now: Timestamp, rules: Arc<Rules>) -> Result<usize> {
        self.write(move |s| engine::wake_due(s, now, &rules)).await
    }

    async fn escalate(&self, now: Timestamp, rules: Arc<Rules>, deaf: Deafness) -> Result<usize> {
        self.write(move |s| engine::escalate(s, now, &rules, &deaf)).await
    }

    async fn incident(&self, id: i64) -> Result<IncidentDetail> {
        self.read(move |conn| read::incident_detail(conn, id)).await
    }

    async fn incidents(&self, filter: IncidentFilter) -> Result<Vec<Incident>> {
        self.read_skipping(move |conn, skipped| read::incidents(conn, &filter, skipped)).await
    }

    async fn count_by_state(&self) -> Result<Vec<(IncidentState, u64)>> {
        self.read(read::count_by_state).await
    }

    async fn feed_since(&self, user: &str, after: i64, limit: usize) -> Result<Vec<FeedEvent>> {
        let user = user.to_owned();
        self.read_skipping(move |conn, skipped| {
            read::feed_since(conn, &user, after, limit, skipped)
        })
        .await
    }

    async fn feed_head(&self) -> Result<i64> {
        self.read(read::feed_head).await
    }

    fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    fn stopped(&self) -> watch::Receiver<Option<String>> {
        self.inner.writer.stopped()
    }

    fn progress(&self) -> reveille_store::writer::Progress {
        self.inner.writer.progress()
    }

    fn unreadable_rows(&self) -> u64 {
        self.inner.quarantine.count()
    }

    async fn add_token(&self, hash: &str, info: TokenInfo) -> Result<()> {
        let hash = hash.to_owned();
        self.write(move |s| credentials::add_token(&s.conn, &hash, &info)).await
    }

    async fn token(&self, hash: &str) -> Result<Option<TokenInfo>> {
        let hash = hash.to_owned();
        self.read(move |conn| credentials::token(conn, &hash)).await
    }

    async fn tokens(&self) -> Result<Vec<TokenInfo>> {
        self.read(credentials::tokens).await
    }

    async fn revoke_token(&self, prefix: &str) -> Result<TokenInfo> {
        let prefix = prefix.to_owned();
        self.write(move |s| credentials::revoke_token(&s.conn, &prefix)).await
    }

    async fn touch_token(&self, hash: &str, now: Timestamp) -> Result<()> {
        let hash = hash.to_owned();
        self.write(move |s| credentials::touch_token(&s.conn, &hash, now)).await
    }

    async fn add_key(&self, hash: &str, info: KeyInfo) -> Result<()> {
        let hash = hash.to_owned();
        self.write(move |s| credentials::add_key(&s.conn, &hash, &info)).await
    }

    async fn key(&self, hash: &str) -> Result<Option<KeyInfo>> {
        let hash = hash.to_owned();
        self.read(move |conn| credentials::key(conn, &hash)).await
    }

    async fn keys(&self) -> Result<Vec<KeyInfo>> {
        self.read(credentials::keys).await
    }

    async fn revoke_key(&self, prefix: &str) -> Result<KeyInfo> {
        let prefix = prefix.to_owned();
        self.write(move |s| credentials::revoke_key(&s.conn, &prefix)).await
    }

    async fn add_override(&self, o: OverrideRecord) -> Result<OverrideRecord> {
        self.write(move |s| records::add_override(&s.conn, &o)).await
    }

    async fn overrides(&self) -> Result<Vec<OverrideRecord>> {
        self.read(records::overrides).await
    }

    async fn remove_override(&self, id: i64) -> Result<OverrideRecord> {
        self.write(move |s| records::remove_override(&s.conn, id)).await
    }

    async fn heartbeat_ping(&self, name: &str, now: Timestamp) -> Result<Option<HeartbeatRecord>> {
        let name = name.to_owned();
        self.write(move |s| records::heartbeat_ping(&s.conn, &name, now)).await
    }

    async fn heartbeats(&self) -> Result<Vec<HeartbeatRecord>> {
        self.read(records::heartbeats).await
    }

    async fn set_heartbeat_missed(&self, name: &str, missed: bool) -> Result<()> {
        let name = name.to_owned();
        self.write(move |s| records::set_heartbeat_missed(&s.conn, &name, missed)).await
    }

    async fn handoff(&self, schedule: &str) -> Result<Option<Timestamp>> {
        let schedule = schedule.to_owned();
        self.read(move |conn| records::handoff(conn, &schedule)).await
    }

    async fn set_handoff(&self, schedule: &str, at: Timestamp) -> Result<()> {
        let schedule = schedule.to_owned();
        self.write(move |s| records::set_handoff(&s.conn, &schedule, at)).await
    }

    async fn meta_or_insert(&self, key: &str, fresh: &str) -> Result<String> {
        let (key, fresh) = (key.to_owned(), fresh.to_owned());
        self.write(move |s| records::meta_or_insert(&s.conn, &key, &fresh)).await
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.write(move |s| records::set_meta(&s.conn, &key, &value)).await
    }

    async fn meta(&self, key: &str) -> Result<Option<String>> {
        let key = key.to_owned();
        self.read(move |conn| {
            use rusqlite::OptionalExtension;
            let value = conn
                .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
                .query_row([&key], |row| row.get(0))
                .optional()?;
            Ok(value)
        })
        .await
    }

    async fn phone_topic(&self, user: &str, fresh: &str, now: Timestamp) -> Result<String> {
        let (user, fresh) = (user.to_owned(), fresh.to_owned());
        self.write(move |s| records::phone_topic(&s.conn, &user, &fresh, now)).await
    }

    async fn topic_user(&self, topic: &str) -> Result<Option<String>> {
        let topic = topic.to_owned();
        self.read(move |conn| records::topic_user(conn, &topic)).await
    }

    async fn add_device(&self, device: DeviceRecord, max: usize) -> Result<DeviceRecord> {
        self.write(move |s| records::add_device(&s.conn, &device, max)).await
    }

    async fn devices(&self, user: Option<&str>) -> Result<Vec<DeviceRecord>> {
        let user = user.map(str::to_owned);
        self.read(move |conn| records::devices(conn, user.as_deref())).await
    }

    async fn remove_device(&self, id: i64) -> Result<DeviceRecord> {
        self.write(move |s| records::remove_device(&s.conn, id)).await
    }

    async fn use_link(&self, signature: &str, now: Timestamp) -> Result<bool> {
        let signature = signature.to_owned();
        self.write(move |s| records::use_link(&s.conn, &signature, now)).await
    }

    async fn prune(&self, before: Timestamp, feed_kept_after: Option<i64>) -> Result<Pruned> {
        let mut total = Pruned::default();
        loop {
            let step =
                self.write(move |s| retention::step(&s.conn, before, feed_kept_after)).await?;
            if step.is_empty() {
                return Ok(total);
            }
            total.add(step);
        }
    }

    async fn ingest_once(
        &self,
        claim: Claim,
        batch: Option<IngestBatch>,
    ) -> Result<Option<Vec<Landed>>> {
        self.write(move |s| {
            if !records::claim(&s.conn, &claim)? {
                return Ok(None);
            }
            match &batch {
                Some(batch) => engine::ingest(s, batch).map(Some),
                None => Ok(Some(Vec::new())),
            }
        })
        .await
    }

    /// One node: the lease is always this node's.
    async fn lease(&self, _: &str, _: &str, _: Timestamp, _: Timestamp) -> Result<Lease> {
        Ok(Lease::Granted { took_over: None })
    }

    /// One node: what it reports is the whole cluster.
    async fn report_node(
        &self,
        node: NodeInfo,
        presence: Vec<UserPresence>,
    ) -> Result<ClusterView> {
        let name = node.name.clone();
        let presence = presence.into_iter().map(|p| (name.clone(), p)).collect();
        Ok(ClusterView { nodes: vec![node], presence })
    }

    async fn set_push_ok(&self, device: i64, ok: bool) -> Result<()> {
        self.write(move |s| records::set_push_ok(&s.conn, device, ok)).await
    }

    async fn take_tokens(
        &self,
        key: &str,
        want: u32,
        per_minute: u32,
        now: Timestamp,
    ) -> Result<u32> {
        Ok(self.take_tokens_here(key, want, per_minute, now))
    }

    async fn feed_horizon(&self) -> Result<i64> {
        self.read(retention::horizon).await
    }

    async fn feed_all_since(&self, after: i64, limit: usize) -> Result<Vec<(String, FeedEvent)>> {
        self.read_skipping(move |conn, skipped| read::feed_all_since(conn, after, limit, skipped))
            .await
    }
}
