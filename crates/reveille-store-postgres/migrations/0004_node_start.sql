-- When each node started: of two nodes that disagree on the link key with no majority either
-- way, the one that joined later is the odd one (its health fails, the cluster's does not).
-- `link_key_id` now holds every key fingerprint the node accepts, comma-separated, the signing
-- key's first (one fingerprint, as older nodes write it, is a list of one).
ALTER TABLE nodes ADD COLUMN started_ms BIGINT NOT NULL DEFAULT 0;
