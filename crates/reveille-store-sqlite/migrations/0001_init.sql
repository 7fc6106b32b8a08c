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
