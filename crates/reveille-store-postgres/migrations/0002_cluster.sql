-- What was per process with one node becomes shared by every node.

-- The nodes alive now: each writes its row every second.
CREATE TABLE nodes (
    name        TEXT PRIMARY KEY,
    seen_ms     BIGINT NOT NULL,
    -- The first bytes of SHA-256 of the node's acknowledge-link key: every node must sign with
    -- the same one.
    link_key_id TEXT NOT NULL DEFAULT ''
);

-- Each node's open device connections per user, and since when a user has had none there.
CREATE TABLE presence (
    node      TEXT NOT NULL,
    user_name TEXT NOT NULL,
    open      INTEGER NOT NULL,
    since_ms  BIGINT NOT NULL,
    PRIMARY KEY (node, user_name)
);

-- Whether the provider accepted the last push to each device, whichever node sent it.
ALTER TABLE devices ADD COLUMN push_ok BOOLEAN;

-- Work only one node may do at a time (push delivery), held for a short while and renewed.
CREATE TABLE leases (
    name     TEXT PRIMARY KEY,
    holder   TEXT NOT NULL,
    until_ms BIGINT NOT NULL
);

-- One token bucket per integration key, which nodes take tokens from a few at a time.
CREATE TABLE rate_buckets (
    key_hash TEXT PRIMARY KEY,
    tokens   DOUBLE PRECISION NOT NULL,
    at_ms    BIGINT NOT NULL
);
