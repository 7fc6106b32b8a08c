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
