-- The web console filters incidents by urgency and creation time: both columns are read from
-- the stored body (never written apart from it) and indexed with the id for newest-first pages.
ALTER TABLE incidents ADD COLUMN urgency TEXT GENERATED ALWAYS AS (body::jsonb ->> 'urgency') STORED;
CREATE INDEX incidents_urgency ON incidents (urgency, id);
