-- Reveille on PostgreSQL: the same data as the SQLite store, for several nodes at once.
-- Incidents, feed entries and timelines keep their API shape as JSON text in `body`; the
-- columns queries filter on sit next to it. Times that queries compare are epoch milliseconds.

CREATE TABLE events (
    id          BIGSERIAL PRIMARY KEY,
    received_at TEXT NOT NULL,
    received_ms BIGINT NOT NULL,
    service     TEXT NOT NULL,
    source      TEXT NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX events_received ON events (received_ms);

CREATE TABLE incidents (
    id                 BIGSERIAL PRIMARY KEY,
    service            TEXT NOT NULL,
    dedup_key          TEXT NOT NULL,
    state              TEXT NOT NULL,
    drill              BOOLEAN NOT NULL DEFAULT FALSE,
    snoozed_until      BIGINT,
    next_escalation_at BIGINT,
    closed_at          BIGINT,
    body               TEXT NOT NULL
);
-- Two nodes opening the same incident at once: one of them conflicts, and runs again.
CREATE UNIQUE INDEX incidents_open_key ON incidents (service, dedup_key) WHERE state <> 'resolved';
CREATE INDEX incidents_snoozed ON incidents (snoozed_until) WHERE snoozed_until IS NOT NULL;
CREATE INDEX incidents_escalation ON incidents (next_escalation_at)
    WHERE next_escalation_at IS NOT NULL;
CREATE INDEX incidents_closed ON incidents (closed_at) WHERE closed_at IS NOT NULL;
CREATE INDEX incidents_state ON incidents (state);

CREATE TABLE incident_users (
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    user_name   TEXT NOT NULL,
    PRIMARY KEY (user_name, incident_id)
);
CREATE INDEX incident_users_incident ON incident_users (incident_id);

CREATE TABLE timeline (
    id          BIGSERIAL PRIMARY KEY,
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    body        TEXT NOT NULL
);
CREATE INDEX timeline_incident ON timeline (incident_id, id);

-- Feed ids are not a sequence: a sequence hands out ids in the order transactions *ask*, not
-- the order they commit, and a device resuming after id N would miss an N-1 committed later.
-- A transaction takes its ids from `feed_seq` as its very last step, under the row's lock,
-- which it holds until it commits: ids become visible in the order they were given.
CREATE TABLE feed_seq (
    last BIGINT NOT NULL
);
INSERT INTO feed_seq (last) VALUES (0);

CREATE TABLE feed (
    id          BIGINT PRIMARY KEY,
    user_name   TEXT NOT NULL,
    incident_id BIGINT,
    body        TEXT NOT NULL
);
CREATE INDEX feed_user ON feed (user_name, id);
CREATE INDEX feed_incident ON feed (incident_id);

CREATE TABLE tokens (
    hash         TEXT PRIMARY KEY,
    prefix       TEXT NOT NULL UNIQUE,
    user_name    TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked      BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE keys (
    hash       TEXT PRIMARY KEY,
    prefix     TEXT NOT NULL UNIQUE,
    service    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked    BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE overrides (
    id         BIGSERIAL PRIMARY KEY,
    schedule   TEXT NOT NULL,
    user_name  TEXT NOT NULL,
    start_at   TEXT NOT NULL,
    end_at     TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE heartbeats (
    name      TEXT PRIMARY KEY,
    last_ping TEXT NOT NULL,
    missed    BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE handoffs (
    schedule TEXT PRIMARY KEY,
    last_at  TEXT NOT NULL
);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE phone_topics (
    topic      TEXT PRIMARY KEY,
    user_name  TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

CREATE TABLE devices (
    id         BIGSERIAL PRIMARY KEY,
    user_name  TEXT NOT NULL,
    platform   TEXT NOT NULL,
    token      TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (platform, token)
);

CREATE TABLE used_links (
    signature TEXT PRIMARY KEY,
    used_ms   BIGINT NOT NULL
);
CREATE INDEX used_links_used ON used_links (used_ms);
