"""A store with a history: many redemptions (and their audit rows) loaded in one transaction.

The schema is the store's own (Store.open applies the migrations); only the bulk load itself
goes straight to sqlite3, because one-at-a-time inserts would take minutes for a million rows.
Columns added by later migrations keep their defaults.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.store import Store

FIRST_SEEDED_MEMBER = 7_000_000_000
REDEMPTIONS_PER_MEMBER = 2
SEEDED_KEY_IDS = 900_000_000  # itch.io key ids of seeded redemptions start here (the fake's don't)
_BATCH = 50_000


@dataclass(frozen=True)
class Seeded:
    path: Path
    redemptions: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.redemptions / self.seconds if self.seconds else float("inf")


def seeded_key(size: int, i: int) -> str:
    """The (fake) download key of the i-th seeded redemption: base62, like itch.io's."""
    return f"Seed{size}x{i:09d}KeyAbCdEfGh"


def seeded_member(i: int) -> int:
    return FIRST_SEEDED_MEMBER + i // REDEMPTIONS_PER_MEMBER


def _ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _rows(
    size: int, guild_id: int, games: Sequence[tuple[int, int]], start: int, stop: int
) -> Iterator[tuple[tuple, tuple]]:
    """(redemption row, audit row) pairs; a member's redemptions are of different games.

    They are spread over a year that ended yesterday."""
    first = datetime.now(UTC) - timedelta(days=366)
    step = timedelta(days=365) / max(size, 1)
    for i in range(start, stop):
        game_id, role_id = games[i % len(games)]
        digest = hashlib.sha256(seeded_key(size, i).encode()).hexdigest()
        member = seeded_member(i)
        at = _ts(first + step * i)
        yield (
            (
                guild_id,
                member,
                game_id,
                SEEDED_KEY_IDS + i,
                digest,
                10_000 + i,
                f"buyer{i}",
                role_id,
                1,
                at,
            ),
            (guild_id, member, "redeem", "redeemed", game_id, digest, at),
        )


async def build_store(
    path: Path, size: int, guild_id: int, games: Sequence[tuple[int, int]]
) -> Seeded:
    """`size` redemptions of `games` ((game id, role id) pairs) in one guild, with audit rows."""
    store = await Store.open(path)
    for game_id, role_id in games:
        await store.set_game_role(guild_id, game_id, role_id, f"Game {game_id}", None)
    await store.close()

    started = time.perf_counter()
    db = sqlite3.connect(path, isolation_level=None)
    try:
        # A rollback journal instead of WAL while loading: the journal stays tiny because the
        # pages being written are new. WAL is switched back on below, as the store expects.
        db.execute("PRAGMA journal_mode=DELETE")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-262144")  # 256 MiB: the indexes stay in memory
        db.execute("BEGIN")
        for start in range(0, size, _BATCH):
            pairs = list(_rows(size, guild_id, games, start, min(size, start + _BATCH)))
            db.executemany(
                "INSERT INTO redemptions (guild_id, member_id, game_id, key_id, key_hash,"
                " itch_user_id, itch_username, role_id, role_applied, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [r for r, _ in pairs],
            )
            db.executemany(
                "INSERT INTO audit (guild_id, member_id, action, outcome, game_id, key_hash,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [a for _, a in pairs],
            )
        db.execute("COMMIT")
        db.execute("PRAGMA journal_mode=WAL")
    finally:
        db.close()
    return Seeded(path, size, time.perf_counter() - started)
