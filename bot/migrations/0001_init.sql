-- Game -> role mappings, one per game per guild.
CREATE TABLE game_roles (
    guild_id    INTEGER NOT NULL,
    game_id     INTEGER NOT NULL,
    role_id     INTEGER NOT NULL,
    game_title  TEXT,
    game_url    TEXT,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (guild_id, game_id)
);

-- One row per download key bound to a member. The raw key is never stored: only its SHA-256.
CREATE TABLE redemptions (
    id            INTEGER PRIMARY KEY,
    guild_id      INTEGER NOT NULL,
    member_id     INTEGER NOT NULL,
    game_id       INTEGER NOT NULL,
    key_id        INTEGER,
    key_hash      TEXT NOT NULL,
    itch_user_id  INTEGER,
    itch_username TEXT,
    role_id       INTEGER NOT NULL,
    role_applied  INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    UNIQUE (guild_id, game_id, key_hash)
);
CREATE INDEX redemptions_by_member ON redemptions (guild_id, member_id);
CREATE INDEX redemptions_by_key ON redemptions (guild_id, key_hash);

-- Every attempt and admin action, append-only.
CREATE TABLE audit (
    id          INTEGER PRIMARY KEY,
    guild_id    INTEGER NOT NULL,
    member_id   INTEGER NOT NULL,
    action      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    game_id     INTEGER,
    key_hash    TEXT,
    actor_id    INTEGER,
    detail      TEXT,
    created_at  TEXT NOT NULL
);
CREATE INDEX audit_by_guild ON audit (guild_id, id);
CREATE INDEX audit_by_member ON audit (guild_id, member_id, created_at);

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
