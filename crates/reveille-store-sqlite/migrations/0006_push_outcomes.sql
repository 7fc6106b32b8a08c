-- Whether the provider accepted the last push to each device: it decides whether a person whose
-- only device is a phone can hear a page, and it must outlive a restart.
ALTER TABLE devices ADD COLUMN push_ok INTEGER;
