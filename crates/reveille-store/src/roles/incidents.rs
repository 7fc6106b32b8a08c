//! [`Incidents`] for every backend: the page pipeline ([`crate::engine`]) on the writer thread,
//! the reads on the backend's read connections, and rows that cannot be decoded skipped (and
//! noted on their incident's timeline, once) so that no read ever stops at one.

use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use reveille_core::Command;
use reveille_protocol::{FeedEvent, Incident, IncidentDetail, IncidentState};

use super::Incidents;
use crate::backend::{IncidentReads, IncidentWrites};
use crate::quarantine::Unreadable;
use crate::{
    Backend, Claim, Deafness, Error, Hub, IncidentFilter, IngestBatch, Landed, Result, Rules,
    engine, writer,
};

/// Runs `f` on a read connection, skipping the rows it cannot decode; those met for the first
/// time are noted on their incident's timeline by the writer, off the reader's way.
pub(crate) async fn read_skipping<B, T, F>(backend: &B, mut f: F) -> Result<T>
where
    B: Backend,
    T: Send + 'static,
    F: FnMut(&mut B::Reader, &mut Vec<Unreadable>) -> Result<T> + Send + 'static,
{
    let (value, skipped) = backend
        .read(move |reader| {
            let mut skipped = Vec::new();
            Ok((f(reader, &mut skipped)?, skipped))
        })
        .await?;
    let fresh = backend.quarantine().first_seen(skipped);
    if !fresh.is_empty() {
        let noting = backend.clone();
        tokio::spawn(async move {
            let now = Timestamp::now();
            let noted = noting.writer().write(move |s| s.note_unreadable(&fresh, now));
            if let Err(e) = noted.await {
                tracing::warn!(error = %e, "cannot note an unreadable row on its timeline");
            }
        });
    }
    Ok(value)
}

#[async_trait]
impl<B: Backend> Incidents for B {
    async fn ingest(&self, batch: IngestBatch) -> Result<Vec<Landed>> {
        self.writer().write(move |s| engine::ingest(s, &batch)).await
    }

    async fn command(
        &self,
        id: i64,
        actor: &str,
        command: Command,
        now: Timestamp,
    ) -> Result<Incident> {
        let actor = actor.to_owned();
        self.writer().write(move |s| engine::command(s, id, &actor, &command, now)).await
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
        self.writer()
            .write(move |s| {
                if !s.use_link(&signature, now)? {
                    return Err(Error::Refused("this link was already used".into()));
                }
                engine::command(s, id, &actor, &command, now)
            })
            .await
    }

    async fn escalate_now(
        &self,
        id: i64,
        actor: &str,
        how: &str,
        rules: Arc<Rules>,
        now: Timestamp,
    ) -> Result<Incident> {
        let (actor, how) = (actor.to_owned(), how.to_owned());
        self.writer().write(move |s| engine::escalate_now(s, id, &actor, &how, &rules, now)).await
    }

    async fn command_many(
        &self,
        ids: Vec<i64>,
        actor: &str,
        commands: Vec<Command>,
        now: Timestamp,
    ) -> Result<Vec<(i64, Result<Incident>)>> {
        let actor = actor.to_owned();
        self.writer().write(move |s| engine::command_many(s, &ids, &actor, &commands, now)).await
    }

    async fn wake_due(&self, now: Timestamp, rules: Arc<Rules>) -> Result<usize> {
        self.writer().write(move |s| engine::wake_due(s, now, &rules)).await
    }

    async fn escalate(&self, now: Timestamp, rules: Arc<Rules>, deaf: Deafness) -> Result<usize> {
        self.writer().write(move |s| engine::escalate(s, now, &rules, &deaf)).await
    }

    async fn ingest_once(
        &self,
        claim: Claim,
        batch: Option<IngestBatch>,
    ) -> Result<Option<Vec<Landed>>> {
        self.writer()
            .write(move |s| {
                if !s.claim(&claim)? {
                    return Ok(None);
                }
                match &batch {
                    Some(batch) => engine::ingest(s, batch).map(Some),
                    None => Ok(Some(Vec::new())),
                }
            })
            .await
    }

    async fn incident(&self, id: i64) -> Result<IncidentDetail> {
        self.read(move |r| r.incident(id)).await
    }

    async fn incidents(&self, filter: IncidentFilter) -> Result<Vec<Incident>> {
        read_skipping(self, move |r, skipped| r.incidents(&filter, skipped)).await
    }

    async fn count_by_state(&self) -> Result<Vec<(IncidentState, u64)>> {
        self.read(|r| r.count_by_state()).await
    }

    async fn feed_since(&self, user: &str, after: i64, limit: usize) -> Result<Vec<FeedEvent>> {
        let user = user.to_owned();
        read_skipping(self, move |r, skipped| r.feed_since(&user, after, limit, skipped)).await
    }

    async fn feed_head(&self) -> Result<i64> {
        self.read(|r| r.feed_head()).await
    }

    async fn feed_all_since(&self, after: i64, limit: usize) -> Result<Vec<(String, FeedEvent)>> {
        read_skipping(self, move |r, skipped| r.feed_all_since(after, limit, skipped)).await
    }

    async fn feed_horizon(&self) -> Result<i64> {
        self.read(|r| r.feed_horizon()).await
    }

    fn hub(&self) -> &Hub {
        Backend::hub(self)
    }

    fn unreadable_rows(&self) -> u64 {
        self.quarantine().count()
    }

    fn stopped(&self) -> tokio::sync::watch::Receiver<Option<String>> {
        self.writer().stopped()
    }

    fn progress(&self) -> writer::Progress {
        self.writer().progress()
    }
}
