//! Schedule overrides, heartbeat monitors and drilled handoffs: small records the worker and the
//! API keep next to the incidents.

use jiff::Timestamp;
use rusqlite::{OptionalExtension, Row, params};

use reveille_store::backend::{IncidentWrites, RecordReads, RecordWrites};
use reveille_store::quarantine::Unreadable;
use reveille_store::{Claim, DeviceRecord, Error, HeartbeatRecord, OverrideRecord, Pruned, Result};

use crate::Reader;
use crate::session::Session;

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

fn heartbeat_row(row: &Row<'_>) -> rusqlite::Result<HeartbeatRecord> {
    Ok(HeartbeatRecord {
        name: row.get("name")?,
        last_ping: time(row, "last_ping")?,
        missed: row.get("missed")?,
    })
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

impl RecordWrites for Session {
    fn add_override(&mut self, o: &OverrideRecord) -> Result<OverrideRecord> {
        let conn = &self.conn;
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

    fn remove_override(&mut self, id: i64) -> Result<OverrideRecord> {
        let conn = &self.conn;
        let found = conn
            .prepare_cached("SELECT * FROM overrides WHERE id = ?1")?
            .query_row([id], override_row)
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("override {id}")))?;
        conn.execute("DELETE FROM overrides WHERE id = ?1", [id])?;
        Ok(found)
    }

    fn heartbeat_ping(&mut self, name: &str, now: Timestamp) -> Result<Option<HeartbeatRecord>> {
        let conn = &self.conn;
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

    fn set_heartbeat_missed(&mut self, name: &str, missed: bool) -> Result<()> {
        let conn = &self.conn;
        conn.prepare_cached("UPDATE heartbeats SET missed = ?2 WHERE name = ?1")?
            .execute(params![name, missed])?;
        Ok(())
    }

    fn set_handoff(&mut self, schedule: &str, at: Timestamp) -> Result<()> {
        let conn = &self.conn;
        conn.prepare_cached(
            "INSERT INTO handoffs (schedule, last_at) VALUES (?1, ?2)
             ON CONFLICT (schedule) DO UPDATE SET last_at = excluded.last_at",
        )?
        .execute(params![schedule, at.to_string()])?;
        Ok(())
    }

    fn meta_or_insert(&mut self, key: &str, fresh: &str) -> Result<String> {
        let conn = &self.conn;
        conn.prepare_cached("INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)")?
            .execute(params![key, fresh])?;
        Ok(conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
            .query_row([key], |row| row.get(0))?)
    }

    fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        let conn = &self.conn;
        conn.prepare_cached(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )?
        .execute(params![key, value])?;
        Ok(())
    }

    fn phone_topic(&mut self, user: &str, fresh: &str, now: Timestamp) -> Result<String> {
        let conn = &self.conn;
        conn.prepare_cached(
            "INSERT OR IGNORE INTO phone_topics (topic, user, created_at) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![fresh, user, now.to_string()])?;
        Ok(conn
            .prepare_cached("SELECT topic FROM phone_topics WHERE user = ?1")?
            .query_row([user], |row| row.get(0))?)
    }

    fn add_device(&mut self, d: &DeviceRecord, max: usize) -> Result<DeviceRecord> {
        let conn = &self.conn;
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
                conn.prepare_cached(
                    "UPDATE devices SET name = ?3 WHERE platform = ?1 AND token = ?2",
                )?
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

    fn remove_device(&mut self, id: i64) -> Result<DeviceRecord> {
        let conn = &self.conn;
        let found = conn
            .prepare_cached("SELECT * FROM devices WHERE id = ?1")?
            .query_row([id], device_row)
            .optional()?
            .ok_or_else(|| Error::NotFound(format!("device {id}")))?;
        conn.execute("DELETE FROM devices WHERE id = ?1", [id])?;
        Ok(found)
    }

    fn set_push_ok(&mut self, device: i64, ok: bool) -> Result<()> {
        let conn = &self.conn;
        conn.prepare_cached("UPDATE devices SET push_ok = ?2 WHERE id = ?1")?
            .execute(params![device, ok])?;
        Ok(())
    }
}

impl RecordReads for Reader {
    fn meta(&mut self, key: &str) -> Result<Option<String>> {
        let value = self
            .0
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
            .query_row([key], |row| row.get(0))
            .optional()?;
        Ok(value)
    }

    fn overrides(&mut self) -> Result<Vec<OverrideRecord>> {
        let conn = &self.0;
        let mut stmt = conn.prepare_cached("SELECT * FROM overrides ORDER BY id")?;
        Ok(stmt.query_map([], override_row)?.collect::<Result<_, _>>()?)
    }

    fn heartbeats(&mut self) -> Result<Vec<HeartbeatRecord>> {
        let conn = &self.0;
        let mut stmt = conn.prepare_cached("SELECT * FROM heartbeats ORDER BY name")?;
        Ok(stmt.query_map([], heartbeat_row)?.collect::<Result<_, _>>()?)
    }

    fn handoff(&mut self, schedule: &str) -> Result<Option<Timestamp>> {
        let conn = &self.0;
        conn.prepare_cached("SELECT last_at FROM handoffs WHERE schedule = ?1")?
            .query_row([schedule], |row| time(row, "last_at"))
            .optional()
            .map_err(Error::from)
    }

    fn topic_user(&mut self, topic: &str) -> Result<Option<String>> {
        let conn = &self.0;
        Ok(conn
            .prepare_cached("SELECT user FROM phone_topics WHERE topic = ?1")?
            .query_row([topic], |row| row.get(0))
            .optional()?)
    }

    fn devices(&mut self, user: Option<&str>) -> Result<Vec<DeviceRecord>> {
        let conn = &self.0;
        let mut stmt =
            conn.prepare_cached("SELECT * FROM devices WHERE ?1 IS NULL OR user = ?1 ORDER BY id")?;
        Ok(stmt.query_map([user], device_row)?.collect::<Result<_, _>>()?)
    }
}

impl IncidentWrites for Session {
    fn prune_step(&mut self, before: Timestamp, feed_kept_after: Option<i64>) -> Result<Pruned> {
        crate::retention::step(&self.conn, before, feed_kept_after)
    }

    fn note_unreadable(&mut self, rows: &[Unreadable], now: Timestamp) -> Result<()> {
        crate::quarantine::record(&self.conn, rows, now)
    }

    fn use_link(&mut self, signature: &str, now: Timestamp) -> Result<bool> {
        let conn = &self.conn;
        let inserted = conn
            .prepare_cached(
                "INSERT OR IGNORE INTO used_links (signature, used_at) VALUES (?1, ?2)",
            )?
            .execute(params![signature, now.to_string()])?;
        Ok(inserted == 1)
    }

    /// Takes the claim if nobody has: true when this call is the one that does the work.
    fn claim(&mut self, claim: &Claim) -> Result<bool> {
        let conn = &self.conn;
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
}
