//! Retention: history older than the configured time is removed in small steps, each its own
//! transaction, so a page never waits long behind it.
//!
//! Removed: incidents resolved before the cutoff, with their timelines, who was paged, and their
//! feed entries; raw events received before it; used acknowledge links used before it;
//! overrides that ended before it; tokens revoked, and web console sessions made, before it. Never
//! removed: anything of an open incident, and feed entries after a resume point still to be
//! read (the push cursor). The newest feed id removed is kept as the feed's horizon, so a device
//! resuming from before it knows it must list what is open instead of trusting its resume point.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};

use reveille_store::{Pruned, Result};

/// Rows of each kind one step removes at most.
const STEP: i64 = 500;

/// The meta key of the newest feed id removed.
pub(crate) const HORIZON: &str = "feed_pruned_through";

/// One bounded step of pruning; call again until it removes nothing.
pub(crate) fn step(
    conn: &Connection,
    before: Timestamp,
    feed_kept_after: Option<i64>,
) -> Result<Pruned> {
    let mut pruned = Pruned::default();
    let kept_after = feed_kept_after.unwrap_or(i64::MAX);
    let closed: Vec<i64> = conn
        .prepare_cached(
            "SELECT id FROM incidents WHERE closed_at < ?1 ORDER BY closed_at LIMIT ?2",
        )?
        .query_map(params![before.as_millisecond(), STEP], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let mut newest_feed = 0;
    for id in closed {
        let removed: Vec<i64> = conn
            .prepare_cached("DELETE FROM feed WHERE incident_id = ?1 AND id <= ?2 RETURNING id")?
            .query_map(params![id, kept_after], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        pruned.feed_entries += removed.len() as u64;
        newest_feed = removed.into_iter().fold(newest_feed, i64::max);
        conn.prepare_cached("DELETE FROM timeline WHERE incident_id = ?1")?.execute([id])?;
        conn.prepare_cached("DELETE FROM incident_users WHERE incident_id = ?1")?.execute([id])?;
        conn.prepare_cached("DELETE FROM incidents WHERE id = ?1")?.execute([id])?;
        pruned.incidents += 1;
    }
    if newest_feed > 0 {
        conn.prepare_cached(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = MAX(CAST(value AS INTEGER), excluded.value)",
        )?
        .execute(params![HORIZON, newest_feed])?;
    }
    pruned.events = prune_events(conn, before)?;
    pruned.links = conn
        .prepare_cached(
            "DELETE FROM used_links WHERE signature IN (
                SELECT signature FROM used_links WHERE julianday(used_at) < julianday(?1) LIMIT ?2)",
        )?
        .execute(params![before.to_string(), STEP])? as u64;
    pruned.overrides = conn
        .prepare_cached(
            "DELETE FROM overrides WHERE id IN (
                SELECT id FROM overrides WHERE julianday(end_at) < julianday(?1) LIMIT ?2)",
        )?
        .execute(params![before.to_string(), STEP])? as u64;
    // Scopes are a comma-separated list: a session holds `web`.
    pruned.tokens = conn
        .prepare_cached(
            "DELETE FROM tokens WHERE hash IN (
                SELECT hash FROM tokens WHERE julianday(created_at) < julianday(?1)
                AND (revoked OR ',' || scopes || ',' LIKE '%,web,%') LIMIT ?2)",
        )?
        .execute(params![before.to_string(), STEP])? as u64;
    Ok(pruned)
}

/// Removes the oldest raw events received before `before`. Events arrive in id order, so the
/// oldest rows are read in that order and the first one young enough ends the step (a scan for
/// old rows anywhere would read the whole table every time).
fn prune_events(conn: &Connection, before: Timestamp) -> Result<u64> {
    let oldest: Vec<(i64, String)> = conn
        .prepare_cached("SELECT id, received_at FROM events ORDER BY id LIMIT ?1")?
        .query_map([STEP], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let last_old = oldest
        .iter()
        .take_while(|(_, at)| at.parse::<Timestamp>().is_ok_and(|at| at < before))
        .last();
    let Some((last, _)) = last_old else { return Ok(0) };
    Ok(conn.prepare_cached("DELETE FROM events WHERE id <= ?1")?.execute([last])? as u64)
}

/// The newest feed id retention removed (0 if none).
pub(crate) fn horizon(conn: &Connection) -> Result<i64> {
    let value: Option<String> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([HORIZON], |row| row.get(0))
        .optional()?;
    Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
}
