//! The writer thread's connection: the transaction steps of group commit, and the page
//! pipeline's [`Tx`] in SQL. SQLite has one writer, so what it loads needs no lock beyond the
//! transaction itself, and feed ids (`AUTOINCREMENT`) are handed out in commit order.

use std::sync::Arc;

use jiff::Timestamp;
use reveille_protocol::{AlertEvent, FeedEvent, Incident, IncidentState, TimelineEntry};
use reveille_store::engine::Tx;
use reveille_store::quarantine::{Quarantine, decode};
use reveille_store::writer::{self, Committed};
use reveille_store::{IngestBatch, Result};
use rusqlite::{Connection, OptionalExtension, params};

use crate::quarantine;
use crate::read::{from_json, incident_by_id, to_json};

/// The writer's connection and what its open transaction has appended to feeds.
pub struct Session {
    pub conn: Connection,
    outbox: Committed,
    /// Where the current job's feed entries start.
    mark: usize,
    quarantine: Arc<Quarantine>,
}

impl Session {
    pub fn new(conn: Connection, quarantine: Arc<Quarantine>) -> Self {
        Self { conn, outbox: Vec::new(), mark: 0, quarantine }
    }

    /// The incidents `sql` (`SELECT id, body …`, with the time as `?1`) finds, skipping any that
    /// cannot be read: one unreadable incident must not stop every other ladder and snooze.
    fn select(&self, sql: &str, now: Timestamp) -> Result<Vec<Incident>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt
            .query_map([now.as_millisecond()], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut skipped = Vec::new();
        let found =
            rows.iter().filter_map(|(id, body)| decode("incidents", *id, body, &mut skipped));
        let found = found.collect();
        quarantine::record(&self.conn, &self.quarantine.first_seen(skipped), now)?;
        Ok(found)
    }
}

impl writer::Session for Session {
    fn begin(&mut self) -> Result<()> {
        self.outbox.clear();
        Ok(self.conn.execute_batch("BEGIN IMMEDIATE")?)
    }

    fn savepoint(&mut self) -> Result<()> {
        self.mark = self.outbox.len();
        Ok(self.conn.execute_batch("SAVEPOINT job")?)
    }

    fn rollback_to_savepoint(&mut self) -> Result<()> {
        self.outbox.truncate(self.mark);
        Ok(self.conn.execute_batch("ROLLBACK TO job; RELEASE job")?)
    }

    fn release_savepoint(&mut self) -> Result<()> {
        Ok(self.conn.execute_batch("RELEASE job")?)
    }

    fn commit(&mut self) -> Result<Committed> {
        self.conn.execute_batch("COMMIT")?;
        Ok(std::mem::take(&mut self.outbox))
    }

    fn rollback(&mut self) {
        self.outbox.clear();
        let _ = self.conn.execute_batch("ROLLBACK");
    }
}

impl Tx for Session {
    fn record_event(&mut self, batch: &IngestBatch, event: &AlertEvent) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO events (received_at, service, source, body) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                batch.received_at.to_string(),
                batch.rules.name,
                batch.source,
                to_json(event)?
            ])?;
        Ok(())
    }

    fn open_incident(&mut self, service: &str, dedup_key: &str) -> Result<Option<Incident>> {
        let body: Option<String> = self
            .conn
            .prepare_cached(
                "SELECT body FROM incidents
                 WHERE service = ?1 AND dedup_key = ?2 AND state != 'resolved'",
            )?
            .query_row(params![service, dedup_key], |row| row.get(0))
            .optional()?;
        body.map(|b| from_json(&b)).transpose()
    }

    fn incident(&mut self, id: i64) -> Result<Incident> {
        incident_by_id(&self.conn, id)
    }

    fn snoozes_due(&mut self, now: Timestamp) -> Result<Vec<Incident>> {
        self.select(
            "SELECT id, body FROM incidents WHERE snoozed_until IS NOT NULL AND snoozed_until <= ?1",
            now,
        )
    }

    fn ladders(&mut self, now: Timestamp) -> Result<Vec<Incident>> {
        self.select(
            "SELECT id, body FROM incidents WHERE next_escalation_at IS NOT NULL AND ?1 IS NOT NULL",
            now,
        )
    }

    fn insert_incident(&mut self, incident: &Incident) -> Result<i64> {
        self.conn
            .prepare_cached(
                "INSERT INTO incidents (service, dedup_key, state, body) VALUES (?1, ?2, ?3, '{}')",
            )?
            .execute(params![incident.service, incident.dedup_key, incident.state.as_str()])?;
        Ok(self.conn.last_insert_rowid())
    }

    fn save_incident(&mut self, incident: &Incident) -> Result<()> {
        let state = incident.state;
        self.conn
            .prepare_cached(
                "UPDATE incidents SET state = ?2, snoozed_until = ?3, body = ?4,
                        next_escalation_at = ?5, closed_at = ?6
                 WHERE id = ?1",
            )?
            .execute(params![
                incident.id,
                state.as_str(),
                incident
                    .snoozed_until
                    .filter(|_| state == IncidentState::Snoozed)
                    .map(|t| t.as_millisecond()),
                to_json(incident)?,
                incident
                    .escalation
                    .and_then(|e| e.next_at)
                    .filter(|_| state == IncidentState::Triggered)
                    .map(|t| t.as_millisecond()),
                (state == IncidentState::Resolved).then(|| incident.updated_at.as_millisecond()),
            ])?;
        Ok(())
    }

    fn add_timeline(&mut self, incident: i64, entry: &TimelineEntry) -> Result<()> {
        self.conn
            .prepare_cached("INSERT INTO timeline (incident_id, body) VALUES (?1, ?2)")?
            .execute(params![incident, to_json(entry)?])?;
        Ok(())
    }

    fn add_paged(&mut self, incident: i64, user: &str) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO incident_users (incident_id, user) VALUES (?1, ?2)",
            )?
            .execute(params![incident, user])?;
        Ok(())
    }

    fn append_feed(&mut self, user: &str, mut entry: FeedEvent) -> Result<()> {
        self.conn
            .prepare_cached("INSERT INTO feed (user, body, incident_id) VALUES (?1, ?2, ?3)")?
            .execute(params![user, to_json(&entry)?, entry.incident.id])?;
        entry.id = self.conn.last_insert_rowid();
        self.outbox.push((user.to_owned(), entry));
        Ok(())
    }
}
