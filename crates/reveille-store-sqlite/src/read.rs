//! Queries, run on pooled read connections (and by the writer to load state).

use reveille_protocol::{FeedEvent, Incident, IncidentDetail, IncidentState, TimelineEntry};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use reveille_store::backend::IncidentReads;
use reveille_store::quarantine::{Unreadable, decode};

use crate::Reader;
use reveille_store::{Error, IncidentFilter, Result};

pub(crate) fn to_json(value: &impl Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Unavailable(format!("encoding: {e}")))
}

pub(crate) fn from_json<T: DeserializeOwned>(body: &str) -> Result<T> {
    serde_json::from_str(body).map_err(|e| Error::Corrupt(e.to_string()))
}

pub(crate) fn incident_by_id(conn: &Connection, id: i64) -> Result<Incident> {
    let body: Option<String> = conn
        .prepare_cached("SELECT body FROM incidents WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?;
    match body {
        Some(body) => from_json(&body),
        None => Err(Error::NotFound(format!("incident {id}"))),
    }
}

type FeedRow = (i64, String, String);

fn feed_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<FeedRow> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
}

/// Up to `limit` readable feed entries in id order, read with `query(after, how_many)` and
/// setting aside unreadable rows, which do not count: a reader that stops at a short page must
/// not stop at a row it skipped.
fn feed_entries(
    mut after: i64,
    limit: usize,
    skipped: &mut Vec<Unreadable>,
    mut query: impl FnMut(i64, usize) -> rusqlite::Result<Vec<FeedRow>>,
) -> Result<Vec<(String, FeedEvent)>> {
    let mut entries = Vec::new();
    while entries.len() < limit {
        let want = limit - entries.len();
        let rows = query(after, want)?;
        let scanned = rows.len();
        for (id, user, body) in rows {
            after = id;
            if let Some(mut event) = decode::<FeedEvent>("feed", id, &body, skipped) {
                event.id = id;
                entries.push((user, event));
            }
        }
        if scanned < want {
            break;
        }
    }
    Ok(entries)
}

impl IncidentReads for Reader {
    fn feed_horizon(&mut self) -> Result<i64> {
        crate::retention::horizon(&self.0)
    }

    fn incident(&mut self, id: i64) -> Result<IncidentDetail> {
        let conn = &self.0;
        let incident = incident_by_id(conn, id)?;
        let mut stmt =
            conn.prepare_cached("SELECT body FROM timeline WHERE incident_id = ?1 ORDER BY id")?;
        let timeline = stmt
            .query_map([id], |row| row.get::<_, String>(0))?
            .map(|body| from_json::<TimelineEntry>(&body?))
            .collect::<Result<Vec<_>>>()?;
        Ok(IncidentDetail { incident, timeline })
    }

    fn incidents(
        &mut self,
        filter: &IncidentFilter,
        skipped: &mut Vec<Unreadable>,
    ) -> Result<Vec<Incident>> {
        let conn = &self.0;
        // Only the filters given are in the query, so SQLite can use the index each one has.
        let mut sql = String::from("SELECT id, body FROM incidents i WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        let mut when = |condition: &str, value: Option<rusqlite::types::Value>| {
            if let Some(value) = value {
                args.push(value);
                sql += &format!(" AND {}", condition.replace('?', &format!("?{}", args.len())));
            }
        };
        use rusqlite::types::Value::{Integer, Real, Text};
        let seconds =
            |t: Option<jiff::Timestamp>| t.map(|t| Real(t.as_millisecond() as f64 / 1000.0));
        when("state != ?", filter.open_only.then(|| Text("resolved".into())));
        when("service = ?", filter.service.clone().map(Text));
        when(
            "EXISTS (SELECT 1 FROM incident_users u WHERE u.user = ? AND u.incident_id = i.id)",
            filter.user.clone().map(Text),
        );
        when("json_extract(body, '$.drill') = ?", filter.drill.map(|d| Integer(d.into())));
        when("state = ?", filter.state.map(|s| Text(s.as_str().into())));
        when("urgency = ?", filter.urgency.map(|u| Text(u.as_str().into())));
        when("created_at >= ?", seconds(filter.since));
        when("created_at < ?", seconds(filter.until));
        when("id < ?", filter.before.map(Integer));
        let limit = if filter.limit == 0 { 100 } else { filter.limit };
        sql += &format!(" ORDER BY id DESC LIMIT {limit}");
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })?;
        let mut found = Vec::new();
        for row in rows {
            let (id, body) = row?;
            found.extend(decode("incidents", id, &body, skipped));
        }
        Ok(found)
    }

    fn count_by_state(&mut self) -> Result<Vec<(IncidentState, u64)>> {
        let conn = &self.0;
        let mut stmt =
            conn.prepare_cached("SELECT state, COUNT(*) FROM incidents GROUP BY state")?;
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

    fn feed_since(
        &mut self,
        user: &str,
        after: i64,
        limit: usize,
        skipped: &mut Vec<Unreadable>,
    ) -> Result<Vec<FeedEvent>> {
        let conn = &self.0;
        let mut stmt = conn.prepare_cached(
            "SELECT id, user, body FROM feed WHERE user = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
        )?;
        let entries = feed_entries(after, limit, skipped, |from, want| {
            stmt.query_map(params![user, from, want as i64], feed_row)?.collect()
        })?;
        Ok(entries.into_iter().map(|(_, event)| event).collect())
    }

    fn feed_head(&mut self) -> Result<i64> {
        let conn = &self.0;
        Ok(conn.query_row("SELECT COALESCE(MAX(id), 0) FROM feed", [], |row| row.get(0))?)
    }

    fn feed_all_since(
        &mut self,
        after: i64,
        limit: usize,
        skipped: &mut Vec<Unreadable>,
    ) -> Result<Vec<(String, FeedEvent)>> {
        let conn = &self.0;
        let mut stmt = conn
            .prepare_cached("SELECT id, user, body FROM feed WHERE id > ?1 ORDER BY id LIMIT ?2")?;
        feed_entries(after, limit, skipped, |from, want| {
            stmt.query_map(params![from, want as i64], feed_row)?.collect()
        })
    }
}
