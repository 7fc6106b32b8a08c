//! Schedule overrides, heartbeat monitors and drilled handoffs: small records the worker and the
//! API keep next to the incidents.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, params};

use reveille_store::{Claim, DeviceRecord, Error, HeartbeatRecord, OverrideRecord, Result};

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

pub(crate) fn add_override(conn: &Connection, o: &OverrideRecord) -> Result<OverrideRecord> {
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
    Ok(OverrideRecord { id: conn.last_insert_rowid(), ..o.clone() })
}

pub(crate) fn overrides(conn: &Connection) -> Result<Vec<OverrideRecord>> {
    let mut stmt = conn.prepare_cached("SELECT * FROM overrides ORDER BY id")?;
    Ok(stmt.query_map([], override_row)?.collect::<Result<_, _>>()?)
}

pub(crate) fn remove_override(conn: &Connection, id: i64) -> Result<OverrideRecord> {
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

pub(crate) fn heartbeat_ping(
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

pub(crate) fn heartbeats(conn: &Connection) -> Result<Vec<HeartbeatRecord>> {
    let mut stmt = conn.prepare_cached("SELECT * FROM heartbeats ORDER BY name")?;
    Ok(stmt.query_map([], heartbeat_row)?.collect::<Result<_, _>>()?)
}

pub(crate) fn set_heartbeat_missed(conn: &Connection, name: &str, missed: bool) -> Result<()> {
    conn.prepare_cached("UPDATE heartbeats SET missed = ?2 WHERE name = ?1")?
        .execute(params![name, missed])?;
    Ok(())
}

pub(crate) fn handoff(conn: &Connection, schedule: &str) -> Result<Option<Timestamp>> {
    conn.prepare_cached("SELECT last_at FROM handoffs WHERE schedule = ?1")?
        .query_row([schedule], |row| time(row, "last_at"))
        .optional()
        .map_err(Error::from)
}

pub(crate) fn set_handoff(conn: &Connection, schedule: &str, at: Timestamp) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO handoffs (schedule, last_at) VALUES (?1, ?2)
         ON CONFLICT (schedule) DO UPDATE SET last_at = excluded.last_at",
    )?
    .execute(params![schedule, at.to_string()])?;
    Ok(())
}

pub(crate) fn meta_or_insert(conn: &Connection, key: &str, fresh: &str) -> Result<String> {
    conn.prepare_cached("INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)")?
        .execute(params![key, fresh])?;
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |row| row.get(0))?)
}

pub(crate) fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, value])?;
    Ok(())
}

pub(crate) fn phone_topic(
    conn: &Connection,
    user: &str,
    fresh: &str,
    now: Timestamp,
) -> Result<String> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO phone_topics (topic, user, created_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![fresh, user, now.to_string()])?;
    Ok(conn
        .prepare_cached("SELECT topic FROM phone_topics WHERE user = ?1")?
        .query_row([user], |row| row.get(0))?)
}

pub(crate) fn topic_user(conn: &Connection, topic: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT user FROM phone_topics WHERE topic = ?1")?
        .query_row([topic], |row| row.get(0))
        .optional()?)
}

fn device_row(row: &Row<'_>) -> rusqlite::Result<DeviceRecord> {
    Ok(DeviceRecord {
        id: row.get("id")?,
        user: row.get("user")?,
        platform: row.get("platform")?,
        token: row.get("token")?,
        name: row.get("name")?,
        created_at: time(row, "created_at")?,
        push_ok: row.get("push_ok")?,
    })
}

pub(crate) fn add_device(conn: &Connection, d: &DeviceRecord, max: usize) -> Result<DeviceRecord> {
    let owner: Option<String> = conn
        .prepare_cached("SELECT user FROM devices WHERE platform = ?1 AND token = ?2")?
        .query_row(params![d.platform, d.token], |row| row.get(0))
        .optional()?;
    match owner {
        // Whoever learns a phone's token must not take its pages away from its owner.
        Some(owner) if owner != d.user => {
            return Err(Error::Refused(
                "this device is registered to another user, who must remove it first".into(),
            ));
        }
        Some(_) => {
            conn.prepare_cached("UPDATE devices SET name = ?3 WHERE platform = ?1 AND token = ?2")?
                .execute(params![d.platform, d.token, d.name])?;
        }
        None => {
            let count: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM devices WHERE user = ?1")?
                .query_row([&d.user], |row| row.get(0))?;
            if count as usize >= max {
                return Err(Error::Refused(format!(
                    "{} already has {max} devices registered; remove one first",
                    d.user
                )));
            }
            conn.prepare_cached(
                "INSERT INTO devices (user, platform, token, name, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                d.user,
                d.platform,
                d.token,
                d.name,
                d.created_at.to_string()
            ])?;
        }
    }
    Ok(conn
        .prepare_cached("SELECT * FROM devices WHERE platform = ?1 AND token = ?2")?
        .query_row(params![d.platform, d.token], device_row)?)
}

pub(crate) fn devices(conn: &Connection, user: Option<&str>) -> Result<Vec<DeviceRecord>> {
    let mut stmt =
        conn.prepare_cached("SELECT * FROM devices WHERE ?1 IS NULL OR user = ?1 ORDER BY id")?;
    Ok(stmt.query_map([user], device_row)?.collect::<Result<_, _>>()?)
}

pub(crate) fn remove_device(conn: &Connection, id: i64) -> Result<DeviceRecord> {
    let found = conn
        .prepare_cached("SELECT * FROM devices WHERE id = ?1")?
        .query_row([id], device_row)
        .optional()?
        .ok_or_else(|| Error::NotFound(format!("device {id}")))?;
    conn.execute("DELETE FROM devices WHERE id = ?1", [id])?;
    Ok(found)
}

pub(crate) fn use_link(conn: &Connection, signature: &str, now: Timestamp) -> Result<bool> {
    let inserted = conn
        .prepare_cached("INSERT OR IGNORE INTO used_links (signature, used_at) VALUES (?1, ?2)")?
        .execute(params![signature, now.to_string()])?;
    Ok(inserted == 1)
}

pub(crate) fn set_push_ok(conn: &Connection, device: i64, ok: bool) -> Result<()> {
    conn.prepare_cached("UPDATE devices SET push_ok = ?2 WHERE id = ?1")?
        .execute(params![device, ok])?;
    Ok(())
}

/// Takes the claim if nobody has: true when this call is the one that does the work.
pub(crate) fn claim(conn: &Connection, claim: &Claim) -> Result<bool> {
    let changed = match claim {
        Claim::HeartbeatMissed { name, last_ping } => conn
            .prepare_cached(
                "UPDATE heartbeats SET missed = 1 WHERE name = ?1 AND missed = 0 AND last_ping = ?2",
            )?
            .execute(params![name, last_ping.to_string()])?,
        Claim::Handoff { schedule, previous: None, at } => conn
            .prepare_cached("INSERT OR IGNORE INTO handoffs (schedule, last_at) VALUES (?1, ?2)")?
            .execute(params![schedule, at.to_string()])?,
        Claim::Handoff { schedule, previous: Some(previous), at } => conn
            .prepare_cached("UPDATE handoffs SET last_at = ?3 WHERE schedule = ?1 AND last_at = ?2")?
            .execute(params![schedule, previous.to_string(), at.to_string()])?,
    };
    Ok(changed == 1)
}
