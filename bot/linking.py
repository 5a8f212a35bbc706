"""Linking a member's itch.io account: plain async Python that knows nothing of Discord.

A member proves an itch.io account with an OAuth token; the token is used once, for `me`, and
forgotten. The account's id (which a member cannot spoof, unlike a typed-in id or e-mail) is then
looked up in every game of the guild with the bot's own API key. Each game found is recorded as a
redemption "by account" (see `bot.store.account_key_hash`), so lookups, revocations, re-checks
and role restoring treat it like a redeemed key.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import weakref
from dataclasses import dataclass

from bot.errors import ItchMisconfigured, ItchRefused, ItchUnavailable
from bot.events import (
    AccountLinked,
    EventSink,
    ItchAccountTaken,
    KeyShared,
    NullSink,
    Revoked,
    publish_safely,
)
from bot.itch import DownloadKey, ItchClient, ItchUser
from bot.service import RoleGateway, RoleResult
from bot.store import (
    AccountTaken,
    DuplicateRedemption,
    GameRole,
    ItchLink,
    Redemption,
    Store,
    account_key_hash,
)

log = logging.getLogger(__name__)

# itch.io's answer when the account has neither bought nor claimed the game.
NO_KEY = "no download key found"


class LinkOutcome(enum.StrEnum):
    LINKED = "linked"
    TOKEN_REFUSED = "token_refused"  # noqa: S105 (itch.io did not accept the member's token)
    ACCOUNT_TAKEN = "account_taken"  # the account is linked to another member
    UNAVAILABLE = "unavailable"  # nothing recorded
    MISCONFIGURED = "misconfigured"  # itch.io rejected the bot's API key; nothing recorded


class GameStatus(enum.StrEnum):
    FOUND = "found"  # recorded (now or before) and the role is in place
    ROLE_FAILED = "role_failed"  # recorded, but Discord refused the role
    NOT_FOUND = "not_found"
    HELD = "held"  # that purchase is already redeemed by another member
    UNCHECKED = "unchecked"  # itch.io refused to answer for this game (a setup problem)


@dataclass(frozen=True)
class GameCheck:
    game: GameRole
    status: GameStatus
    new: bool = False  # recorded by this check (not already by an earlier /link)


@dataclass(frozen=True)
class LinkResult:
    outcome: LinkOutcome
    account: ItchUser | None = None
    games: tuple[GameCheck, ...] = ()
    # ACCOUNT_TAKEN: which member holds the account (for admins' eyes only).
    holder_id: int | None = None
    # The member's previously linked account, when this link replaced it.
    replaced_itch_user_id: int | None = None

    def with_status(self, *statuses: GameStatus) -> list[GameCheck]:
        return [g for g in self.games if g.status in statuses]


@dataclass(frozen=True)
class UnlinkResult:
    link: ItchLink | None = None
    removed: tuple[Redemption, ...] = ()
    roles_removed: tuple[int, ...] = ()
    roles_failed: tuple[int, ...] = ()


class _Answer(enum.Enum):
    MATCH = 1
    NO = 2
    UNKNOWN = 3
    MISCONFIGURED = 4
    REFUSED = 5


class LinkService:
    def __init__(
        self, store: Store, itch: ItchClient, roles: RoleGateway, events: EventSink | None = None
    ) -> None:
        self.store = store
        self.itch = itch
        self.roles = roles
        self.events: EventSink = events or NullSink()
        # One lock per (guild, itch.io account): two members racing for it are decided in turn.
        self._locks: weakref.WeakValueDictionary[tuple[int, int], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    async def link(self, guild_id: int, member_id: int, token: str) -> LinkResult:
        """Prove the token's itch.io account, then link it. The token is used once and dropped."""
        try:
            # An OAuth grant is an API key of the member's (the reference lists OAuth
            # applications under "API keys"), so it goes to the `key` path, as Bearer.
            account = await self.itch.me(token, kind="key")
        except ItchRefused:
            return await self._audited(guild_id, member_id, LinkResult(LinkOutcome.TOKEN_REFUSED))
        except ItchUnavailable:
            return await self._audited(guild_id, member_id, LinkResult(LinkOutcome.UNAVAILABLE))
        return await self.link_account(guild_id, member_id, account)

    async def link_account(self, guild_id: int, member_id: int, account: ItchUser) -> LinkResult:
        """Link a proven itch.io account and record every game of the guild it owns."""
        lock = self._locks.get((guild_id, account.id))
        if lock is None:
            lock = self._locks[(guild_id, account.id)] = asyncio.Lock()
        async with lock:
            result = await self._link(guild_id, member_id, account)
        return await self._audited(guild_id, member_id, result)

    async def _link(self, guild_id: int, member_id: int, account: ItchUser) -> LinkResult:
        holder = await self.store.itch_link_of_account(guild_id, account.id)
        if holder is not None and holder.member_id != member_id:
            return LinkResult(LinkOutcome.ACCOUNT_TAKEN, account, holder_id=holder.member_id)

        games = await self.store.game_roles(guild_id)
        answers = await self._ask(games, account.id)
        if any(a is _Answer.MISCONFIGURED for a, _ in answers):
            return LinkResult(LinkOutcome.MISCONFIGURED, account)
        if any(a is _Answer.UNKNOWN for a, _ in answers):
            return LinkResult(LinkOutcome.UNAVAILABLE, account)

        previous = await self.store.itch_link(guild_id, member_id)
        try:
            await self.store.set_itch_link(guild_id, member_id, account.id, account.username)
        except AccountTaken:
            # Lost a race with another process: whoever got there first keeps the account.
            holder = await self.store.itch_link_of_account(guild_id, account.id)
            return LinkResult(
                LinkOutcome.ACCOUNT_TAKEN, account, holder_id=holder.member_id if holder else None
            )
        replaced = previous.itch_user_id if previous else None
        dropped: list[Redemption] = []
        if replaced is not None and replaced != account.id:
            dropped = await self._drop_account_redemptions(guild_id, member_id, replaced)

        checks = [
            await self._record(guild_id, member_id, account, game, answer, dkey)
            for game, (answer, dkey) in zip(games, answers, strict=True)
        ]
        if dropped:
            await self._remove_unkept_roles(
                guild_id, member_id, dropped, "Linked another itch.io account"
            )
        log.info(
            "guild=%s member=%s linked itch.io user %s: %s",
            guild_id,
            member_id,
            account.id,
            ", ".join(f"{c.game.game_id}={c.status.value}" for c in checks) or "no games",
        )
        return LinkResult(
            LinkOutcome.LINKED,
            account,
            tuple(checks),
            replaced_itch_user_id=replaced if replaced != account.id else None,
        )

    async def _ask(
        self, games: list[GameRole], itch_user_id: int
    ) -> list[tuple[_Answer, DownloadKey | None]]:
        if len(games) <= 1 or self.itch.idle_capacity() >= len(games):
            # The budget is idle: ask about every game at once, one round trip of latency.
            return list(await asyncio.gather(*(self._check(g, itch_user_id) for g in games)))
        # The budget is busy: one at a time, so members redeeming keys are not starved.
        return [await self._check(g, itch_user_id) for g in games]

    async def _check(self, game: GameRole, itch_user_id: int) -> tuple[_Answer, DownloadKey | None]:
        try:
            dkey = await self.itch.download_key_by_user(game.game_id, itch_user_id)
        except ItchMisconfigured:
            log.error("itch.io rejected the bot's API key (ITCH_API_KEY): check the settings")
            return _Answer.MISCONFIGURED, None
        except ItchRefused as exc:
            if NO_KEY in exc.messages:
                return _Answer.NO, None
            log.warning("itch.io refused game %s: %s", game.game_id, "; ".join(exc.messages))
            return _Answer.REFUSED, None
        except ItchUnavailable:
            return _Answer.UNKNOWN, None
        if dkey.game_id != game.game_id:
            return _Answer.NO, None
        return _Answer.MATCH, dkey

    async def _record(
        self,
        guild_id: int,
        member_id: int,
        account: ItchUser,
        game: GameRole,
        answer: _Answer,
        dkey: DownloadKey | None,
    ) -> GameCheck:
        if answer is _Answer.REFUSED:
            return GameCheck(game, GameStatus.UNCHECKED)
        if answer is not _Answer.MATCH or dkey is None:
            return GameCheck(game, GameStatus.NOT_FOUND)

        # One purchase binds one member, whichever way it came: a key of this account that
        # another member redeemed with /redeem is theirs until an admin decides otherwise.
        holders = [
            r
            for r in await self.store.redemptions_of_purchase(guild_id, game.game_id, dkey.id)
            if r.active and r.member_id != member_id
        ]
        if holders:
            return await self._held(guild_id, member_id, game, holders[0])

        new = True
        try:
            redemption = await self.store.add_redemption(
                guild_id=guild_id,
                member_id=member_id,
                game_id=game.game_id,
                key_id=dkey.id,
                key_hash=account_key_hash(account.id),
                itch_user_id=account.id,
                itch_username=account.username,
                role_id=game.role_id,
            )
        except DuplicateRedemption:
            # Found by an earlier /link: re-apply its role (the mapping may have changed since).
            new = False
            existing = [
                r
                for r in await self.store.redemptions_by_key(guild_id, account_key_hash(account.id))
                if r.game_id == game.game_id and r.active
            ]
            if not existing:
                return GameCheck(game, GameStatus.NOT_FOUND)
            redemption = existing[0]
            if redemption.member_id != member_id:
                return await self._held(guild_id, member_id, game, redemption)
            if redemption.role_id != game.role_id:
                await self.store.set_redemption_role(redemption.id, game.role_id)
                redemption = await self.store.redemption(redemption.id) or redemption

        result = await self.roles.add_role(
            guild_id, member_id, redemption.role_id, "Linked itch.io account owns the game"
        )
        applied = result is RoleResult.OK
        if applied != redemption.role_applied:
            await self.store.set_role_applied([redemption.id], applied)
        if new:
            await self.store.add_audit(
                guild_id=guild_id,
                member_id=member_id,
                action="link",
                outcome="redeemed",
                game_id=game.game_id,
                key_hash=redemption.key_hash,
            )
        return GameCheck(game, GameStatus.FOUND if applied else GameStatus.ROLE_FAILED, new)

    async def _held(
        self, guild_id: int, member_id: int, game: GameRole, holder: Redemption
    ) -> GameCheck:
        await self.store.add_audit(
            guild_id=guild_id,
            member_id=member_id,
            action="link",
            outcome="held",
            game_id=game.game_id,
            key_hash=holder.key_hash,
            detail=f"held by {holder.member_id}",
        )
        await publish_safely(
            self.events,
            KeyShared(guild_id, member_id, holder.member_id, game.game_id, holder.fingerprint),
        )
        return GameCheck(game, GameStatus.HELD)

    async def _audited(self, guild_id: int, member_id: int, result: LinkResult) -> LinkResult:
        account = result.account
        detail = f"itch.io user {account.id}" if account else None
        if result.holder_id is not None:
            detail = f"{detail}, linked to {result.holder_id}"
        await self.store.add_audit(
            guild_id=guild_id,
            member_id=member_id,
            action="link",
            outcome=result.outcome.value,
            detail=detail,
        )
        if result.outcome is LinkOutcome.ACCOUNT_TAKEN and account and result.holder_id:
            await publish_safely(
                self.events,
                ItchAccountTaken(
                    guild_id, member_id, result.holder_id, account.id, account.username
                ),
            )
        elif result.outcome is LinkOutcome.LINKED and account:
            new = tuple(c.game.game_id for c in result.games if c.new)
            await publish_safely(
                self.events,
                AccountLinked(guild_id, member_id, account.id, account.username, new),
            )
        return result

    # -- unlink -----------------------------------------------------------------------------

    async def linked_account(self, guild_id: int, member_id: int) -> ItchLink | None:
        return await self.store.itch_link(guild_id, member_id)

    async def unlink(self, guild_id: int, member_id: int) -> UnlinkResult:
        """Forget the member's account and what it found; roles a key also gives stay."""
        link = await self.store.delete_itch_link(guild_id, member_id)
        doomed = await self._drop_account_redemptions(guild_id, member_id)
        if link is None and not doomed:
            return UnlinkResult()
        removed, failed = await self._remove_unkept_roles(
            guild_id, member_id, doomed, "itch.io account unlinked"
        )
        await self.store.add_audit(
            guild_id=guild_id,
            member_id=member_id,
            action="unlink",
            outcome="unlinked",
            detail=f"itch.io user {link.itch_user_id}" if link else None,
        )
        await publish_safely(
            self.events,
            Revoked(
                guild_id=guild_id,
                member_id=member_id,
                actor_id=member_id,
                game_ids=tuple(sorted({r.game_id for r in doomed})),
                role_ids=tuple(removed),
                reason="the member unlinked their itch.io account",
            ),
        )
        log.info(
            "guild=%s member=%s unlinked, %d redemption(s) by account removed",
            guild_id,
            member_id,
            len(doomed),
        )
        return UnlinkResult(link, tuple(doomed), tuple(removed), tuple(failed))

    async def _drop_account_redemptions(
        self, guild_id: int, member_id: int, itch_user_id: int | None = None
    ) -> list[Redemption]:
        """Delete the member's redemptions by account (of one account, or all)."""
        doomed = [
            r
            for r in await self.store.redemptions_by_member(guild_id, member_id)
            if r.by_account and (itch_user_id is None or r.itch_user_id == itch_user_id)
        ]
        await self.store.delete_redemptions(r.id for r in doomed)
        return doomed

    async def _remove_unkept_roles(
        self, guild_id: int, member_id: int, dropped: list[Redemption], reason: str
    ) -> tuple[list[int], list[int]]:
        """Take away the roles of dropped redemptions that no remaining one gives."""
        remaining = await self.store.redemptions_by_member(guild_id, member_id)
        kept = {r.role_id for r in remaining if r.active}
        removed: list[int] = []
        failed: list[int] = []
        for role_id in sorted({r.role_id for r in dropped if r.active} - kept):
            result = await self.roles.remove_role(guild_id, member_id, role_id, reason)
            if result in (RoleResult.OK, RoleResult.MEMBER_GONE):
                removed.append(role_id)
            else:
                failed.append(role_id)
        return removed, failed
