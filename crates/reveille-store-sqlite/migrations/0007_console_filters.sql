-- The web console filters incidents by urgency and creation time: both columns are read from
-- the stored body (never written apart from it) and indexed with the id for newest-first pages.
ALTER TABLE incidents ADD COLUMN urgency TEXT GENERATED ALWAYS AS (json_extract(body, '$.urgency')) VIRTUAL;
ALTER TABLE incidents ADD COLUMN created_at REAL
    GENERATED ALWAYS AS (unixepoch(json_extract(body, '$.created_at'), 'subsec')) VIRTUAL;
CREATE INDEX incidents_urgency ON incidents(urgency, id);
CREATE INDEX incidents_created ON incidents(created_at);
