-- Re-verification: a redemption is 'active' or 'revoked' (itch.io refused its key later).
ALTER TABLE redemptions ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
ALTER TABLE redemptions ADD COLUMN revoked_at TEXT;
ALTER TABLE redemptions ADD COLUMN checked_at TEXT;
-- The key sealed (AES-GCM, key derived from the bot's secret) so itch.io can be asked again;
-- never the key in clear.
ALTER TABLE redemptions ADD COLUMN key_sealed BLOB;
CREATE INDEX redemptions_by_check ON redemptions (status, checked_at);
