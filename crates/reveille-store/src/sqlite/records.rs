//! Schedule overrides, heartbeat monitors and drilled handoffs: small records the worker and the
//! API keep next to the incidents.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::{Error, HeartbeatRecord, OverrideRecord, Result};

fn time(row: &Row<'_>, column: &str) -> rusqlite::Result<Timestamp> {
    let text: String = row.get(column)?;
    text.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn override_row(row: &Row<'_>) -> rusqlite::Result<OverrideRecord> {
    Ok(OverrideRecord {
        id: row.get("id")?,
        schedule: row.get("schedule")?,
        user: row.get("user")?,
        start: time(row, "start_at")?,
        end: time(row, "end_at")?,
        created_by: row.get("created_by")?,
        created_at: time(row, "created_at")?,
    })
}

pub(super) fn add_override(conn: &Connection, o: &OverrideRecord) -> Result<OverrideRecord> {
    conn.execute(
        "INSERT INTO overrides (schedule, user, start_at, end_at, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            o.schedule,
            o.user,
            o.start.to_string(),
            o.end.to_string(),
            o.created_by,
            o.created_at.to_string()
        ],
    )?;
    Ok(OverrideRecord {
        id: conn.last_insert_rowid(),
        ..o.clone()
    })
}

pub(super) fn overrides(conn: &Connection) -> Result<Vec<OverrideRecord>> {
    let mut stmt = conn.prepare_cached("SELECT * FROM overrides ORDER BY id")?;
    Ok(stmt
        .query_map([], override_row)?
        .collect::<Result<_, _>>()?)
}

pub(super) fn remove_override(conn: &Connection, id: i64) -> Result<OverrideRecord> {
    let found = conn
        .prepare_cached("SELECT * FROM overrides WHERE id = ?1")?
        .query_row([id], override_row)
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("override {id}")))?;
    conn.execute("DELETE FROM overrides WHERE id = ?1", [id])?;
    Ok(found)
}

fn heartbeat_row(row: &Row<'_>) -> rusqlite::Result<HeartbeatRecord> {
    Ok(HeartbeatRecord {
        name: row.get("name")?,
        last_ping: time(row, "last_ping")?,
        missed: row.get("missed")?,
    })
}

pub(super) fn heartbeat_ping(
    conn: &Connection,
    name: &str,
    now: Timestamp,
) -> Result<Option<HeartbeatRecord>> {
    let before = conn
        .prepare_cached("SELECT * FROM heartbeats WHERE name = ?1")?
        .query_row([name], heartbeat_row)
        .optional()?;
    conn.prepare_cached(
        "INSERT INTO heartbeats (name, last_ping) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET last_ping = excluded.last_ping",
    )?
    .execute(params![name, now.to_string()])?;
    Ok(before)
}

pub(super) fn heartbeats(conn: &Connection) -> Result<Vec<HeartbeatRecord>> {
    let mut stmt = conn.prepare_cached("SELECT * FROM heartbeats ORDER BY name")?;
    Ok(stmt
        .query_map([], heartbeat_row)?
        .collect::<Result<_, _>>()?)
}

pub(super) fn set_heartbeat_missed(conn: &Connection, name: &str, missed: bool) -> Result<()> {
    conn.prepare_cached("UPDATE heartbeats SET missed = ?2 WHERE name = ?1")?
        .execute(params![name, missed])?;
    Ok(())
}

pub(super) fn handoff(conn: &Connection, schedule: &str) -> Result<Option<Timestamp>> {
    conn.prepare_cached("SELECT last_at FROM handoffs WHERE schedule = ?1")?
        .query_row([schedule], |row| time(row, "last_at"))
        .optional()
        .map_err(Error::from)
}

pub(super) fn set_handoff(conn: &Connection, schedule: &str, at: Timestamp) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO handoffs (schedule, last_at) VALUES (?1, ?2)
         ON CONFLICT (schedule) DO UPDATE SET last_at = excluded.last_at",
    )?
    .execute(params![schedule, at.to_string()])?;
    Ok(())
}
