//! Schedule overrides, heartbeat monitors, drilled handoffs, meta values, phone topics, push
//! devices and used links: small records the worker and the API keep next to the incidents.

use jiff::Timestamp;
use postgres::Row;
use reveille_store::backend::{IncidentWrites, RecordReads, RecordWrites};
use reveille_store::quarantine::Unreadable;
use reveille_store::{Claim, DeviceRecord, Error, HeartbeatRecord, OverrideRecord, Pruned, Result};

use crate::Reader;
use crate::session::Session;

fn time(row: &Row, column: &str) -> Result<Timestamp> {
    let text: String = row.get(column);
    text.parse().map_err(|e| Error::Unavailable(format!("corrupt {column} {text:?}: {e}")))
}

fn override_row(row: &Row) -> Result<OverrideRecord> {
    Ok(OverrideRecord {
        id: row.get("id"),
        schedule: row.get("schedule"),
        user: row.get("user_name"),
        start: time(row, "start_at")?,
        end: time(row, "end_at")?,
        created_by: row.get("created_by"),
        created_at: time(row, "created_at")?,
    })
}

fn heartbeat_row(row: &Row) -> Result<HeartbeatRecord> {
    Ok(HeartbeatRecord {
        name: row.get("name"),
        last_ping: time(row, "last_ping")?,
        missed: row.get("missed"),
    })
}

fn device_row(row: &Row) -> Result<DeviceRecord> {
    Ok(DeviceRecord {
        id: row.get("id"),
        user: row.get("user_name"),
        platform: row.get("platform"),
        token: row.get("token"),
        name: row.get("name"),
        created_at: time(row, "created_at")?,
        push_ok: row.get("push_ok"),
    })
}

impl RecordWrites for Session {
    fn add_override(&mut self, o: &OverrideRecord) -> Result<OverrideRecord> {
        let s = self;
        let rows = s.query(
            "INSERT INTO overrides (schedule, user_name, start_at, end_at, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[
                &o.schedule,
                &o.user,
                &o.start.to_string(),
                &o.end.to_string(),
                &o.created_by,
                &o.created_at.to_string(),
            ],
        )?;
        Ok(OverrideRecord { id: rows[0].get(0), ..o.clone() })
    }

    fn remove_override(&mut self, id: i64) -> Result<OverrideRecord> {
        let s = self;
        let rows = s.query("DELETE FROM overrides WHERE id = $1 RETURNING *", &[&id])?;
        rows.first()
            .map(override_row)
            .unwrap_or_else(|| Err(Error::NotFound(format!("override {id}"))))
    }

    fn heartbeat_ping(&mut self, name: &str, now: Timestamp) -> Result<Option<HeartbeatRecord>> {
        let s = self;
        let before = s.query("SELECT * FROM heartbeats WHERE name = $1 FOR UPDATE", &[&name])?;
        let before = before.first().map(heartbeat_row).transpose()?;
        s.query(
            "INSERT INTO heartbeats (name, last_ping) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET last_ping = excluded.last_ping",
            &[&name, &now.to_string()],
        )?;
        Ok(before)
    }

    fn set_heartbeat_missed(&mut self, name: &str, missed: bool) -> Result<()> {
        let s = self;
        s.query("UPDATE heartbeats SET missed = $2 WHERE name = $1", &[&name, &missed])?;
        Ok(())
    }

    fn set_handoff(&mut self, schedule: &str, at: Timestamp) -> Result<()> {
        let s = self;
        s.query(
            "INSERT INTO handoffs (schedule, last_at) VALUES ($1, $2)
             ON CONFLICT (schedule) DO UPDATE SET last_at = excluded.last_at",
            &[&schedule, &at.to_string()],
        )?;
        Ok(())
    }

    fn meta_or_insert(&mut self, key: &str, fresh: &str) -> Result<String> {
        let s = self;
        s.query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&key, &fresh],
        )?;
        Ok(s.query("SELECT value FROM meta WHERE key = $1", &[&key])?[0].get(0))
    }

    fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        let s = self;
        s.query(
            "INSERT INTO meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&key, &value],
        )?;
        Ok(())
    }

    fn phone_topic(&mut self, user: &str, fresh: &str, now: Timestamp) -> Result<String> {
        let s = self;
        s.query(
            "INSERT INTO phone_topics (topic, user_name, created_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&fresh, &user, &now.to_string()],
        )?;
        Ok(s.query("SELECT topic FROM phone_topics WHERE user_name = $1", &[&user])?[0].get(0))
    }

    fn add_device(&mut self, d: &DeviceRecord, max: usize) -> Result<DeviceRecord> {
        let s = self;
        let owner = s.query(
            "SELECT user_name FROM devices WHERE platform = $1 AND token = $2 FOR UPDATE",
            &[&d.platform, &d.token],
        )?;
        match owner.first().map(|r| r.get::<_, String>(0)) {
            // Whoever learns a phone's token must not take its pages away from its owner.
            Some(owner) if owner != d.user => {
                return Err(Error::Refused(
                    "this device is registered to another user, who must remove it first".into(),
                ));
            }
            Some(_) => {
                s.query(
                    "UPDATE devices SET name = $3 WHERE platform = $1 AND token = $2",
                    &[&d.platform, &d.token, &d.name],
                )?;
            }
            None => {
                let count: i64 = s
                    .query("SELECT COUNT(*) FROM devices WHERE user_name = $1", &[&d.user])?[0]
                    .get(0);
                if count as usize >= max {
                    return Err(Error::Refused(format!(
                        "{} already has {max} devices registered; remove one first",
                        d.user
                    )));
                }
                s.query(
                    "INSERT INTO devices (user_name, platform, token, name, created_at)
                     VALUES ($1, $2, $3, $4, $5)",
                    &[&d.user, &d.platform, &d.token, &d.name, &d.created_at.to_string()],
                )?;
            }
        }
        let rows = s.query(
            "SELECT * FROM devices WHERE platform = $1 AND token = $2",
            &[&d.platform, &d.token],
        )?;
        device_row(&rows[0])
    }

    fn remove_device(&mut self, id: i64) -> Result<DeviceRecord> {
        let s = self;
        let rows = s.query("DELETE FROM devices WHERE id = $1 RETURNING *", &[&id])?;
        rows.first().map(device_row).unwrap_or_else(|| Err(Error::NotFound(format!("device {id}"))))
    }

    fn set_push_ok(&mut self, device: i64, ok: bool) -> Result<()> {
        let s = self;
        s.query("UPDATE devices SET push_ok = $2 WHERE id = $1", &[&device, &ok])?;
        Ok(())
    }
}

