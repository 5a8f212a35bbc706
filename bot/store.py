"""SQLite storage: the only module that speaks SQL."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
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
    # fromisoformat reads what _ts writes (Z included) many times faster than strptime.
    return datetime.fromisoformat(raw)


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
    status: str = "active"
    checked_at: datetime | None = None
    key_sealed: bytes | None = field(default=None, repr=False)

    @property
    def fingerprint(self) -> str:
        return self.key_hash[:12]

    @property
    def by_account(self) -> bool:
        """Found through the member's linked itch.io account rather than a redeemed key."""
        return self.key_hash.startswith(ACCOUNT_KEY_PREFIX)

    @property
    def active(self) -> bool:
        return self.status == "active"


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


@dataclass(frozen=True)
class AuditFilter:
    """Which audit entries an admin asked for; empty means "any"."""

    member_id: int | None = None
    game_id: int | None = None
    outcomes: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()


@dataclass(frozen=True)
class GameActivity:
    """Active redemptions of one game: counts within each window asked for, then all time."""

    game_id: int
    redemptions: tuple[int, ...]
    buyers: tuple[int, ...]  # distinct members


# The key_hash of a redemption by linked account: never a hex digest, so never a real key's.
ACCOUNT_KEY_PREFIX = "account:"


def account_key_hash(itch_user_id: int) -> str:
    return f"{ACCOUNT_KEY_PREFIX}{itch_user_id}"


@dataclass(frozen=True)
class ItchLink:
    guild_id: int
    member_id: int
    itch_user_id: int
    itch_username: str | None
    created_at: datetime
    checked_at: datetime


class DuplicateRedemption(Exception):
    """The (guild, game, key) is already bound: raised by add_redemption on a race."""


class AccountTaken(Exception):
    """The itch.io account is already linked to another member of the guild."""


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
    "role_id, role_applied, created_at, status, checked_at, key_sealed"
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
        status=row[11],
        checked_at=_parse_ts(row[12]) if row[12] else None,
        key_sealed=row[13],
    )


_LINK_COLUMNS = "guild_id, member_id, itch_user_id, itch_username, created_at, checked_at"


def _link(row: sqlite3.Row | tuple) -> ItchLink:
    return ItchLink(*row[:4], created_at=_parse_ts(row[4]), checked_at=_parse_ts(row[5]))


def _audit(row: sqlite3.Row | tuple) -> AuditEntry:
    return AuditEntry(*row[:9], created_at=_parse_ts(row[9]))


