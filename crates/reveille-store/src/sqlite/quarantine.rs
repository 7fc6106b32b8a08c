//! Rows no reader can decode. One such row must never fail a batch, a feed stream or the push
//! cursor: every reader skips it, and the first time it is met it is logged, counted and written
//! on its incident's timeline, so someone finds out while every page after it still goes out.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use reveille_protocol::TimelineEntry;
use rusqlite::{Connection, OptionalExtension, params};

use super::read::to_json;
use crate::Result;

/// A stored row that could not be decoded.
#[derive(Debug, Clone)]
pub(crate) struct Unreadable {
    /// `feed` or `incidents`.
    pub table: &'static str,
    pub id: i64,
    pub error: String,
}

/// The rows skipped so far, so each is reported once per process.
#[derive(Default)]
pub(crate) struct Quarantine {
    seen: Mutex<HashSet<(&'static str, i64)>>,
    count: AtomicU64,
}

impl Quarantine {
    /// Keeps the rows met for the first time, logging and counting each; drops the rest.
    pub fn first_seen(&self, rows: Vec<Unreadable>) -> Vec<Unreadable> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        rows.into_iter()
            .filter(|row| seen.insert((row.table, row.id)))
            .inspect(|row| {
                self.count.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    table = row.table, id = row.id, error = %row.error,
                    "a stored row cannot be read; every reader skips it"
                );
            })
            .collect()
    }

    /// How many unreadable rows have been met.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// Writes a timeline line on the incident each row belongs to, when that can be found.
pub(super) fn record(conn: &Connection, rows: &[Unreadable], now: jiff::Timestamp) -> Result<()> {
    for row in rows {
        // SQLite's own JSON reader nests far deeper than serde_json's, so it finds the id of
        // an entry serde cannot read.
        let incident: Option<i64> = match row.table {
            "feed" => conn
                .query_row(
                    "SELECT json_extract(body, '$.incident.id') FROM feed WHERE id = ?1",
                    [row.id],
                    |r| r.get(0),
                )
                .optional()?
                .flatten(),
            _ => Some(row.id),
        };
        let Some(incident) = incident else { continue };
        let entry = TimelineEntry {
            at: now,
            actor: "reveille".into(),
            kind: "unreadable".into(),
            message: format!(
                "stored {} row {} cannot be read ({}); devices and workers skip it",
                row.table, row.id, row.error
            ),
            data: serde_json::Value::Null,
        };
        conn.prepare_cached(
            "INSERT INTO timeline (incident_id, body)
             SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM incidents WHERE id = ?1)",
        )?
        .execute(params![incident, to_json(&entry)?])?;
    }
    Ok(())
}
