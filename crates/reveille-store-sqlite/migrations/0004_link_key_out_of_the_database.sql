-- The ack-link key moved to a 0600 file beside the database: a copy of the database must
-- not be enough to forge a link.
DELETE FROM meta WHERE key = 'link_secret';
