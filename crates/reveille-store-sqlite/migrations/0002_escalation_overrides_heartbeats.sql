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
