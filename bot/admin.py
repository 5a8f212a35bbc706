"""What admins ask about their guild: the audit trail, statistics, CSV exports, the log channel.

Plain async Python over the store, like the redemption service: no Discord here. Every method
takes the guild id and every query is filtered by it, so one guild's admins never see another's.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import logging
import tempfile
from collections.abc import AsyncIterator, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO

from bot.service import REFUSALS, Outcome
from bot.store import AuditEntry, AuditFilter, GameRole, Store, utcnow

log = logging.getLogger(__name__)

# Refused attempts as admins count them: the member's input was refused, or they were slowed.
REFUSED_OUTCOMES = (*(o.value for o in REFUSALS), Outcome.COOLDOWN.value)
ADMIN_ACTIONS = ("game_add", "game_remove", "game_grant", "game_ungrant", "revoke", "log_channel")


def _attempts(*outcomes: str) -> AuditFilter:
    return AuditFilter(outcomes=outcomes, actions=("redeem",))


# What `/keys audit outcome:` can filter on: every outcome of an attempt, then groups and admin
# actions. The cog offers exactly these keys as its choices.
AUDIT_OUTCOME_FILTERS: dict[str, AuditFilter] = {
    Outcome.REDEEMED.value: _attempts(Outcome.REDEEMED.value),
    Outcome.ALREADY_REDEEMED.value: _attempts(Outcome.ALREADY_REDEEMED.value),
    Outcome.ROLE_FAILED.value: _attempts(Outcome.ROLE_FAILED.value),
    Outcome.KEY_TAKEN.value: _attempts(Outcome.KEY_TAKEN.value),
    Outcome.INVALID_KEY.value: _attempts(Outcome.INVALID_KEY.value),
    Outcome.MALFORMED.value: _attempts(Outcome.MALFORMED.value),
    Outcome.UNAVAILABLE.value: _attempts(Outcome.UNAVAILABLE.value),
    Outcome.MISCONFIGURED.value: _attempts(Outcome.MISCONFIGURED.value),
    Outcome.NO_GAMES.value: _attempts(Outcome.NO_GAMES.value),
    Outcome.COOLDOWN.value: _attempts(Outcome.COOLDOWN.value),
    "refused": _attempts(*REFUSED_OUTCOMES),
    "revoked": AuditFilter(outcomes=("revoked",)),
    "recheck": AuditFilter(actions=("recheck",)),
    "link": AuditFilter(actions=("link", "unlink")),
    "account_taken": AuditFilter(outcomes=("account_taken",)),
    "game_add": AuditFilter(actions=("game_add",)),
    "game_remove": AuditFilter(actions=("game_remove",)),
    "log_channel": AuditFilter(actions=("log_channel",)),
    "admin": AuditFilter(actions=ADMIN_ACTIONS),
}

STATS_WINDOWS = (timedelta(days=1), timedelta(days=7))

# Discord's attachment limit on the default tier; bigger exports are compressed, then split.
EXPORT_MAX_BYTES = 8 * 1024 * 1024
_SPOOL_BYTES = 1024 * 1024  # exports bigger than this go to a temporary file on disk
_CELL_MAX = 500


@dataclass(frozen=True)
class Counts:
    day: int
    week: int
    total: int

    @classmethod
    def of(cls, values: tuple[int, ...] | None) -> Counts:
        return cls(*values) if values else cls(0, 0, 0)


@dataclass(frozen=True)
class GameStats:
    game_id: int
    title: str | None
    role_id: int | None  # None: the game is no longer linked
    buyers: Counts
    redemptions: Counts
    refused: Counts


@dataclass(frozen=True)
class MissingRecord:
    """A member holds a buyer role but has no redemption of a game that gives it."""

    member_id: int
    role_id: int


@dataclass(frozen=True)
class GuildStats:
    games: tuple[GameStats, ...]
    refused_without_game: Counts  # keys not recognised for any game, not a key, cool-downs
    roles_pending: int
    missing_records: tuple[MissingRecord, ...] | None  # None: members could not be listed


@dataclass
class ExportFile:
    filename: str
    data: IO[bytes]
    size: int


@dataclass
class Export:
    """CSV ready to attach, in one or more files of at most `max_bytes`; close it when sent."""

    what: str
    rows: int
    csv_bytes: int
    compressed: bool
    files: list[ExportFile] = field(default_factory=list)

    def close(self) -> None:
        for f in self.files:
            f.data.close()

    def __enter__(self) -> Export:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AdminService:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def games(self, guild_id: int) -> dict[int, GameRole]:
        return {g.game_id: g for g in await self.store.game_roles(guild_id)}

    # -- log channel ------------------------------------------------------------------------

    async def log_channel(self, guild_id: int) -> int | None:
        return await self.store.log_channel(guild_id)

    async def set_log_channel(self, guild_id: int, channel_id: int | None, actor_id: int) -> None:
        await self.store.set_log_channel(guild_id, channel_id)
        await self.store.add_audit(
            guild_id=guild_id,
            member_id=actor_id,
            action="log_channel",
            outcome="ok",
            actor_id=actor_id,
            detail=f"channel {channel_id}" if channel_id else "off",
        )

    # -- audit trail ------------------------------------------------------------------------

    @staticmethod
    def audit_filter(
        member_id: int | None = None, game_id: int | None = None, outcome: str | None = None
    ) -> AuditFilter:
        base = AUDIT_OUTCOME_FILTERS[outcome] if outcome else AuditFilter()
        return AuditFilter(member_id, game_id, base.outcomes, base.actions)

    async def audit_total(self, guild_id: int, wanted: AuditFilter) -> int:
        return await self.store.count_audit_matching(guild_id, wanted)

    async def audit_page(
        self, guild_id: int, wanted: AuditFilter, *, before_id: int | None, size: int
    ) -> list[AuditEntry]:
        return await self.store.audit_page(guild_id, wanted, before_id=before_id, limit=size)

    # -- statistics -------------------------------------------------------------------------

    async def stats(
        self,
        guild_id: int,
        role_holders: Mapping[int, Collection[int]] | None,
        now: datetime | None = None,
    ) -> GuildStats:
        """Per-game counts; `role_holders` (member id -> role ids, from Discord) finds members
        who hold a buyer role without a record, or None when the members could not be listed."""
        now = now or utcnow()
        since = [now - w for w in STATS_WINDOWS]
        games = await self.games(guild_id)
        activity = {a.game_id: a for a in await self.store.game_activity(guild_id, since)}
        refused = await self.store.audit_counts_by_game(guild_id, REFUSED_OUTCOMES, since)
        rows = []
        for game_id in sorted(set(games) | set(activity) | {g for g in refused if g is not None}):
            game = games.get(game_id)
            act = activity.get(game_id)
            rows.append(
                GameStats(
                    game_id=game_id,
                    title=game.game_title if game else None,
                    role_id=game.role_id if game else None,
                    buyers=Counts.of(act.buyers if act else None),
                    redemptions=Counts.of(act.redemptions if act else None),
                    refused=Counts.of(refused.get(game_id)),
                )
            )
        missing = None
        if role_holders is not None:
            missing = await self._missing_records(guild_id, games.values(), role_holders)
        return GuildStats(
            games=tuple(rows),
            refused_without_game=Counts.of(refused.get(None)),
            roles_pending=await self.store.count_pending_roles(guild_id),
            missing_records=missing,
        )

    async def _missing_records(
        self,
        guild_id: int,
        games: Iterable[GameRole],
        role_holders: Mapping[int, Collection[int]],
    ) -> tuple[MissingRecord, ...]:
        games_by_role: dict[int, list[int]] = {}
        for g in games:
            games_by_role.setdefault(g.role_id, []).append(g.game_id)
        missing: list[MissingRecord] = []
        for role_id, game_ids in sorted(games_by_role.items()):
            holders = sorted(m for m, roles in role_holders.items() if role_id in roles)
            if not holders:
                continue
            recorded = await self.store.members_with_redemptions(guild_id, game_ids, holders)
            missing += [MissingRecord(m, role_id) for m in holders if m not in recorded]
        return tuple(missing)

    # -- CSV exports ------------------------------------------------------------------------

    async def export_redemptions(
        self, guild_id: int, *, max_bytes: int = EXPORT_MAX_BYTES, today: datetime | None = None
    ) -> Export:
        """Every redemption of the guild, one row each, fingerprints and never keys."""
        games = await self.games(guild_id)
        header = [
            "redemption_id",
            "redeemed_at",
            "member_id",
            "game_id",
            "game_title",
            "role_id",
            "role_applied",
            "status",
            "itch_user_id",
            "itch_username",
            "key_id",
            "key_fingerprint",
        ]

        titles = {g.game_id: _cell(g.game_title) for g in games.values()}

        async def rows() -> AsyncIterator[list[object]]:
            async for r in self.store.iter_redemptions(guild_id, batch=5000):
                yield [
                    r.id,
                    _iso(r.created_at),
                    r.member_id,
                    r.game_id,
                    titles.get(r.game_id, ""),
                    r.role_id,
                    int(r.role_applied),
                    r.status,
                    _blank(r.itch_user_id),
                    _cell(r.itch_username),
                    _blank(r.key_id),
                    r.fingerprint,
                ]

        name = f"redemptions-{guild_id}-{(today or utcnow()):%Y%m%d}"
        return await _export("redemptions", name, header, rows(), max_bytes)

    async def export_audit(
        self, guild_id: int, *, max_bytes: int = EXPORT_MAX_BYTES, today: datetime | None = None
    ) -> Export:
        """The guild's whole audit trail, oldest first."""
        header = [
            "audit_id",
            "at",
            "action",
            "outcome",
            "member_id",
            "game_id",
            "key_fingerprint",
            "actor_id",
            "detail",
        ]

        async def rows() -> AsyncIterator[list[object]]:
            async for e in self.store.iter_audit(guild_id):
                yield [
                    e.id,
                    _iso(e.created_at),
                    e.action,
                    e.outcome,
                    e.member_id,
                    _blank(e.game_id),
                    e.key_hash[:12] if e.key_hash else "",
                    _blank(e.actor_id),
                    _cell(e.detail),
                ]

        name = f"audit-{guild_id}-{(today or utcnow()):%Y%m%d}"
        return await _export("audit entries", name, header, rows(), max_bytes)


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _blank(value: object | None) -> object:
    return "" if value is None else value


