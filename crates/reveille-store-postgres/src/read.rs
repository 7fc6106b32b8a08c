//! Queries, run on pooled read connections.

use postgres::Client;
use reveille_protocol::{FeedEvent, Incident, IncidentDetail, IncidentState, TimelineEntry};
use reveille_store::backend::IncidentReads;
use reveille_store::quarantine::{Unreadable, decode};

use crate::Reader;
use reveille_store::{Error, IncidentFilter, Result};

use crate::unjson;

/// Up to `limit` readable feed entries after `after` (of `user`, or of everyone), in id order;
/// unreadable rows are set aside and do not count, so a short page never stops at one.
pub(crate) fn feed(
    client: &mut Client,
    user: Option<&str>,
    mut after: i64,
    limit: usize,
    skipped: &mut Vec<Unreadable>,
) -> Result<Vec<(String, FeedEvent)>> {
    let mut entries = Vec::new();
    while entries.len() < limit {
        let want = (limit - entries.len()) as i64;
        let rows = client.query(
            "SELECT id, user_name, body FROM feed
             WHERE ($1::TEXT IS NULL OR user_name = $1) AND id > $2 ORDER BY id LIMIT $3",
            &[&user, &after, &want],
        )?;
        let scanned = rows.len() as i64;
        for row in rows {
            let id: i64 = row.get(0);
            after = id;
            if let Some(mut entry) = decode::<FeedEvent>("feed", id, row.get(2), skipped) {
                entry.id = id;
                entries.push((row.get(1), entry));
            }
        }
        if scanned < want {
            break;
        }
    }
    Ok(entries)
}

impl IncidentReads for Reader {
    fn feed_since(
        &mut self,
        user: &str,
        after: i64,
        limit: usize,
        skipped: &mut Vec<Unreadable>,
    ) -> Result<Vec<FeedEvent>> {
        let entries = feed(&mut self.0, Some(user), after, limit, skipped)?;
        Ok(entries.into_iter().map(|(_, entry)| entry).collect())
    }

    fn feed_all_since(
        &mut self,
        after: i64,
        limit: usize,
        skipped: &mut Vec<Unreadable>,
    ) -> Result<Vec<(String, FeedEvent)>> {
        feed(&mut self.0, None, after, limit, skipped)
    }

    fn feed_horizon(&mut self) -> Result<i64> {
        crate::retention::horizon(&mut self.0)
    }

    fn incident(&mut self, id: i64) -> Result<IncidentDetail> {
        let client = &mut self.0;
        let body = client.query_opt("SELECT body FROM incidents WHERE id = $1", &[&id])?;
        let incident: Incident = match body {
            Some(row) => unjson(row.get(0))?,
            None => return Err(Error::NotFound(format!("incident {id}"))),
        };
        let timeline = client
            .query("SELECT body FROM timeline WHERE incident_id = $1 ORDER BY id", &[&id])?
            .iter()
            .map(|row| unjson::<TimelineEntry>(row.get(0)))
            .collect::<Result<Vec<_>>>()?;
        Ok(IncidentDetail { incident, timeline })
    }

    fn incidents(
        &mut self,
        filter: &IncidentFilter,
        skipped: &mut Vec<Unreadable>,
    ) -> Result<Vec<Incident>> {
        let client = &mut self.0;
        use postgres::types::ToSql;
        // Only the filters given are in the query, so the planner can use the index each one has.
        let mut sql = String::from("SELECT id, body FROM incidents i WHERE TRUE");
        let mut args: Vec<Box<dyn ToSql + Sync>> = Vec::new();
        let mut when = |condition: &str, value: Option<Box<dyn ToSql + Sync>>| {
            if let Some(value) = value {
                args.push(value);
                sql += &format!(" AND {}", condition.replace('?', &format!("${}", args.len())));
            }
        };
        let text = |s: &str| -> Box<dyn ToSql + Sync> { Box::new(s.to_owned()) };
        let seconds = |t: Option<jiff::Timestamp>| {
            t.map(|t| -> Box<dyn ToSql + Sync> { Box::new(t.as_millisecond() as f64 / 1000.0) })
        };
        when("state <> ?", filter.open_only.then(|| text("resolved")));
        when("service = ?", filter.service.as_deref().map(text));
        when(
            "EXISTS (SELECT 1 FROM incident_users u WHERE u.user_name = ? AND u.incident_id = i.id)",
            filter.user.as_deref().map(text),
        );
        when("drill = ?", filter.drill.map(|d| -> Box<dyn ToSql + Sync> { Box::new(d) }));
        when("state = ?", filter.state.map(|s| text(s.as_str())));
        when("urgency = ?", filter.urgency.map(|u| text(u.as_str())));
        let created = "extract(epoch FROM (body::jsonb->>'created_at')::timestamptz)::float8";
        when(&format!("{created} >= ?"), seconds(filter.since));
        when(&format!("{created} < ?"), seconds(filter.until));
        when("id < ?", filter.before.map(|id| -> Box<dyn ToSql + Sync> { Box::new(id) }));
        let limit = if filter.limit == 0 { 100 } else { filter.limit };
        sql += &format!(" ORDER BY id DESC LIMIT {limit}");
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref()).collect();
        let rows = client.query(&sql, &params)?;
        Ok(rows
            .iter()
            .filter_map(|row| decode("incidents", row.get(0), row.get::<_, &str>(1), skipped))
            .collect())
    }

    fn count_by_state(&mut self) -> Result<Vec<(IncidentState, u64)>> {
        let client = &mut self.0;
        let counted: Vec<(String, i64)> = client
            .query("SELECT state, COUNT(*) FROM incidents GROUP BY state", &[])?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        Ok(IncidentState::ALL
            .into_iter()
            .map(|state| {
                let n = counted.iter().find(|(s, _)| s == state.as_str()).map_or(0, |(_, n)| *n);
                (state, n as u64)
            })
            .collect())
    }

    fn feed_head(&mut self) -> Result<i64> {
        let client = &mut self.0;
        Ok(client.query_one("SELECT last FROM feed_seq", &[])?.get(0))
    }
}
