//! A node's writer connection: the transaction steps of group commit, and the page pipeline's
//! [`Tx`] in SQL, for several nodes writing at once.
//!
//! Write transactions of every node run one at a time: each takes one advisory lock
//! ([`WRITE_LOCK`]) as its first step. Their row locks can then never be taken in crossing
//! orders (a group locks many incidents, in the order its requests came), so no two writers ever
//! deadlock; and feed entries, numbered from the `feed_seq` row as the last step before the
//! commit, become visible in the order of their ids, so a device that resumes after id N can
//! never miss an entry committed later with an id ≤ N. What the engine loads it also locks
//! (`FOR UPDATE`), and the worker's scans skip what is locked (`SKIP LOCKED`), for the
//! transactions outside the writers. A frozen node cannot hold the lock for long: its
//! connection's idle-in-transaction deadline ends its transaction (see [`crate::Deadlines`]).

use std::collections::HashMap;
use std::sync::Arc;

use jiff::Timestamp;
use postgres::{Client, Statement};
use reveille_protocol::{AlertEvent, FeedEvent, Incident, IncidentState, TimelineEntry};
use reveille_store::engine::Tx;
use reveille_store::quarantine::{Quarantine, decode};
use reveille_store::writer::{self, Committed};
use reveille_store::{Error, IngestBatch, Result};

use crate::{Target, json, quarantine, unjson};

/// The channel every node listens on; a notification carries the newest feed id committed.
pub const CHANNEL: &str = "reveille_feed";

/// The advisory lock every write transaction of every node takes first.
pub const WRITE_LOCK: i64 = 0x7265_7665_696c_6c77;

/// The writer's connection, and the rows its open transaction will write at the commit.
///
/// Every statement is a round trip, and round trips are what bounds throughput here. Rows that
/// need no answer and that nothing reads back inside the transaction (raw events, timeline lines,
/// who was paged, feed entries) wait in [`Pending`] and go in one multi-row insert each at the
/// commit; a job that fails takes its own back out.
pub struct Session {
    target: Target,
    client: Option<Client>,
    statements: HashMap<&'static str, Statement>,
    /// Feed entries of this transaction, without ids until the commit gives them.
    outbox: Committed,
    pending: Pending,
    /// Where the current job's rows start, in the outbox and in `pending`.
    mark: (usize, [usize; 3]),
    /// The last job's savepoint is released with the next one's, or by the commit.
    release_due: bool,
    quarantine: Arc<Quarantine>,
}

/// Rows written at the commit.
#[derive(Default)]
struct Pending {
    /// received_at, received_ms, service, source, body
    events: Vec<(String, i64, String, String, String)>,
    /// incident, body
    timeline: Vec<(i64, String)>,
    /// incident, user
    paged: Vec<(i64, String)>,
}

impl Pending {
    fn marks(&self) -> [usize; 3] {
        [self.events.len(), self.timeline.len(), self.paged.len()]
    }

    fn truncate(&mut self, [events, timeline, paged]: [usize; 3]) {
        self.events.truncate(events);
        self.timeline.truncate(timeline);
        self.paged.truncate(paged);
    }

    fn clear(&mut self) {
        self.truncate([0, 0, 0]);
    }
}

impl Session {
    pub(crate) fn new(target: Target, quarantine: Arc<Quarantine>) -> Self {
        Self {
            target,
            client: None,
            statements: HashMap::new(),
            outbox: Vec::new(),
            pending: Pending::default(),
            mark: (0, [0; 3]),
            release_due: false,
            quarantine,
        }
    }

