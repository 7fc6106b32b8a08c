//! The SQLite schema and its migrations, tracked with `PRAGMA user_version`.
//!
//! Incidents and feed entries keep their API shape as JSON in `body`, with the columns that
//! queries filter on copied next to it.

use rusqlite::Connection;

use crate::Result;

const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    received_at TEXT NOT NULL,
    service     TEXT NOT NULL,
    source      TEXT NOT NULL,
    body        TEXT NOT NULL
);
CREATE TABLE incidents (
    id            INTEGER PRIMARY KEY,
    service       TEXT NOT NULL,
    dedup_key     TEXT NOT NULL,
    state         TEXT NOT NULL,
    snoozed_until INTEGER,
    body          TEXT NOT NULL
);
CREATE UNIQUE INDEX incidents_open_key ON incidents(service, dedup_key) WHERE state != 'resolved';
CREATE INDEX incidents_snoozed ON incidents(snoozed_until) WHERE snoozed_until IS NOT NULL;
CREATE INDEX incidents_state ON incidents(state);
CREATE TABLE incident_users (
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    user        TEXT NOT NULL,
    PRIMARY KEY (user, incident_id)
) WITHOUT ROWID;
CREATE TABLE timeline (
    id          INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    body        TEXT NOT NULL
);
CREATE INDEX timeline_incident ON timeline(incident_id, id);
CREATE TABLE feed (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    user TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX feed_user ON feed(user, id);
CREATE TABLE tokens (
    hash         TEXT PRIMARY KEY,
    prefix       TEXT NOT NULL UNIQUE,
    user         TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked      INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE keys (
    hash       TEXT PRIMARY KEY,
    prefix     TEXT NOT NULL UNIQUE,
    service    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0
);
"#,
    r#"
ALTER TABLE incidents ADD COLUMN next_escalation_at INTEGER;
CREATE INDEX incidents_escalation ON incidents(next_escalation_at)
    WHERE next_escalation_at IS NOT NULL;
CREATE TABLE overrides (
    id         INTEGER PRIMARY KEY,
    schedule   TEXT NOT NULL,
    user       TEXT NOT NULL,
    start_at   TEXT NOT NULL,
    end_at     TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE heartbeats (
    name      TEXT PRIMARY KEY,
    last_ping TEXT NOT NULL,
    missed    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE handoffs (
    schedule TEXT PRIMARY KEY,
    last_at  TEXT NOT NULL
);
"#,
    r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE phone_topics (
    topic      TEXT PRIMARY KEY,
    user       TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
CREATE TABLE devices (
    id         INTEGER PRIMARY KEY,
    user       TEXT NOT NULL,
    platform   TEXT NOT NULL,
    token      TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (platform, token)
);
CREATE TABLE used_links (
    signature TEXT PRIMARY KEY,
    used_at   TEXT NOT NULL
);
"#,
    // The ack-link key moved to a 0600 file beside the database: a copy of the database must
    // not be enough to forge a link.
    r#"
DELETE FROM meta WHERE key = 'link_secret';
"#,
    // Retention: when a resolved incident closed, and which incident a feed entry is about, so
    // old history can be pruned without reading every body.
    r#"
ALTER TABLE incidents ADD COLUMN closed_at INTEGER;
UPDATE incidents SET closed_at =
    CAST((julianday(json_extract(body, '$.updated_at')) - 2440587.5) * 86400000 AS INTEGER)
    WHERE state = 'resolved';
CREATE INDEX incidents_closed ON incidents(closed_at) WHERE closed_at IS NOT NULL;
ALTER TABLE feed ADD COLUMN incident_id INTEGER;
UPDATE feed SET incident_id = json_extract(body, '$.incident.id');
CREATE INDEX feed_incident ON feed(incident_id);
"#,
];

/// Brings the database up to the newest schema, one transaction per step.
pub(super) fn migrate(conn: &mut Connection) -> Result<()> {
    let version: usize = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}
