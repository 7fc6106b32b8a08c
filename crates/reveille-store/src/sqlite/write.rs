//! Writes that carry out the core's decisions, run on the writer thread inside a transaction.

use jiff::Timestamp;
use reveille_core::{Command, Effect};
use reveille_protocol::limits::feed_view;
use reveille_protocol::{FeedEvent, FeedKind, Incident, IncidentState};
use rusqlite::{Connection, OptionalExtension, params};

use super::Outbox;
use super::quarantine::{self, Quarantine};
use super::read::{decode, from_json, incident_by_id, to_json};
use crate::{Deafness, Error, IngestBatch, Landed, Result, Rules};

pub(super) fn ingest(
    conn: &Connection,
    outbox: &mut Outbox,
    batch: &IngestBatch,
) -> Result<Vec<Landed>> {
    let now = batch.received_at;
    let mut landed = Vec::with_capacity(batch.events.len());
    let mut insert_event = conn.prepare_cached(
        "INSERT INTO events (received_at, service, source, body) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for event in &batch.events {
        insert_event.execute(params![
            now.to_string(),
            batch.rules.name,
            batch.source,
            to_json(event)?
        ])?;
        let open = open_incident(conn, &batch.rules.name, &event.dedup_key)?;
        let effects =
            reveille_core::on_alert(open.as_ref(), &batch.rules, event, &batch.source, now);
        let id = perform(conn, outbox, open, &effects, now)?;
        landed.push(Landed { dedup_key: event.dedup_key.clone(), incident_id: id });
    }
    Ok(landed)
}

pub(super) fn command(
    conn: &Connection,
    outbox: &mut Outbox,
    id: i64,
    actor: &str,
    command: &Command,
    now: Timestamp,
) -> Result<Incident> {
    let incident = incident_by_id(conn, id)?;
    let effects = reveille_core::on_command(&incident, actor, command, now)
        .map_err(|refusal| Error::Refused(refusal.0))?;
    perform(conn, outbox, Some(incident.clone()), &effects, now)?;
    if effects.is_empty() { Ok(incident) } else { incident_by_id(conn, id) }
}

/// The incidents `sql` (`SELECT id, body …`, with the time as `?1`) finds, skipping any that
/// cannot be read: one unreadable incident must not stop every other ladder and snooze.
fn select(
    conn: &Connection,
    sql: &str,
    now: Timestamp,
    quarantine: &Quarantine,
) -> Result<Vec<Incident>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt
        .query_map([now.as_millisecond()], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut skipped = Vec::new();
    let found = rows.iter().filter_map(|(id, body)| decode("incidents", *id, body, &mut skipped));
    let found = found.collect();
    quarantine::record(conn, &quarantine.first_seen(skipped), now)?;
    Ok(found)
}

pub(super) fn wake_due(
    conn: &Connection,
    outbox: &mut Outbox,
    now: Timestamp,
    rules: &Rules,
    quarantine: &Quarantine,
) -> Result<usize> {
    let due = select(
        conn,
        "SELECT id, body FROM incidents WHERE snoozed_until IS NOT NULL AND snoozed_until <= ?1",
        now,
        quarantine,
    )?;
    let mut changed = 0;
    for incident in due {
        let effects = reveille_core::on_wake(&incident, rules.get(&incident.service), now);
        changed += usize::from(!effects.is_empty());
        perform(conn, outbox, Some(incident), &effects, now)?;
    }
    Ok(changed)
}

pub(super) fn escalate(
    conn: &Connection,
    outbox: &mut Outbox,
    now: Timestamp,
    rules: &Rules,
    deaf: &Deafness,
    quarantine: &Quarantine,
) -> Result<usize> {
    // Every live ladder, not only the due ones: a deaf level is left before its time.
    let live = select(
        conn,
        "SELECT id, body FROM incidents WHERE next_escalation_at IS NOT NULL AND ?1 IS NOT NULL",
        now,
        quarantine,
    )?;
    let deafness = |user: &str| deaf.get(user).cloned();
    let mut changed = 0;
    for incident in live {
        let Some(service) = rules.get(&incident.service) else {
            continue;
        };
        let effects = reveille_core::on_escalate(&incident, service, &deafness, now);
        changed += usize::from(!effects.is_empty());
        perform(conn, outbox, Some(incident), &effects, now)?;
    }
    Ok(changed)
}