def _cell(text: str | None) -> str:
    """Free text made safe for a spreadsheet: one line, and never read as a formula."""
    if not text:
        return ""
    text = " ".join(text.splitlines())[:_CELL_MAX]
    return "'" + text if text[0] in "=+-@\t" else text


async def _export(
    what: str, name: str, header: list[str], rows: AsyncIterator[list[object]], max_bytes: int
) -> Export:
    """Stream rows into a spooled file a block at a time; compress (and split) only if needed."""
    raw = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115 (Export.close closes it)
    try:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(header)
        count = 0
        async for row in rows:
            writer.writerow(row)
            count += 1
            if buf.tell() >= 64 * 1024:
                raw.write(buf.getvalue().encode())
                buf.seek(0)
                buf.truncate()
        raw.write(buf.getvalue().encode())
        size = raw.tell()
        if size <= max_bytes:
            raw.seek(0)
            return Export(what, count, size, False, [ExportFile(f"{name}.csv", raw, size)])
        # Compressing 10+ MB takes a while: not on the event loop.
        parts = await asyncio.to_thread(_gzip_parts, raw, max_bytes)
    except BaseException:
        raw.close()
        raise
    raw.close()
    if len(parts) == 1:
        names = [f"{name}.csv.gz"]
    else:
        names = [f"{name}-part{i}of{len(parts)}.csv.gz" for i in range(1, len(parts) + 1)]
    files = [ExportFile(n, p, size_) for n, (p, size_) in zip(names, parts, strict=True)]
    log.info(
        "Export %s: %d rows, %d bytes of CSV in %d gzip file(s)", name, count, size, len(files)
    )
    return Export(what, count, size, True, files)


