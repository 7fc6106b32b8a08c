-- Retention: when a resolved incident closed, and which incident a feed entry is about, so
-- old history can be pruned without reading every body.
ALTER TABLE incidents ADD COLUMN closed_at INTEGER;
UPDATE incidents SET closed_at =
    CAST((julianday(json_extract(body, '$.updated_at')) - 2440587.5) * 86400000 AS INTEGER)
    WHERE state = 'resolved';
CREATE INDEX incidents_closed ON incidents(closed_at) WHERE closed_at IS NOT NULL;
ALTER TABLE feed ADD COLUMN incident_id INTEGER;
UPDATE feed SET incident_id = json_extract(body, '$.incident.id');
CREATE INDEX feed_incident ON feed(incident_id);
