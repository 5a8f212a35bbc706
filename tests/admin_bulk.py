"""Filling a database with many generated rows at once, for the large-guild tests.

One INSERT ... SELECT per table over a plain sqlite3 connection to the store's file (WAL lets it
sit beside the store's own connection): SQLite generates the rows itself, so 100,000 of them
take a fraction of a second."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

# Row i (1-based) of a sequence; `@count` rows.
_SEQUENCE = "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < @count) "
# The store's timestamp format (UTC, microseconds, Z), `@step` seconds apart from `@start`.
_STAMP = (
    "strftime('%Y-%m-%dT%H:%M:%S', @start, '+' || ((i - 1) * @step) || ' seconds') || '.000000Z'"
)
# fake_hash of the row's member id.
_HASH = "printf('%012x', @member + i - 1) || '0000000000000000000000000000000000000000000000000000'"


def fake_hash(n: int) -> str:
    """A SHA-256-shaped hex string unique in its first 12 characters (the fingerprint) and
    increasing with n, so the indexes fill fast; no real key behind it."""
    return f"{n:012x}" + "0" * 52


def add_redemptions(
    db_path: Path,
    guild_id: int,
    count: int,
    *,
    games: dict[int, int],
    first_member: int = 10_000_000,
    start: datetime | None = None,
    step: timedelta = timedelta(seconds=1),
    role_applied: bool = True,
) -> None:
    """`count` redemptions, one member each from `first_member` on, taking turns over `games`
    (game id -> role id), `step` apart in time from `start` (default: so that the last is now).
    The key of member m: hash fake_hash(m), key id m, itch.io user m + 1 ("buyer<m>")."""
    game_ids = list(games)
    game_of = f"(i - 1) % {len(game_ids)}"
    pick = " ".join(f"WHEN {n} THEN {g}" for n, g in enumerate(game_ids))
    role = " ".join(f"WHEN {n} THEN {games[g]}" for n, g in enumerate(game_ids))
    _run(
        db_path,
        _SEQUENCE
        + "INSERT INTO redemptions (guild_id, member_id, game_id, key_id, key_hash, itch_user_id,"
        " itch_username, role_id, role_applied, created_at)"
        f" SELECT @guild, @member + i - 1, CASE {game_of} {pick} END, @member + i - 1, {_HASH},"
        f" @member + i, 'buyer' || (@member + i - 1), CASE {game_of} {role} END, @applied,"
        f" {_STAMP} FROM seq",
        dict(
            count=count,
            guild=guild_id,
            member=first_member,
            applied=int(role_applied),
            **_times(count, start, step),
        ),
    )


def add_audit(
    db_path: Path,
    guild_id: int,
    count: int,
    *,
    outcome: str = "redeemed",
    action: str = "redeem",
    game_id: int | None = None,
    first_member: int = 10_000_000,
    start: datetime | None = None,
    step: timedelta = timedelta(seconds=1),
) -> None:
    """`count` audit entries, one member each from `first_member` on, detail "bulk <n>" for
    the n-th (from 0), key hash fake_hash(member id)."""
    _run(
        db_path,
        _SEQUENCE + "INSERT INTO audit (guild_id, member_id, action, outcome, game_id, key_hash,"
        " actor_id, detail, created_at)"
        f" SELECT @guild, @member + i - 1, @action, @outcome, @game, {_HASH}, NULL,"
        f" 'bulk ' || (i - 1), {_STAMP} FROM seq",
        dict(
            count=count,
            guild=guild_id,
            member=first_member,
            action=action,
            outcome=outcome,
            game=game_id,
            **_times(count, start, step),
        ),
    )


def _times(count: int, start: datetime | None, step: timedelta) -> dict[str, object]:
    start = start or datetime.now(UTC) - step * (count - 1)
    return {
        "start": start.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "step": step.total_seconds(),
    }


def _run(db_path: Path, sql: str, params: dict[str, object]) -> None:
    db = sqlite3.connect(db_path, timeout=10)
    try:
        with db:
            db.execute(sql, params)
    finally:
        db.close()