    /// The connection, opened again if it was lost (its node recovers on its own).
    pub fn client(&mut self) -> Result<&mut Client> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.statements.clear();
            self.client = Some(self.target.connect()?);
        }
        Ok(self.client.as_mut().expect("just connected"))
    }

    /// Runs `sql` (prepared once per connection) and returns its rows.
    pub fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>> {
        let statement = match self.statements.get(sql) {
            Some(statement) => statement.clone(),
            None => {
                let statement = self.client()?.prepare(sql)?;
                self.statements.insert(sql, statement.clone());
                statement
            }
        };
        Ok(self.client()?.query(&statement, params)?)
    }

    fn run(&mut self, sql: &str) -> Result<()> {
        Ok(self.client()?.batch_execute(sql)?)
    }

    /// Incidents `sql` finds (`SELECT id, body … FOR UPDATE SKIP LOCKED`, the time as `$1`),
    /// skipping any that cannot be read.
    fn select(&mut self, sql: &'static str, now: Timestamp) -> Result<Vec<Incident>> {
        let rows = self.query(sql, &[&now.as_millisecond()])?;
        let mut skipped = Vec::new();
        let found = rows
            .iter()
            .filter_map(|row| decode("incidents", row.get(0), row.get::<_, &str>(1), &mut skipped))
            .collect();
        let fresh = self.quarantine.first_seen(skipped);
        quarantine::record(self, &fresh, now)?;
        Ok(found)
    }

    /// Writes the rows that waited for the commit, one statement per table.
    fn store_pending(&mut self) -> Result<()> {
        let pending = std::mem::take(&mut self.pending);
        if !pending.events.is_empty() {
            let (mut at, mut ms, mut service, mut source, mut body) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (a, m, sv, so, b) in pending.events {
                at.push(a);
                ms.push(m);
                service.push(sv);
                source.push(so);
                body.push(b);
            }
            self.query(
                "INSERT INTO events (received_at, received_ms, service, source, body)
                 SELECT * FROM UNNEST($1::TEXT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::TEXT[])",
                &[&at, &ms, &service, &source, &body],
            )?;
        }
        if !pending.timeline.is_empty() {
            let (incidents, bodies): (Vec<i64>, Vec<String>) = pending.timeline.into_iter().unzip();
            self.query(
                "INSERT INTO timeline (incident_id, body)
                 SELECT i, b FROM UNNEST($1::BIGINT[], $2::TEXT[]) WITH ORDINALITY AS t(i, b, n)
                 ORDER BY n",
                &[&incidents, &bodies],
            )?;
        }
        if !pending.paged.is_empty() {
            let (incidents, users): (Vec<i64>, Vec<String>) = pending.paged.into_iter().unzip();
            self.query(
                "INSERT INTO incident_users (incident_id, user_name)
                 SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[]) ON CONFLICT DO NOTHING",
                &[&incidents, &users],
            )?;
        }
        Ok(())
    }

    /// Gives the transaction's feed entries their ids and stores them; the last step before
    /// the commit, so the `feed_seq` lock is held as briefly as possible.
    fn store_feed(&mut self) -> Result<()> {
        if self.outbox.is_empty() {
            return Ok(());
        }
        let count = self.outbox.len() as i64;
        let rows = self.query("UPDATE feed_seq SET last = last + $1 RETURNING last", &[&count])?;
        let last: i64 = rows.first().ok_or_else(|| Error::unavailable("no feed_seq row"))?.get(0);
        let mut ids = Vec::with_capacity(self.outbox.len());
        let (mut users, mut incidents, mut bodies) = (Vec::new(), Vec::new(), Vec::new());
        for (n, (user, entry)) in self.outbox.iter_mut().enumerate() {
            entry.id = last - count + 1 + n as i64;
            ids.push(entry.id);
            users.push(user.clone());
            incidents.push(entry.incident.id);
            bodies.push(json(entry)?);
        }
        self.query(
            "INSERT INTO feed (id, user_name, incident_id, body)
             SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::BIGINT[], $4::TEXT[])",
            &[&ids, &users, &incidents, &bodies],
        )?;
        // Delivered at the commit, to every node listening (this one too).
        self.query("SELECT pg_notify($1, $2)", &[&CHANNEL, &last.to_string()])?;
        Ok(())
    }
}

impl writer::Session for Session {
    fn begin(&mut self) -> Result<()> {
        self.outbox.clear();
        self.pending.clear();
        self.release_due = false;
        let begin = format!("BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})");
        match self.run(&begin) {
            // The connection died since the last transaction (the database restarted): nothing
            // was begun on it, so a new one begins at once.
            Err(_) if self.client.as_ref().is_some_and(Client::is_closed) => self.run(&begin),
            begun => begun,
        }
    }

    fn savepoint(&mut self) -> Result<()> {
        self.mark = (self.outbox.len(), self.pending.marks());
        if std::mem::take(&mut self.release_due) {
            self.run("RELEASE SAVEPOINT job; SAVEPOINT job")
        } else {
            self.run("SAVEPOINT job")
        }
    }

