-- Per-guild settings that admins change from Discord. NULL log_channel_id: no log channel.
CREATE TABLE guild_settings (
    guild_id        INTEGER PRIMARY KEY,
    log_channel_id  INTEGER
);

-- /keys stats counts refusals per outcome and time window without reading the whole trail.
CREATE INDEX audit_by_outcome ON audit (guild_id, outcome, game_id, created_at);

-- Exports read a guild's redemptions in id order, a batch at a time, without sorting each batch.
CREATE INDEX redemptions_by_guild ON redemptions (guild_id, id);
