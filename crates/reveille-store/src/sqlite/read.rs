//! Queries, run on pooled read connections (and by the writer to load state).

use reveille_protocol::{FeedEvent, Incident, IncidentDetail, IncidentState, TimelineEntry};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, IncidentFilter, Result};

pub(super) fn to_json(value: &impl Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Unavailable(format!("encoding: {e}")))
}

pub(super) fn from_json<T: DeserializeOwned>(body: &str) -> Result<T> {
    serde_json::from_str(body).map_err(|e| Error::Unavailable(format!("corrupt row: {e}")))
}

pub(super) fn incident_by_id(conn: &Connection, id: i64) -> Result<Incident> {
    let body: Option<String> = conn
        .prepare_cached("SELECT body FROM incidents WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?;
    match body {
        Some(body) => from_json(&body),
        None => Err(Error::NotFound(format!("incident {id}"))),
    }
}

pub(super) fn incident_detail(conn: &Connection, id: i64) -> Result<IncidentDetail> {
    let incident = incident_by_id(conn, id)?;
    let mut stmt =
        conn.prepare_cached("SELECT body FROM timeline WHERE incident_id = ?1 ORDER BY id")?;
    let timeline = stmt
        .query_map([id], |row| row.get::<_, String>(0))?
        .map(|body| from_json::<TimelineEntry>(&body?))
        .collect::<Result<Vec<_>>>()?;
    Ok(IncidentDetail { incident, timeline })
}

pub(super) fn incidents(conn: &Connection, filter: &IncidentFilter) -> Result<Vec<Incident>> {
    let mut stmt = conn.prepare_cached(
        "SELECT body FROM incidents i
         WHERE (?1 = 0 OR state != 'resolved')
           AND (?2 IS NULL OR service = ?2)
           AND (?3 IS NULL OR EXISTS (
                SELECT 1 FROM incident_users u WHERE u.user = ?3 AND u.incident_id = i.id))
           AND (?5 IS NULL OR json_extract(body, '$.drill') = ?5)
         ORDER BY id DESC LIMIT ?4",
    )?;
    let limit = if filter.limit == 0 { 100 } else { filter.limit };
    stmt.query_map(
        params![filter.open_only, filter.service, filter.user, limit as i64, filter.drill],
        |row| row.get::<_, String>(0),
    )?
    .map(|body| from_json(&body?))
    .collect()
}

pub(super) fn count_by_state(conn: &Connection) -> Result<Vec<(IncidentState, u64)>> {
    let mut stmt = conn.prepare_cached("SELECT state, COUNT(*) FROM incidents GROUP BY state")?;
    let counted = stmt
        .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(IncidentState::ALL
        .into_iter()
        .map(|state| {
            let n = counted.iter().find(|(s, _)| s == state.as_str()).map_or(0, |(_, n)| *n);
            (state, n as u64)
        })
        .collect())
}

pub(super) fn feed_since(
    conn: &Connection,
    user: &str,
    after: i64,
    limit: usize,
) -> Result<Vec<FeedEvent>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, body FROM feed WHERE user = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
    )?;
    stmt.query_map(params![user, after, limit as i64], |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
    })?
    .map(|row| {
        let (id, body) = row?;
        let mut event: FeedEvent = from_json(&body)?;
        event.id = id;
        Ok(event)
    })
    .collect()
}

pub(super) fn feed_head(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT COALESCE(MAX(id), 0) FROM feed", [], |row| row.get(0))?)
}

pub(super) fn feed_all_since(
    conn: &Connection,
    after: i64,
    limit: usize,
) -> Result<Vec<(String, FeedEvent)>> {
    let mut stmt =
        conn.prepare_cached("SELECT id, user, body FROM feed WHERE id > ?1 ORDER BY id LIMIT ?2")?;
    stmt.query_map(params![after, limit as i64], |row| {
        Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?))
    })?
    .map(|row| {
        let (id, user, body) = row?;
        let mut event: FeedEvent = from_json(&body)?;
        event.id = id;
        Ok((user, event))
    })
    .collect()
}