impl RecordReads for Reader {
    fn meta(&mut self, key: &str) -> Result<Option<String>> {
        let row = self.0.query_opt("SELECT value FROM meta WHERE key = $1", &[&key])?;
        Ok(row.map(|r| r.get(0)))
    }

    fn overrides(&mut self) -> Result<Vec<OverrideRecord>> {
        let client = &mut self.0;
        client.query("SELECT * FROM overrides ORDER BY id", &[])?.iter().map(override_row).collect()
    }

    fn heartbeats(&mut self) -> Result<Vec<HeartbeatRecord>> {
        let client = &mut self.0;
        client
            .query("SELECT * FROM heartbeats ORDER BY name", &[])?
            .iter()
            .map(heartbeat_row)
            .collect()
    }

    fn handoff(&mut self, schedule: &str) -> Result<Option<Timestamp>> {
        let client = &mut self.0;
        let row =
            client.query_opt("SELECT last_at FROM handoffs WHERE schedule = $1", &[&schedule])?;
        row.map(|r| time(&r, "last_at")).transpose()
    }

    fn topic_user(&mut self, topic: &str) -> Result<Option<String>> {
        let client = &mut self.0;
        let row =
            client.query_opt("SELECT user_name FROM phone_topics WHERE topic = $1", &[&topic])?;
        Ok(row.map(|r| r.get(0)))
    }

    fn devices(&mut self, user: Option<&str>) -> Result<Vec<DeviceRecord>> {
        let client = &mut self.0;
        client
            .query(
                "SELECT * FROM devices WHERE $1::TEXT IS NULL OR user_name = $1 ORDER BY id",
                &[&user],
            )?
            .iter()
            .map(device_row)
            .collect()
    }
}

impl IncidentWrites for Session {
    fn claim(&mut self, claim: &Claim) -> Result<bool> {
        crate::cluster::claim(self, claim)
    }

    fn prune_step(&mut self, before: Timestamp, feed_kept_after: Option<i64>) -> Result<Pruned> {
        crate::retention::step(self, before, feed_kept_after)
    }

    fn note_unreadable(&mut self, rows: &[Unreadable], now: Timestamp) -> Result<()> {
        crate::quarantine::record(self, rows, now)
    }

    fn use_link(&mut self, signature: &str, now: Timestamp) -> Result<bool> {
        let s = self;
        let inserted = s.query(
            "INSERT INTO used_links (signature, used_ms) VALUES ($1, $2)
             ON CONFLICT DO NOTHING RETURNING signature",
            &[&signature, &now.as_millisecond()],
        )?;
        Ok(!inserted.is_empty())
    }
}