fn open_incident(conn: &Connection, service: &str, key: &str) -> Result<Option<Incident>> {
    let mut stmt = conn.prepare_cached(
        "SELECT body FROM incidents WHERE service = ?1 AND dedup_key = ?2 AND state != 'resolved'",
    )?;
    let body: Option<String> =
        stmt.query_row(params![service, key], |row| row.get(0)).optional()?;
    body.map(|b| from_json(&b)).transpose()
}

/// Persists the effects; returns the incident's id, if there is an incident.
fn perform(
    conn: &Connection,
    outbox: &mut Outbox,
    current: Option<Incident>,
    effects: &[Effect],
    now: Timestamp,
) -> Result<Option<i64>> {
    let Some(mut incident) = current.or_else(|| opened(effects)) else {
        return Ok(None);
    };
    if effects.is_empty() {
        return Ok(Some(incident.id));
    }
    reveille_core::apply(&mut incident, effects, now);
    let mut view = None;
    if incident.id == 0 {
        conn.prepare_cached(
            "INSERT INTO incidents (service, dedup_key, state, body) VALUES (?1, ?2, ?3, '{}')",
        )?
        .execute(params![
            incident.service,
            incident.dedup_key,
            incident.state.as_str()
        ])?;
        incident.id = conn.last_insert_rowid();
    }
    let id = incident.id;
    conn.prepare_cached(
        "UPDATE incidents SET state = ?2, snoozed_until = ?3, body = ?4, next_escalation_at = ?5,
                closed_at = ?6
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        incident.state.as_str(),
        incident
            .snoozed_until
            .filter(|_| incident.state == IncidentState::Snoozed)
            .map(|t| t.as_millisecond()),
        to_json(&incident)?,
        incident
            .escalation
            .and_then(|e| e.next_at)
            .filter(|_| incident.state == IncidentState::Triggered)
            .map(|t| t.as_millisecond()),
        (incident.state == IncidentState::Resolved).then(|| incident.updated_at.as_millisecond()),
    ])?;
    for effect in effects {
        match effect {
            Effect::Timeline(entry) => {
                conn.prepare_cached("INSERT INTO timeline (incident_id, body) VALUES (?1, ?2)")?
                    .execute(params![id, to_json(entry)?])?;
            }
            Effect::Page { users } => {
                for user in users {
                    conn.prepare_cached(
                        "INSERT OR IGNORE INTO incident_users (incident_id, user) VALUES (?1, ?2)",
                    )?
                    .execute(params![id, user])?;
                    let view = view.get_or_insert_with(|| feed_view(&incident));
                    append_feed(conn, outbox, user, FeedKind::Page, view, now)?;
                }
            }
            Effect::Notify => {
                let view = view.get_or_insert_with(|| feed_view(&incident));
                for user in &incident.paged {
                    append_feed(conn, outbox, user, FeedKind::Incident, view, now)?;
                }
            }
            Effect::Open(_)
            | Effect::SetState { .. }
            | Effect::Escalation(_)
            | Effect::Silent { .. } => {}
        }
    }
    Ok(Some(id))
}

fn opened(effects: &[Effect]) -> Option<Incident> {
    effects.iter().find_map(|e| match e {
        Effect::Open(incident) => Some((**incident).clone()),
        _ => None,
    })
}

fn append_feed(
    conn: &Connection,
    outbox: &mut Outbox,
    user: &str,
    kind: FeedKind,
    incident: &Incident,
    now: Timestamp,
) -> Result<()> {
    let mut event = FeedEvent { id: 0, kind, at: now, incident: incident.clone() };
    conn.prepare_cached("INSERT INTO feed (user, body, incident_id) VALUES (?1, ?2, ?3)")?
        .execute(params![user, to_json(&event)?, incident.id])?;
    event.id = conn.last_insert_rowid();
    outbox.push((user.to_owned(), event));
    Ok(())
}
