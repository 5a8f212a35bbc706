-- itch.io accounts that members proved with OAuth: at most one member per account per guild.
CREATE TABLE itch_links (
    guild_id      INTEGER NOT NULL,
    member_id     INTEGER NOT NULL,
    itch_user_id  INTEGER NOT NULL,
    itch_username TEXT,
    created_at    TEXT NOT NULL,
    checked_at    TEXT NOT NULL,
    PRIMARY KEY (guild_id, member_id),
    UNIQUE (guild_id, itch_user_id)
);

-- A game found through a linked account is a row of `redemptions` like a redeemed key, so that
-- lookups, revocations and role restoring see both ways. Its key_hash is 'account:<itch user id>'
-- (never a SHA-256 hex digest, so it cannot collide with a key), its key_id the id of the
-- account's download key: the same purchase, whichever way it came, binds one member.
CREATE INDEX redemptions_by_key_id ON redemptions (guild_id, game_id, key_id);

-- OAuth `state` nonces already used, kept until their state expires: a state works once.
CREATE TABLE oauth_nonces (
    nonce       TEXT PRIMARY KEY,
    expires_at  TEXT NOT NULL
);
