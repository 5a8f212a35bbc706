"""Re-verification: asking itch.io again about recorded redemptions, carefully.

itch.io has no refund webhook, so a refunded key is only seen by asking again. The one rule that
matters: a role is never removed because of an error. Only a clear refusal of the key ("invalid
download key", "no download key found", or a key of another game) revokes, and only while the
run as a whole looks healthy: when too many checks fail or are refused, the run stops and
removes nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.errors import ItchMisconfigured, ItchRefused, ItchUnavailable
from bot.events import KeyRevokedByRecheck, RecheckHalted, publish_safely
from bot.itch import Priority
from bot.sealing import seal_context
from bot.service import RedemptionService, RoleResult
from bot.store import Redemption, utcnow

log = logging.getLogger(__name__)

REFUSALS = ("invalid download key", "no download key found")
# Decisions are applied in checkpoints: revocations wait until the run has shown it is healthy.
CHECKPOINT = 25
# Fewer problems than this never stop a run: one refund among two keys is no outage.
MIN_PROBLEMS_TO_HALT = 3
MANUAL_CONCURRENCY = 4


class Verdict(enum.Enum):
    VALID = "valid"
    REFUSED = "refused"
    FAILED = "failed"
    MISCONFIGURED = "misconfigured"


@dataclass(frozen=True)
class RecheckReport:
    checked: int = 0
    valid: int = 0
    revoked: int = 0
    failed: int = 0
    total: int = 0
    held: int = 0  # refusals not acted on, because the run halted
    halted: str | None = None  # why the run stopped early, if it did


Progress = Callable[[RecheckReport], Awaitable[None]]


class Rechecker:
    def __init__(
        self,
        service: RedemptionService,
        *,
        interval: timedelta = timedelta(hours=24),
        max_failure_share: float = 0.20,
    ) -> None:
        self.service = service
        self.store = service.store
        self.itch = service.itch
        self.interval = interval
        self.max_failure_share = max_failure_share
        self._lock = asyncio.Lock()  # one run at a time: runs must not double-count

    # -- one redemption ---------------------------------------------------------------------

    async def verdict(self, r: Redemption) -> tuple[Verdict, str, int | None, str | None]:
        """Ask itch.io about one redemption: (verdict, why, owner id, owner name)."""
        key = None
        if r.key_sealed and self.service.sealer:
            key = self.service.sealer.open(
                r.key_sealed, context=seal_context(r.guild_id, r.game_id)
            )
        try:
            if key is not None:
                dkey = await self.itch.download_key(r.game_id, key, priority=Priority.LOW)
            elif r.itch_user_id is not None:
                dkey = await self.itch.download_key_by_user(
                    r.game_id, r.itch_user_id, priority=Priority.LOW
                )
            else:
                return Verdict.FAILED, "the key can't be asked about again", None, None
        except ItchMisconfigured:
            return Verdict.MISCONFIGURED, "itch.io rejected the bot's API key", None, None
        except ItchRefused as exc:
            if any(m in REFUSALS for m in exc.messages):
                return Verdict.REFUSED, "; ".join(exc.messages), None, None
            return Verdict.FAILED, "; ".join(exc.messages), None, None
        except ItchUnavailable:
            return Verdict.FAILED, "itch.io unavailable", None, None
        if dkey.game_id != r.game_id:
            return Verdict.REFUSED, "the key belongs to another game", None, None
        owner = dkey.owner
        return Verdict.VALID, "", owner.id if owner else None, owner.username if owner else None

    # -- a run ------------------------------------------------------------------------------

    async def run(
        self,
        *,
        guild_id: int | None = None,
        member_id: int | None = None,
        last_checked_before: datetime | None = None,
        progress: Progress | None = None,
        pace: float | None = None,
        concurrency: int = MANUAL_CONCURRENCY,
    ) -> RecheckReport:
        """Check the live redemptions that match; `pace` None checks as fast as the itch.io
        budget allows (at low priority), a number of seconds spreads the run out, and 0.0
        spreads it evenly over the re-check interval."""
        async with self._lock:
            where = {
                "guild_id": guild_id,
                "member_id": member_id,
                "last_checked_before": last_checked_before,
            }
            total = await self.store.count_to_check(**where)
            if pace == 0.0:
                pace = self.interval.total_seconds() / (total + 1)
            return await self._run(total, self._pages(where), progress, pace or 0.0, concurrency)

    async def _pages(self, where: dict) -> AsyncIterator[list[int]]:
        after = 0
        while True:
            ids = await self.store.redemption_ids_to_check(
                **where, after_id=after, limit=CHECKPOINT
            )
            if not ids:
                return
            yield ids
            after = ids[-1]

    async def _run(
        self,
        total: int,
        pages: AsyncIterator[list[int]],
        progress: Progress | None,
        pace: float,
        concurrency: int,
    ) -> RecheckReport:
        report = RecheckReport(total=total)
        pending: list[tuple[Redemption, str]] = []
        refused = 0
        guilds: set[int] = set()

        def problems() -> int:
            return refused + report.failed

        def unhealthy() -> bool:
            n = problems()
            return n >= MIN_PROBLEMS_TO_HALT and n > self.max_failure_share * report.checked

        async def checkpoint() -> RecheckReport:
            nonlocal pending
            applied = report
            for r, why in pending:
                if await self._revoke(r, why):
                    applied = replace(applied, revoked=applied.revoked + 1)
            pending = []
            return applied

        async for ids in pages:
            found = [await self.store.redemption(i) for i in ids]
            batch = [r for r in found if r is not None and r.active]
            results = await self._check_batch(batch, pace, concurrency)
            halt: str | None = None
            for r, (verdict, why, owner_id, owner_name) in zip(batch, results, strict=True):
                guilds.add(r.guild_id)
                report = replace(report, checked=report.checked + 1)
                if verdict is Verdict.VALID:
                    await self.store.mark_checked(r.id, owner_id, owner_name)
                    report = replace(report, valid=report.valid + 1)
                elif verdict is Verdict.REFUSED:
                    refused += 1
                    pending.append((r, why))
                else:
                    report = replace(report, failed=report.failed + 1)
                    if verdict is Verdict.MISCONFIGURED:
                        halt = why
            if halt is None and unhealthy():
                halt = (
                    f"{problems()} of {report.checked} checks failed or were refused "
                    f"(more than {self.max_failure_share:.0%})"
                )
            if halt is not None:
                report = replace(report, halted=halt, held=len(pending))
                pending = []
                await self._halted(report, guilds, refused)
                break
            report = await checkpoint()
            if progress is not None:
                await progress(report)
        return report

    async def _check_batch(
        self, batch: list[Redemption], pace: float, concurrency: int
    ) -> list[tuple[Verdict, str, int | None, str | None]]:
        if pace > 0:
            out = []
            for r in batch:
                await asyncio.sleep(pace)
                out.append(await self.verdict(r))
            return out
        gate = asyncio.Semaphore(max(1, concurrency))

        async def one(r: Redemption):
            async with gate:
                return await self.verdict(r)

        return list(await asyncio.gather(*(one(r) for r in batch)))

    async def _revoke(self, r: Redemption, why: str) -> bool:
        if not await self.store.mark_revoked(r.id):
            return False  # revoked or deleted meanwhile
        result = await self.service.remove_role_unless_kept(
            r, "itch.io no longer accepts this download key (refund or revoked key)"
        )
        await self.store.add_audit(
            guild_id=r.guild_id,
            member_id=r.member_id,
            action="recheck",
            outcome="revoked",
            game_id=r.game_id,
            key_hash=r.key_hash,
            detail=why,
        )
        log.info(
            "guild=%s member=%s game=%s key=%s revoked by re-check: %s",
            r.guild_id,
            r.member_id,
            r.game_id,
            r.fingerprint,
            why,
        )
        await publish_safely(
            self.service.events,
            KeyRevokedByRecheck(
                guild_id=r.guild_id,
                member_id=r.member_id,
                game_id=r.game_id,
                role_id=r.role_id,
                fingerprint=r.fingerprint,
                role_removed=result in (RoleResult.OK, RoleResult.MEMBER_GONE),
                reason=why,
            ),
        )
        return True

    async def _halted(self, report: RecheckReport, guilds: set[int], refused: int) -> None:
        log.warning("Re-check run halted, nothing more removed: %s", report.halted)
        for guild_id in sorted(guilds):
            await publish_safely(
                self.service.events,
                RecheckHalted(
                    guild_id=guild_id,
                    member_id=0,
                    checked=report.checked,
                    refused=refused,
                    failed=report.failed,
                    reason=report.halted or "",
                ),
            )

    # -- entry points -----------------------------------------------------------------------

    async def recheck_now(
        self, guild_id: int, member_id: int | None = None, progress: Progress | None = None
    ) -> RecheckReport:
        """An admin's `/keys recheck`: every live redemption of the guild (or member), now."""
        return await self.run(guild_id=guild_id, member_id=member_id, progress=progress)

    async def run_forever(self) -> None:
        """Scheduled re-checks: each cycle checks what is due, spread over the interval."""
        period = self.interval.total_seconds()
        while True:
            report = await self.run(
                last_checked_before=utcnow() - self.interval, pace=0.0, concurrency=1
            )
            if report.total == 0:
                await asyncio.sleep(min(period, 3600) / 4 or 1)
                continue
            log.info(
                "Scheduled re-check: %d checked, %d valid, %d revoked, %d failed%s",
                report.checked,
                report.valid,
                report.revoked,
                report.failed,
                f", halted: {report.halted}" if report.halted else "",
            )
            if report.halted:
                # Let the outage pass before trying again.
                await asyncio.sleep(min(period, 3600))


async def stop(task: asyncio.Task | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