def _gzip_parts(raw: IO[bytes], max_bytes: int) -> list[tuple[IO[bytes], int]]:
    """Gzip the CSV in `raw` into files of at most `max_bytes`, each starting with the header.

    Cells never hold a line break (see _cell), so every line is one record."""
    raw.seek(0)
    header = raw.readline()
    # Flush the compressor every `step` bytes of input, so the output size is known exactly; a
    # part is closed while the next step, even incompressible, still fits.
    step = max(1024, min(64 * 1024, max_bytes // 4))
    headroom = step + 2 * _CELL_MAX * 4 + 1024
    if max_bytes <= headroom + len(header):
        raise ValueError(f"max_bytes={max_bytes} is too small to split an export")
    parts: list[tuple[IO[bytes], int]] = []
    part: IO[bytes] | None = None
    gz: gzip.GzipFile | None = None
    pending = 0
    for line in raw:
        if gz is None:
            part = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115 (as above)
            gz = gzip.GzipFile(fileobj=part, mode="wb", compresslevel=6, mtime=0)
            gz.write(header)
        gz.write(line)
        pending += len(line)
        if pending >= step:
            gz.flush()
            pending = 0
            assert part is not None
            if part.tell() + headroom > max_bytes:
                gz.close()
                parts.append((part, part.tell()))
                gz = None
    if gz is not None and part is not None:
        gz.close()
        parts.append((part, part.tell()))
    for p, _ in parts:
        p.seek(0)
    return parts