    fn rollback_to_savepoint(&mut self) -> Result<()> {
        self.outbox.truncate(self.mark.0);
        self.pending.truncate(self.mark.1);
        self.run("ROLLBACK TO SAVEPOINT job; RELEASE SAVEPOINT job")
    }

    fn release_savepoint(&mut self) -> Result<()> {
        // With the next job's savepoint, or by the commit: one round trip fewer per job.
        self.release_due = true;
        Ok(())
    }

    fn commit(&mut self) -> Result<Committed> {
        self.store_pending()?;
        self.store_feed()?;
        self.run("COMMIT")?;
        Ok(std::mem::take(&mut self.outbox))
    }

    fn rollback(&mut self) {
        self.outbox.clear();
        self.pending.clear();
        if let Some(client) = self.client.as_mut().filter(|c| !c.is_closed()) {
            let _ = client.batch_execute("ROLLBACK");
        }
    }
}

impl Tx for Session {
    fn record_event(&mut self, batch: &IngestBatch, event: &AlertEvent) -> Result<()> {
        let at = batch.received_at;
        self.query(
            "INSERT INTO events (received_at, received_ms, service, source, body)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &at.to_string(),
                &at.as_millisecond(),
                &batch.rules.name,
                &batch.source,
                &json(event)?,
            ],
        )?;
        Ok(())
    }

    fn open_incident(&mut self, service: &str, dedup_key: &str) -> Result<Option<Incident>> {
        let rows = self.query(
            "SELECT body FROM incidents
             WHERE service = $1 AND dedup_key = $2 AND state <> 'resolved' FOR UPDATE",
            &[&service, &dedup_key],
        )?;
        rows.first().map(|row| unjson(row.get(0))).transpose()
    }

    fn incident(&mut self, id: i64) -> Result<Incident> {
        let rows = self.query("SELECT body FROM incidents WHERE id = $1 FOR UPDATE", &[&id])?;
        match rows.first() {
            Some(row) => unjson(row.get(0)),
            None => Err(Error::NotFound(format!("incident {id}"))),
        }
    }

    fn snoozes_due(&mut self, now: Timestamp) -> Result<Vec<Incident>> {
        self.select(
            "SELECT id, body FROM incidents WHERE snoozed_until <= $1 FOR UPDATE SKIP LOCKED",
            now,
        )
    }

    fn ladders(&mut self, now: Timestamp) -> Result<Vec<Incident>> {
        self.select(
            "SELECT id, body FROM incidents
             WHERE next_escalation_at IS NOT NULL AND $1::BIGINT IS NOT NULL
             FOR UPDATE SKIP LOCKED",
            now,
        )
    }

    fn insert_incident(&mut self, incident: &Incident) -> Result<i64> {
        let rows = self.query(
            "INSERT INTO incidents (service, dedup_key, state, drill, body)
             VALUES ($1, $2, $3, $4, '{}') RETURNING id",
            &[&incident.service, &incident.dedup_key, &incident.state.as_str(), &incident.drill],
        )?;
        Ok(rows[0].get(0))
    }

    fn save_incident(&mut self, incident: &Incident) -> Result<()> {
        let state = incident.state;
        let snoozed = incident
            .snoozed_until
            .filter(|_| state == IncidentState::Snoozed)
            .map(|t| t.as_millisecond());
        let next = incident
            .escalation
            .and_then(|e| e.next_at)
            .filter(|_| state == IncidentState::Triggered)
            .map(|t| t.as_millisecond());
        let closed =
            (state == IncidentState::Resolved).then(|| incident.updated_at.as_millisecond());
        self.query(
            "UPDATE incidents SET state = $2, snoozed_until = $3, body = $4,
                    next_escalation_at = $5, closed_at = $6
             WHERE id = $1",
            &[&incident.id, &state.as_str(), &snoozed, &json(incident)?, &next, &closed],
        )?;
        Ok(())
    }

    fn add_timeline(&mut self, incident: i64, entry: &TimelineEntry) -> Result<()> {
        self.pending.timeline.push((incident, json(entry)?));
        Ok(())
    }

    fn add_paged(&mut self, incident: i64, user: &str) -> Result<()> {
        self.pending.paged.push((incident, user.to_owned()));
        Ok(())
    }

    fn append_feed(&mut self, user: &str, entry: FeedEvent) -> Result<()> {
        self.outbox.push((user.to_owned(), entry));
        Ok(())
    }
}
