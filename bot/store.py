"""SQLite storage: the only module that speaks SQL."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import aiosqlite

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_ts(raw: str) -> datetime:
    return datetime.strptime(raw, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclass(frozen=True)
class GameRole:
    guild_id: int
    game_id: int
    role_id: int
    game_title: str | None
    game_url: str | None
    created_at: datetime


@dataclass(frozen=True)
class Redemption:
    id: int
    guild_id: int
    member_id: int
    game_id: int
    key_id: int | None
    key_hash: str
    itch_user_id: int | None
    itch_username: str | None
    role_id: int
    role_applied: bool
    created_at: datetime

    @property
    def fingerprint(self) -> str:
        return self.key_hash[:12]


@dataclass(frozen=True)
class AuditEntry:
    id: int
    guild_id: int
    member_id: int
    action: str
    outcome: str
    game_id: int | None
    key_hash: str | None
    actor_id: int | None
    detail: str | None
    created_at: datetime


class DuplicateRedemption(Exception):
    """The (guild, game, key) is already bound: raised by add_redemption on a race."""


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files("bot") / "migrations"
    found = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(found)


LATEST_SCHEMA_VERSION = max(v for v, _ in _migrations())

_REDEMPTION_COLUMNS = (
    "id, guild_id, member_id, game_id, key_id, key_hash, itch_user_id, itch_username, "
    "role_id, role_applied, created_at"
)
_AUDIT_COLUMNS = (
    "id, guild_id, member_id, action, outcome, game_id, key_hash, actor_id, detail, created_at"
)


def _redemption(row: sqlite3.Row | tuple) -> Redemption:
    return Redemption(
        id=row[0],
        guild_id=row[1],
        member_id=row[2],
        game_id=row[3],
        key_id=row[4],
        key_hash=row[5],
        itch_user_id=row[6],
        itch_username=row[7],
        role_id=row[8],
        role_applied=bool(row[9]),
        created_at=_parse_ts(row[10]),
    )


def _audit(row: sqlite3.Row | tuple) -> AuditEntry:
    return AuditEntry(*row[:9], created_at=_parse_ts(row[9]))


class Store:
    """One aiosqlite connection (one writer thread), WAL, foreign keys, migrations at open."""

    def __init__(self, db: aiosqlite.Connection, path: Path | None) -> None:
        self._db = db
        self.path = path

    @classmethod
    async def open(cls, path: Path | str) -> Store:
        path = Path(path)
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path, isolation_level=None)
        store = cls(db, path)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a process crash; only power loss can lose commits.
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA foreign_keys=ON")
            await db.execute("PRAGMA busy_timeout=5000")
            await store.migrate()
        except BaseException:
            await db.close()
            raise
        return store

    async def close(self) -> None:
        try:
            await self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            await self._db.close()

    async def schema_version(self) -> int:
        async with self._db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0])

    async def migrate(self) -> None:
        current = await self.schema_version()
        for version, sql in _migrations():
            if version <= current:
                continue
            log.info("Applying database migration %04d", version)
            await self._db.executescript(f"BEGIN;\n{sql}\nPRAGMA user_version={version};\nCOMMIT;")

    # -- game roles -------------------------------------------------------------------------

    async def set_game_role(
        self, guild_id: int, game_id: int, role_id: int, title: str | None, url: str | None
    ) -> None:
        await self._db.execute(
            "INSERT INTO game_roles (guild_id, game_id, role_id, game_title, game_url, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (guild_id, game_id) DO UPDATE SET role_id=excluded.role_id,"
            " game_title=excluded.game_title, game_url=excluded.game_url",
            (guild_id, game_id, role_id, title, url, _ts(utcnow())),
        )

    async def remove_game_role(self, guild_id: int, game_id: int) -> bool:
        cur = await self._db.execute(
            "DELETE FROM game_roles WHERE guild_id=? AND game_id=?", (guild_id, game_id)
        )
        return cur.rowcount > 0

    async def game_roles(self, guild_id: int) -> list[GameRole]:
        async with self._db.execute(
            "SELECT guild_id, game_id, role_id, game_title, game_url, created_at FROM game_roles"
            " WHERE guild_id=? ORDER BY game_id",
            (guild_id,),
        ) as cur:
            rows = await cur.fetchall()
        return [GameRole(*r[:5], created_at=_parse_ts(r[5])) for r in rows]

    async def game_role(self, guild_id: int, game_id: int) -> GameRole | None:
        return next((g for g in await self.game_roles(guild_id) if g.game_id == game_id), None)

    async def redemption_counts(self, guild_id: int) -> dict[int, int]:
        async with self._db.execute(
            "SELECT game_id, COUNT(*) FROM redemptions WHERE guild_id=? GROUP BY game_id",
            (guild_id,),
        ) as cur:
            return {game_id: n for game_id, n in await cur.fetchall()}

    # -- redemptions ------------------------------------------------------------------------

    async def add_redemption(
        self,
        *,
        guild_id: int,
        member_id: int,
        game_id: int,
        key_id: int | None,
        key_hash: str,
        itch_user_id: int | None,
        itch_username: str | None,
        role_id: int,
    ) -> Redemption:
        try:
            cur = await self._db.execute(
                f"INSERT INTO redemptions ({_REDEMPTION_COLUMNS}) VALUES"
                " (NULL, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?) RETURNING " + _REDEMPTION_COLUMNS,
                (
                    guild_id,
                    member_id,
                    game_id,
                    key_id,
                    key_hash,
                    itch_user_id,
                    itch_username,
                    role_id,
                    _ts(utcnow()),
                ),
            )
            row = await cur.fetchone()
            await cur.close()
        except sqlite3.IntegrityError as exc:
            raise DuplicateRedemption from exc
        return _redemption(row)

    async def set_role_applied(self, redemption_ids: Iterable[int], applied: bool) -> None:
        ids = list(redemption_ids)
        if not ids:
            return
        marks = ",".join("?" * len(ids))
        await self._db.execute(
            f"UPDATE redemptions SET role_applied=? WHERE id IN ({marks})", (int(applied), *ids)
        )

    async def set_redemption_role(self, redemption_id: int, role_id: int) -> None:
        await self._db.execute(
            "UPDATE redemptions SET role_id=?, role_applied=0 WHERE id=?", (role_id, redemption_id)
        )

    async def redemptions_by_key(self, guild_id: int, key_hash: str) -> list[Redemption]:
        async with self._db.execute(
            f"SELECT {_REDEMPTION_COLUMNS} FROM redemptions WHERE guild_id=? AND key_hash=?"
            " ORDER BY id",
            (guild_id, key_hash),
        ) as cur:
            return [_redemption(r) for r in await cur.fetchall()]

    async def redemptions_by_member(self, guild_id: int, member_id: int) -> list[Redemption]:
        async with self._db.execute(
            f"SELECT {_REDEMPTION_COLUMNS} FROM redemptions WHERE guild_id=? AND member_id=?"
            " ORDER BY id",
            (guild_id, member_id),
        ) as cur:
            return [_redemption(r) for r in await cur.fetchall()]

    async def recent_redemptions(self, guild_id: int, limit: int) -> list[Redemption]:
        async with self._db.execute(
            f"SELECT {_REDEMPTION_COLUMNS} FROM redemptions WHERE guild_id=?"
            " ORDER BY id DESC LIMIT ?",
            (guild_id, limit),
        ) as cur:
            return [_redemption(r) for r in await cur.fetchall()]

    async def iter_redemptions(
        self, guild_id: int | None = None, batch: int = 1000
    ) -> AsyncIterator[Redemption]:
        """Every redemption (of a guild, or all), in id order, a batch at a time."""
        last = 0
        while True:
            if guild_id is None:
                sql = (
                    f"SELECT {_REDEMPTION_COLUMNS} FROM redemptions WHERE id>? ORDER BY id LIMIT ?"
                )
                args: tuple = (last, batch)
            else:
                sql = (
                    f"SELECT {_REDEMPTION_COLUMNS} FROM redemptions"
                    " WHERE guild_id=? AND id>? ORDER BY id LIMIT ?"
                )
                args = (guild_id, last, batch)
            async with self._db.execute(sql, args) as cur:
                rows = await cur.fetchall()
            if not rows:
                return
            for row in rows:
                yield _redemption(row)
            last = rows[-1][0]

    async def delete_redemptions(self, redemption_ids: Iterable[int]) -> None:
        ids = list(redemption_ids)
        if ids:
            # One statement, so a crash never leaves half of a revocation behind.
            marks = ",".join("?" * len(ids))
            await self._db.execute(f"DELETE FROM redemptions WHERE id IN ({marks})", ids)

    # -- audit ------------------------------------------------------------------------------

    async def add_audit(
        self,
        *,
        guild_id: int,
        member_id: int,
        action: str,
        outcome: str,
        game_id: int | None = None,
        key_hash: str | None = None,
        actor_id: int | None = None,
        detail: str | None = None,
    ) -> None:
        await self._db.execute(
            f"INSERT INTO audit ({_AUDIT_COLUMNS}) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                guild_id,
                member_id,
                action,
                outcome,
                game_id,
                key_hash,
                actor_id,
                detail,
                _ts(utcnow()),
            ),
        )

    async def count_audit(
        self, guild_id: int, member_id: int, outcomes: Iterable[str], since: timedelta
    ) -> int:
        wanted = list(outcomes)
        marks = ",".join("?" * len(wanted))
        async with self._db.execute(
            "SELECT COUNT(*) FROM audit WHERE guild_id=? AND member_id=? AND created_at>=?"
            f" AND outcome IN ({marks})",
            (guild_id, member_id, _ts(utcnow() - since), *wanted),
        ) as cur:
            row = await cur.fetchone()
        return int(row[0])

    async def audit_entries(self, guild_id: int, limit: int = 50) -> list[AuditEntry]:
        async with self._db.execute(
            f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE guild_id=? ORDER BY id DESC LIMIT ?",
            (guild_id, limit),
        ) as cur:
            return [_audit(r) for r in await cur.fetchall()]
