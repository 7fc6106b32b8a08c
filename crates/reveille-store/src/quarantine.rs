//! Rows no reader can decode. One such row must never fail a batch, a feed stream or the push
//! cursor: every reader skips it, and the first time it is met it is logged, counted and written
//! on its incident's timeline (by the backend), so someone finds out while every page after it
//! still goes out.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use reveille_protocol::TimelineEntry;
use serde::de::DeserializeOwned;

/// A stored row that could not be decoded.
#[derive(Debug, Clone)]
pub struct Unreadable {
    /// `feed` or `incidents`.
    pub table: &'static str,
    pub id: i64,
    pub error: String,
}

/// The rows skipped so far, so each is reported once per process.
#[derive(Default)]
pub struct Quarantine {
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

/// Decodes one row's JSON body, or sets the row aside as unreadable.
pub fn decode<T: DeserializeOwned>(
    table: &'static str,
    id: i64,
    body: &str,
    skipped: &mut Vec<Unreadable>,
) -> Option<T> {
    serde_json::from_str(body)
        .map_err(|e| skipped.push(Unreadable { table, id, error: format!("corrupt row: {e}") }))
        .ok()
}

/// The timeline line an unreadable row leaves on its incident.
pub fn timeline_line(row: &Unreadable, at: jiff::Timestamp) -> TimelineEntry {
    TimelineEntry {
        at,
        actor: "reveille".into(),
        kind: "unreadable".into(),
        message: format!(
            "stored {} row {} cannot be read ({}); devices and workers skip it",
            row.table, row.id, row.error
        ),
        data: serde_json::Value::Null,
    }
}
