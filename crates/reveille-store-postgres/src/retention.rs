//! Retention, as in SQLite (see the SQLite store's `retention` for what is kept): small steps, each
//! its own transaction; rows another node is pruning are skipped, not waited for.

use jiff::Timestamp;
use postgres::Client;
use reveille_store::{Pruned, Result};

use crate::session::Session;

/// Rows of each kind one step removes at most.
const STEP: i64 = 500;

/// The meta key of the newest feed id removed.
const HORIZON: &str = "feed_pruned_through";

/// One bounded step of pruning; call again until it removes nothing.
pub(crate) fn step(
    s: &mut Session,
    before: Timestamp,
    feed_kept_after: Option<i64>,
) -> Result<Pruned> {
    let cutoff = before.as_millisecond();
    let closed: Vec<i64> = s
        .query(
            "SELECT id FROM incidents WHERE closed_at < $1 ORDER BY closed_at LIMIT $2
             FOR UPDATE SKIP LOCKED",
            &[&cutoff, &STEP],
        )?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut pruned = Pruned { incidents: closed.len() as u64, ..Pruned::default() };
    if !closed.is_empty() {
        let kept_after = feed_kept_after.unwrap_or(i64::MAX);
        let removed = s.query(
            "DELETE FROM feed WHERE incident_id = ANY($1) AND id <= $2 RETURNING id",
            &[&closed, &kept_after],
        )?;
        pruned.feed_entries = removed.len() as u64;
        let newest = removed.iter().map(|row| row.get::<_, i64>(0)).max();
        s.query("DELETE FROM timeline WHERE incident_id = ANY($1)", &[&closed])?;
        s.query("DELETE FROM incident_users WHERE incident_id = ANY($1)", &[&closed])?;
        s.query("DELETE FROM incidents WHERE id = ANY($1)", &[&closed])?;
        if let Some(newest) = newest {
            s.query(
                "INSERT INTO meta (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE
                 SET value = GREATEST(meta.value::BIGINT, excluded.value::BIGINT)::TEXT",
                &[&HORIZON, &newest.to_string()],
            )?;
        }
    }
    pruned.events = s
        .query(
            "DELETE FROM events WHERE id IN (
                SELECT id FROM events WHERE received_ms < $1 ORDER BY received_ms LIMIT $2)
             RETURNING id",
            &[&cutoff, &STEP],
        )?
        .len() as u64;
    pruned.links = s
        .query(
            "DELETE FROM used_links WHERE signature IN (
                SELECT signature FROM used_links WHERE used_ms < $1 LIMIT $2)
             RETURNING signature",
            &[&cutoff, &STEP],
        )?
        .len() as u64;
    let at = before.to_string();
    pruned.overrides = s
        .query(
            "DELETE FROM overrides WHERE id IN (
                SELECT id FROM overrides WHERE end_at::timestamptz < $1::TEXT::timestamptz LIMIT $2)
             RETURNING id",
            &[&at, &STEP],
        )?
        .len() as u64;
    // Scopes are a comma-separated list: a session holds `web`.
    pruned.tokens = s
        .query(
            "DELETE FROM tokens WHERE hash IN (
                SELECT hash FROM tokens WHERE created_at::timestamptz < $1::TEXT::timestamptz
                AND (revoked OR ',' || scopes || ',' LIKE '%,web,%') LIMIT $2)
             RETURNING hash",
            &[&at, &STEP],
        )?
        .len() as u64;
    Ok(pruned)
}

/// The newest feed id retention removed (0 if none).
pub(crate) fn horizon(client: &mut Client) -> Result<i64> {
    let row = client.query_opt("SELECT value FROM meta WHERE key = $1", &[&HORIZON])?;
    Ok(row.and_then(|r| r.get::<_, String>(0).parse().ok()).unwrap_or(0))
}