class Store:
    """One aiosqlite connection (one writer thread), WAL, foreign keys, migrations at open."""

    def __init__(self, db: aiosqlite.Connection, path: Path | None) -> None:
        self._db = db
        self.path = path
        self._checkpointer: aiosqlite.Connection | None = None
        self._checkpoints: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls, path: Path | str, *, migrate: bool = True, checkpoint_every: float = 1.0
    ) -> Store:
        """Open (creating it if needed) and migrate; `migrate=False` leaves the schema as it is
        (the doctor reads the version without changing it).

        Commits go to the write-ahead log only; every `checkpoint_every` seconds a second
        connection, on its own thread, copies the log into the database file. (SQLite's own
        automatic checkpoint runs inside the commit that fills the log: one redemption in a
        hundred would wait for a copy of the others.)"""
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
            if str(path) != ":memory:":
                await db.execute("PRAGMA wal_autocheckpoint=0")
                store._checkpointer = await aiosqlite.connect(path, isolation_level=None)
                store._checkpoints = asyncio.create_task(
                    store._checkpoint_forever(checkpoint_every), name="sqlite checkpoints"
                )
            if migrate:
                await store.migrate()
        except BaseException:
            await store._stop_checkpoints()
            await db.close()
            raise
        return store

    async def _checkpoint_forever(self, every: float) -> None:
        assert self._checkpointer is not None
        while True:
            await asyncio.sleep(every)
            try:
                # PASSIVE: copies what it can without waiting for, or blocking, anyone.
                await self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:
                log.warning("WAL checkpoint failed: %s", exc)

    async def _stop_checkpoints(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpoints
        if self._checkpointer is not None:
            await self._checkpointer.close()

    async def close(self) -> None:
        await self._stop_checkpoints()
        try:
            await self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError as exc:
            # A read cancelled mid-way can hold a statement open; closing finalizes it and
            # SQLite checkpoints the WAL itself when the last connection closes.
            log.info("WAL checkpoint deferred to close: %s", exc)
        finally:
            await self._db.close()

    async def _rows(self, sql: str, args: Sequence[object] = ()) -> list[sqlite3.Row]:
        """Every row of a statement in one trip to the database thread (a cursor costs three)."""
        return list(await self._db.execute_fetchall(sql, args))

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
        rows = await self._rows(
            "SELECT guild_id, game_id, role_id, game_title, game_url, created_at FROM game_roles"
            " WHERE guild_id=? ORDER BY game_id",
            (guild_id,),
        )
        return [GameRole(*r[:5], created_at=_parse_ts(r[5])) for r in rows]

    async def all_game_roles(self) -> list[GameRole]:
        """Every guild's game→role links, by guild then game."""
        async with self._db.execute(
            "SELECT guild_id, game_id, role_id, game_title, game_url, created_at FROM game_roles"
            " ORDER BY guild_id, game_id"
        ) as cur:
            rows = await cur.fetchall()
        return [GameRole(*r[:5], created_at=_parse_ts(r[5])) for r in rows]

    async def game_role(self, guild_id: int, game_id: int) -> GameRole | None:
        return next((g for g in await self.game_roles(guild_id) if g.game_id == game_id), None)

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
        key_sealed: bytes | None = None,
    ) -> Redemption:
        """Bind a key; a revoked binding of the same key (itch.io accepts it again) is reused."""
        now = _ts(utcnow())
        rows = await self._rows(
            "INSERT INTO redemptions (guild_id, member_id, game_id, key_id, key_hash,"
            " itch_user_id, itch_username, role_id, role_applied, created_at, status,"
            " checked_at, key_sealed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, 'active', ?, ?)"
            " ON CONFLICT (guild_id, game_id, key_hash) DO UPDATE SET"
            " member_id=excluded.member_id, key_id=excluded.key_id,"
            " itch_user_id=excluded.itch_user_id, itch_username=excluded.itch_username,"
            " role_id=excluded.role_id, role_applied=0, created_at=excluded.created_at,"
            " status='active', revoked_at=NULL, checked_at=excluded.checked_at,"
            " key_sealed=excluded.key_sealed"
            " WHERE redemptions.status='revoked'"
            " RETURNING " + _REDEMPTION_COLUMNS,
            (
                guild_id,
                member_id,
                game_id,
                key_id,
                key_hash,
                itch_user_id,
                itch_username,
                role_id,
                now,
                now,
                key_sealed,
            ),
        )
        if not rows:  # an active binding already holds this key
            raise DuplicateRedemption
        return _redemption(rows[0])

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
        rows = await self._rows(
            f"SELECT {_REDEMPTION_COLUMNS} FROM redemptions WHERE guild_id=? AND key_hash=?"
            " ORDER BY id",
            (guild_id, key_hash),
        )
        return [_redemption(r) for r in rows]

    async def redemptions_by_member(self, guild_id: int, member_id: int) -> list[Redemption]:
        rows = await self._rows(
            f"SELECT {_REDEMPTION_COLUMNS} FROM redemptions WHERE guild_id=? AND member_id=?"
            " ORDER BY id",
            (guild_id, member_id),
        )
        return [_redemption(r) for r in rows]

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

    # -- keeping roles true ------------------------------------------------------------------

    async def active_redemptions_by_member(self, guild_id: int, member_id: int) -> list[Redemption]:
        return [r for r in await self.redemptions_by_member(guild_id, member_id) if r.active]

    async def redemption(self, redemption_id: int) -> Redemption | None:
        async with self._db.execute(
            f"SELECT {_REDEMPTION_COLUMNS} FROM redemptions WHERE id=?", (redemption_id,)
        ) as cur:
            row = await cur.fetchone()
        return _redemption(row) if row else None

    @staticmethod
    def _to_check(
        guild_id: int | None, member_id: int | None, last_checked_before: datetime | None
    ) -> tuple[list[str], list[object]]:
        where = ["status='active'"]
        args: list[object] = []
        if guild_id is not None:
            where.append("guild_id=?")
            args.append(guild_id)
        if member_id is not None:
            where.append("member_id=?")
            args.append(member_id)
        if last_checked_before is not None:
            where.append("(checked_at IS NULL OR checked_at < ?)")
            args.append(_ts(last_checked_before))
        return where, args

    async def count_to_check(
        self,
        *,
        guild_id: int | None = None,
        member_id: int | None = None,
        last_checked_before: datetime | None = None,
    ) -> int:
        where, args = self._to_check(guild_id, member_id, last_checked_before)
        async with self._db.execute(
            f"SELECT COUNT(*) FROM redemptions WHERE {' AND '.join(where)}", args
        ) as cur:
            row = await cur.fetchone()
        return int(row[0])

    async def redemption_ids_to_check(
        self,
        *,
        guild_id: int | None = None,
        member_id: int | None = None,
        last_checked_before: datetime | None = None,
        after_id: int = 0,
        limit: int = 1000,
    ) -> list[int]:
        """Active redemptions (of a guild or member, last checked before a time), a page of
        ids at a time in id order: a million of them never sit in memory at once."""
        where, args = self._to_check(guild_id, member_id, last_checked_before)
        async with self._db.execute(
            f"SELECT id FROM redemptions WHERE {' AND '.join(where)} AND id>? ORDER BY id LIMIT ?",
            (*args, after_id, limit),
        ) as cur:
            return [r[0] for r in await cur.fetchall()]

    async def mark_checked(
        self, redemption_id: int, itch_user_id: int | None, itch_username: str | None
    ) -> None:
        await self._db.execute(
            "UPDATE redemptions SET checked_at=?, itch_user_id=COALESCE(?, itch_user_id),"
            " itch_username=COALESCE(?, itch_username) WHERE id=? AND status='active'",
            (_ts(utcnow()), itch_user_id, itch_username, redemption_id),
        )

    async def mark_revoked(self, redemption_id: int) -> bool:
        now = _ts(utcnow())
        cur = await self._db.execute(
            "UPDATE redemptions SET status='revoked', revoked_at=?, checked_at=?, role_applied=0"
            " WHERE id=? AND status='active'",
            (now, now, redemption_id),
        )
        return cur.rowcount > 0

    async def pending_roles(self, guild_id: int | None = None) -> list[Redemption]:
        """Active redemptions whose role Discord has not accepted yet."""
        sql = (
            f"SELECT {_REDEMPTION_COLUMNS} FROM redemptions"
            " WHERE status='active' AND role_applied=0"
        )
        args: tuple = ()
        if guild_id is not None:
            sql += " AND guild_id=?"
            args = (guild_id,)
        async with self._db.execute(sql + " ORDER BY id", args) as cur:
            return [_redemption(r) for r in await cur.fetchall()]

    async def iter_active_roles_by_member(
        self, guild_id: int, batch: int = 5000
    ) -> AsyncIterator[tuple[int, dict[int, list[int]]]]:
        """(member, role -> redemption ids) for every active redemption of a guild, member by
        member, read a batch at a time: a million redemptions never sit in memory at once."""
        member: int | None = None
        roles: dict[int, list[int]] = {}
        after = (-1, -1)
        while True:
            async with self._db.execute(
                "SELECT member_id, role_id, id FROM redemptions"
                " WHERE guild_id=? AND status='active' AND (member_id, id) > (?, ?)"
                " ORDER BY member_id, id LIMIT ?",
                (guild_id, *after, batch),
            ) as cur:
                rows = await cur.fetchall()
            for member_id, role_id, rid in rows:
                if member_id != member:
                    if member is not None:
                        yield member, roles
                    member, roles = member_id, {}
                roles.setdefault(role_id, []).append(rid)
            if len(rows) < batch:
                break
            after = (rows[-1][0], rows[-1][2])
        if member is not None:
            yield member, roles

    async def mark_applied_if_pending(self, redemption_ids: Iterable[int]) -> None:
        ids = list(redemption_ids)
        if ids:
            marks = ",".join("?" * len(ids))
            await self._db.execute(
                f"UPDATE redemptions SET role_applied=1 WHERE role_applied=0 AND id IN ({marks})",
                ids,
            )

    async def guilds_with_redemptions(self) -> list[int]:
        async with self._db.execute(
            "SELECT DISTINCT guild_id FROM redemptions WHERE status='active'"
        ) as cur:
            return [r[0] for r in await cur.fetchall()]

    async def active_redemptions_of_game(self, guild_id: int, game_id: int) -> list[Redemption]:
        async with self._db.execute(
            f"SELECT {_REDEMPTION_COLUMNS} FROM redemptions"
            " WHERE guild_id=? AND game_id=? AND status='active' ORDER BY id",
            (guild_id, game_id),
        ) as cur:
            return [_redemption(r) for r in await cur.fetchall()]

    async def set_game_redemptions_role(self, guild_id: int, game_id: int, role_id: int) -> None:
        await self._db.execute(
            "UPDATE redemptions SET role_id=?, role_applied=0"
            " WHERE guild_id=? AND game_id=? AND status='active' AND role_id<>?",
            (role_id, guild_id, game_id, role_id),
        )

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
        (row,) = await self._rows(
            "SELECT COUNT(*) FROM audit WHERE guild_id=? AND member_id=? AND created_at>=?"
            f" AND outcome IN ({marks})",
            (guild_id, member_id, _ts(utcnow() - since), *wanted),
        )
        return int(row[0])

    async def recent_audit_games(
        self, guild_id: int, action: str, outcomes: Iterable[str], limit: int
    ) -> list[tuple[int, datetime]]:
        """(game id, time) of a guild's latest audit entries with that action and one of the
        outcomes, newest first. Walks the (guild_id, id) index: fast however big the guild."""
        wanted = list(outcomes)
        marks = ",".join("?" * len(wanted))
        async with self._db.execute(
            "SELECT game_id, created_at FROM audit WHERE guild_id=? AND action=?"
            f" AND outcome IN ({marks}) AND game_id IS NOT NULL ORDER BY id DESC LIMIT ?",
            (guild_id, action, *wanted, limit),
        ) as cur:
            return [(game_id, _parse_ts(at)) for game_id, at in await cur.fetchall()]

    async def audit_entries(self, guild_id: int, limit: int = 50) -> list[AuditEntry]:
        async with self._db.execute(
            f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE guild_id=? ORDER BY id DESC LIMIT ?",
            (guild_id, limit),
        ) as cur:
            return [_audit(r) for r in await cur.fetchall()]

    # -- admin views: every query is of one guild -------------------------------------------

    async def log_channel(self, guild_id: int) -> int | None:
        async with self._db.execute(
            "SELECT log_channel_id FROM guild_settings WHERE guild_id=?", (guild_id,)
        ) as cur:
            row = await cur.fetchone()
        return row[0] if row else None

    async def set_log_channel(self, guild_id: int, channel_id: int | None) -> None:
        await self._db.execute(
            "INSERT INTO guild_settings (guild_id, log_channel_id) VALUES (?, ?)"
            " ON CONFLICT (guild_id) DO UPDATE SET log_channel_id=excluded.log_channel_id",
            (guild_id, channel_id),
        )

    @staticmethod
    def _audit_where(guild_id: int, wanted: AuditFilter) -> tuple[str, list[object]]:
        where, args = ["guild_id=?"], [guild_id]
        if wanted.member_id is not None:
            where.append("member_id=?")
            args.append(wanted.member_id)
        if wanted.game_id is not None:
            where.append("game_id=?")
            args.append(wanted.game_id)
        for column, values in (("outcome", wanted.outcomes), ("action", wanted.actions)):
            if values:
                where.append(f"{column} IN ({','.join('?' * len(values))})")
                args.extend(values)
        return " AND ".join(where), args

    async def audit_page(
        self, guild_id: int, wanted: AuditFilter, *, before_id: int | None = None, limit: int = 10
    ) -> list[AuditEntry]:
        """Matching entries, newest first, older than `before_id` (keyset paging)."""
        where, args = self._audit_where(guild_id, wanted)
        if before_id is not None:
            where += " AND id<?"
            args.append(before_id)
        async with self._db.execute(
            f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE {where} ORDER BY id DESC LIMIT ?",
            (*args, limit),
        ) as cur:
            return [_audit(r) for r in await cur.fetchall()]

    async def count_audit_matching(self, guild_id: int, wanted: AuditFilter) -> int:
        where, args = self._audit_where(guild_id, wanted)
        async with self._db.execute(f"SELECT COUNT(*) FROM audit WHERE {where}", args) as cur:
            row = await cur.fetchone()
        return int(row[0])

    async def iter_audit(self, guild_id: int, batch: int = 1000) -> AsyncIterator[AuditEntry]:
        """Every audit entry of a guild, in id order, a batch at a time."""
        last = 0
        while True:
            async with self._db.execute(
                f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE guild_id=? AND id>? ORDER BY id LIMIT ?",
                (guild_id, last, batch),
            ) as cur:
                rows = await cur.fetchall()
            if not rows:
                return
            for row in rows:
                yield _audit(row)
            last = rows[-1][0]

    async def game_activity(self, guild_id: int, since: Sequence[datetime]) -> list[GameActivity]:
        """Active redemptions and distinct buyers per game, within each `since`, then in all."""
        windows = "".join(
            ", SUM(created_at>=?), COUNT(DISTINCT CASE WHEN created_at>=? THEN member_id END)"
            for _ in since
        )
        args: list[object] = [_ts(s) for s in since for _ in range(2)]
        async with self._db.execute(
            f"SELECT game_id{windows}, COUNT(*), COUNT(DISTINCT member_id) FROM redemptions"
            " WHERE guild_id=? AND status='active' GROUP BY game_id ORDER BY game_id",
            (*args, guild_id),
        ) as cur:
            rows = await cur.fetchall()
        return [
            GameActivity(
                game_id=row[0],
                redemptions=tuple(int(n or 0) for n in row[1::2]),
                buyers=tuple(int(n or 0) for n in row[2::2]),
            )
            for row in rows
        ]

    async def audit_counts_by_game(
        self, guild_id: int, outcomes: Iterable[str], since: Sequence[datetime]
    ) -> dict[int | None, tuple[int, ...]]:
        """Audit entries with these outcomes per game (None: no game), within each `since`,
        then in all."""
        wanted = list(outcomes)
        windows = "".join(", SUM(created_at>=?)" for _ in since)
        async with self._db.execute(
            f"SELECT game_id{windows}, COUNT(*) FROM audit WHERE guild_id=?"
            f" AND outcome IN ({','.join('?' * len(wanted))}) GROUP BY game_id",
            (*(_ts(s) for s in since), guild_id, *wanted),
        ) as cur:
            return {row[0]: tuple(int(n or 0) for n in row[1:]) for row in await cur.fetchall()}

    async def count_pending_roles(self, guild_id: int) -> int:
        async with self._db.execute(
            "SELECT COUNT(*) FROM redemptions"
            " WHERE guild_id=? AND status='active' AND role_applied=0",
            (guild_id,),
        ) as cur:
            row = await cur.fetchone()
        return int(row[0])

    async def members_with_redemptions(
        self, guild_id: int, game_ids: Iterable[int], member_ids: Iterable[int]
    ) -> set[int]:
        """Which of these members hold an active redemption of any of these games."""
        games = list(game_ids)
        members = list(member_ids)
        found: set[int] = set()
        if not games:
            return found
        game_marks = ",".join("?" * len(games))
        for start in range(0, len(members), 500):
            chunk = members[start : start + 500]
            async with self._db.execute(
                "SELECT DISTINCT member_id FROM redemptions WHERE guild_id=? AND status='active'"
                f" AND game_id IN ({game_marks}) AND member_id IN ({','.join('?' * len(chunk))})",
                (guild_id, *games, *chunk),
            ) as cur:
                found.update(r[0] for r in await cur.fetchall())
        return found

    # -- itch.io account links --------------------------------------------------------------

    async def itch_link(self, guild_id: int, member_id: int) -> ItchLink | None:
        return await self._one_link("guild_id=? AND member_id=?", (guild_id, member_id))

    async def itch_link_of_account(self, guild_id: int, itch_user_id: int) -> ItchLink | None:
        return await self._one_link("guild_id=? AND itch_user_id=?", (guild_id, itch_user_id))

    async def _one_link(self, where: str, args: tuple) -> ItchLink | None:
        rows = await self._rows(f"SELECT {_LINK_COLUMNS} FROM itch_links WHERE {where}", args)
        return _link(rows[0]) if rows else None

    async def set_itch_link(
        self, guild_id: int, member_id: int, itch_user_id: int, itch_username: str | None
    ) -> ItchLink:
        """Link a member's itch.io account (replacing theirs); AccountTaken if someone else's."""
        now = _ts(utcnow())
        try:
            cur = await self._db.execute(
                f"INSERT INTO itch_links ({_LINK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (guild_id, member_id) DO UPDATE SET"
                " created_at=CASE WHEN itch_user_id=excluded.itch_user_id THEN created_at"
                " ELSE excluded.created_at END,"
                " itch_user_id=excluded.itch_user_id, itch_username=excluded.itch_username,"
                " checked_at=excluded.checked_at"
                f" RETURNING {_LINK_COLUMNS}",
                (guild_id, member_id, itch_user_id, itch_username, now, now),
            )
            row = await cur.fetchone()
            await cur.close()
        except sqlite3.IntegrityError as exc:  # UNIQUE (guild_id, itch_user_id)
            raise AccountTaken from exc
        return _link(row)

    async def delete_itch_link(self, guild_id: int, member_id: int) -> ItchLink | None:
        cur = await self._db.execute(
            f"DELETE FROM itch_links WHERE guild_id=? AND member_id=? RETURNING {_LINK_COLUMNS}",
            (guild_id, member_id),
        )
        row = await cur.fetchone()
        await cur.close()
        return _link(row) if row else None

    async def redemptions_of_purchase(
        self, guild_id: int, game_id: int, key_id: int
    ) -> list[Redemption]:
        """Every redemption of one itch.io download key, by key or by account."""
        rows = await self._rows(
            f"SELECT {_REDEMPTION_COLUMNS} FROM redemptions"
            " WHERE guild_id=? AND game_id=? AND key_id=? ORDER BY id",
            (guild_id, game_id, key_id),
        )
        return [_redemption(r) for r in rows]

    async def use_oauth_nonce(self, nonce: str, expires_at: datetime) -> bool:
        """Mark a state's nonce used; False when it already was (a replay)."""
        await self._db.execute("DELETE FROM oauth_nonces WHERE expires_at<?", (_ts(utcnow()),))
        try:
            await self._db.execute(
                "INSERT INTO oauth_nonces (nonce, expires_at) VALUES (?, ?)",
                (nonce, _ts(expires_at)),
            )
        except sqlite3.IntegrityError:
            return False
        return True

    async def release_oauth_nonce(self, nonce: str) -> None:
        """Make a state usable again (its use was cut short before anything was recorded)."""
        await self._db.execute("DELETE FROM oauth_nonces WHERE nonce=?", (nonce,))
