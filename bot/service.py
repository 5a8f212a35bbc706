"""The redemption rules: plain async Python that knows nothing of Discord.

Discord is reached only through the small RoleGateway protocol, handed in by the Bot, so every
rule here can be tested without a gateway connection.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import weakref
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from bot.errors import ItchMisconfigured, ItchRefused, ItchUnavailable, MalformedKey
from bot.events import (
    CooldownReached,
    Event,
    EventSink,
    KeyShared,
    NullSink,
    Redeemed,
    Revoked,
    RoleFailed,
    publish_safely,
)
from bot.itch import DownloadKey, ItchClient
from bot.keyparse import ParsedKey, key_hash, normalize_game_url, parse_key
from bot.sealing import KeySealer, seal_context
from bot.store import DuplicateRedemption, GameRole, Redemption, Store, utcnow

log = logging.getLogger(__name__)

COOLDOWN_MAX_REFUSALS = 5
COOLDOWN_WINDOW = timedelta(minutes=10)
# With itch.io's budget busy, a bare key is tried on the games keys matched lately first.
RECENT_HALF_LIFE = timedelta(hours=1)
RECENT_SEED = 200  # past matches read from the audit trail the first time a guild needs them


class Outcome(enum.StrEnum):
    REDEEMED = "redeemed"
    ALREADY_REDEEMED = "already_redeemed"
    ROLE_FAILED = "role_failed"  # recorded, but Discord refused the role: applied later
    KEY_TAKEN = "key_taken"
    INVALID_KEY = "invalid_key"
    MALFORMED = "malformed"
    UNAVAILABLE = "unavailable"
    MISCONFIGURED = "misconfigured"
    NO_GAMES = "no_games"
    COOLDOWN = "cooldown"

    @property
    def succeeded(self) -> bool:
        return self in (Outcome.REDEEMED, Outcome.ALREADY_REDEEMED, Outcome.ROLE_FAILED)


# Refusals that count toward the cool-down: the member's own input was wrong.
REFUSALS = (Outcome.MALFORMED, Outcome.INVALID_KEY, Outcome.KEY_TAKEN)


class RoleResult(enum.Enum):
    OK = "ok"
    FORBIDDEN = "forbidden"  # hierarchy or missing Manage Roles
    MEMBER_GONE = "member_gone"
    FAILED = "failed"


class RoleGateway(Protocol):
    async def add_role(
        self, guild_id: int, member_id: int, role_id: int, reason: str
    ) -> RoleResult: ...

    async def remove_role(
        self, guild_id: int, member_id: int, role_id: int, reason: str
    ) -> RoleResult: ...


@dataclass(frozen=True)
class RedeemResult:
    outcome: Outcome
    game: GameRole | None = None
    redemption: Redemption | None = None
    # For KEY_TAKEN: who holds the key (for admins' eyes only, never shown to the member).
    holder_id: int | None = None
    detail: str | None = None


@dataclass(frozen=True)
class RoleCandidate:
    """What the service needs to know of a Discord role to judge it as a buyer role."""

    id: int
    name: str
    is_default: bool
    managed: bool
    position: int
    bot_top_position: int


class GameAddOutcome(enum.StrEnum):
    ADDED = "added"
    UPDATED = "updated"
    ROLE_EVERYONE = "role_everyone"
    ROLE_MANAGED = "role_managed"
    ROLE_TOO_HIGH = "role_too_high"


@dataclass(frozen=True)
class GameAddResult:
    outcome: GameAddOutcome
    game_title: str | None = None
    warning: str | None = None


@dataclass(frozen=True)
class ReconcileReport:
    added: int = 0
    removed: int = 0
    failed: int = 0


@dataclass(frozen=True)
class RevokeResult:
    revoked: list[Redemption] = field(default_factory=list)
    roles_removed: list[int] = field(default_factory=list)
    roles_failed: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class RevokePlan:
    """What a revocation would do now: the redemptions it deletes, the roles it takes away."""

    redemptions: list[Redemption] = field(default_factory=list)
    roles: list[int] = field(default_factory=list)


class _Check(enum.Enum):
    MATCH = 1
    NO = 2
    UNKNOWN = 3
    MISCONFIGURED = 4


class _RecentMatches:
    """Which games the keys of each guild matched lately, a match counting half as much an
    hour later: on launch day the new game comes first after a few redemptions, even when the
    older games have years of them."""

    def __init__(self) -> None:
        # guild -> game -> log2 of the sum of 2^(t / half-life) over the game's matches
        self._scores: dict[int, dict[int, float]] = {}

    def knows(self, guild_id: int) -> bool:
        return guild_id in self._scores

    def seed(self, guild_id: int, matches: list[tuple[int, datetime]]) -> None:
        self._scores.setdefault(guild_id, {})
        for game_id, at in matches:
            self.add(guild_id, game_id, at)

    def add(self, guild_id: int, game_id: int, at: datetime) -> None:
        scores = self._scores.get(guild_id)
        if scores is None:
            return  # not seeded yet: the seed will read this match from the store
        x = at.timestamp() / RECENT_HALF_LIFE.total_seconds()
        old = scores.get(game_id, -math.inf)
        high, low = max(old, x), min(old, x)
        scores[game_id] = high + math.log2(1.0 + 2.0 ** (low - high))

    def ranked(self, guild_id: int, games: list[GameRole]) -> list[GameRole]:
        scores = self._scores.get(guild_id, {})
        return sorted(games, key=lambda g: -scores.get(g.game_id, -math.inf))


class RedemptionService:
    def __init__(
        self,
        store: Store,
        itch: ItchClient,
        roles: RoleGateway,
        events: EventSink | None = None,
        sealer: KeySealer | None = None,
    ) -> None:
        self.store = store
        self.itch = itch
        self.roles = roles
        self.events: EventSink = events or NullSink()
        self.sealer = sealer
        # One lock per (guild, key) so two members racing for a key are decided one at a time.
        self._key_locks: weakref.WeakValueDictionary[tuple[int, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._recent = _RecentMatches()
        self._recent_seeding = asyncio.Lock()

    # -- redeem -----------------------------------------------------------------------------

    async def redeem(
        self, guild_id: int, member_id: int, text: str, *, cooldown_exempt: bool = False
    ) -> RedeemResult:
        if not cooldown_exempt:
            refused = await self.store.count_audit(
                guild_id, member_id, [o.value for o in REFUSALS], COOLDOWN_WINDOW
            )
            if refused >= COOLDOWN_MAX_REFUSALS:
                # Tell the admins once per window, not on every further attempt.
                first = not await self.store.count_audit(
                    guild_id, member_id, [Outcome.COOLDOWN.value], COOLDOWN_WINDOW
                )
                result = await self._audited(guild_id, member_id, RedeemResult(Outcome.COOLDOWN))
                if first:
                    await publish_safely(self.events, CooldownReached(guild_id, member_id))
                return result

        try:
            parsed = parse_key(text)
        except MalformedKey as exc:
            return await self._audited(
                guild_id, member_id, RedeemResult(Outcome.MALFORMED, detail=exc.reason)
            )

        digest = key_hash(parsed.key)
        lock = self._key_locks.get((guild_id, digest))
        if lock is None:
            lock = self._key_locks[(guild_id, digest)] = asyncio.Lock()
        async with lock:
            result = await self._redeem_key(guild_id, member_id, parsed, digest)
        return await self._audited(guild_id, member_id, result, digest)

    async def _redeem_key(
        self, guild_id: int, member_id: int, parsed: ParsedKey, digest: str
    ) -> RedeemResult:
        games = await self.store.game_roles(guild_id)
        if not games:
            return RedeemResult(Outcome.NO_GAMES)

        existing = [r for r in await self.store.redemptions_by_key(guild_id, digest) if r.active]
        if existing:
            return await self._existing(guild_id, member_id, games, existing)

        match, statuses = await self._find_game(guild_id, games, parsed)
        if match is None:
            if _Check.UNKNOWN in statuses:
                return RedeemResult(Outcome.UNAVAILABLE)
            if _Check.MISCONFIGURED in statuses:
                return RedeemResult(Outcome.MISCONFIGURED)
            return RedeemResult(Outcome.INVALID_KEY)

        game, dkey = match
        self._recent.add(guild_id, game.game_id, utcnow())
        holder = await self._purchase_holder(guild_id, member_id, game.game_id, dkey)
        if holder is not None:
            return RedeemResult(Outcome.KEY_TAKEN, game=game, holder_id=holder)
        try:
            redemption = await self.store.add_redemption(
                guild_id=guild_id,
                member_id=member_id,
                game_id=game.game_id,
                key_id=dkey.id,
                key_hash=digest,
                itch_user_id=dkey.owner.id if dkey.owner else None,
                itch_username=dkey.owner.username if dkey.owner else None,
                role_id=game.role_id,
                key_sealed=(
                    self.sealer.seal(parsed.key, context=seal_context(guild_id, game.game_id))
                    if self.sealer
                    else None
                ),
            )
        except DuplicateRedemption:
            # Lost a race with another process or a same-key request: decide on what won.
            existing = [
                r for r in await self.store.redemptions_by_key(guild_id, digest) if r.active
            ]
            return await self._existing(guild_id, member_id, games, existing)

        applied = await self._apply_role(redemption, "Redeemed an itch.io download key")
        outcome = Outcome.REDEEMED if applied else Outcome.ROLE_FAILED
        log.info(
            "guild=%s member=%s game=%s key=%s outcome=%s",
            guild_id,
            member_id,
            game.game_id,
            digest[:12],
            outcome.value,
        )
        return RedeemResult(outcome, game=game, redemption=redemption)

    async def _existing(
        self, guild_id: int, member_id: int, games: list[GameRole], existing: list[Redemption]
    ) -> RedeemResult:
        mine = [r for r in existing if r.member_id == member_id]
        if not mine:
            holder = existing[0]
            game = next((g for g in games if g.game_id == holder.game_id), None)
            return RedeemResult(Outcome.KEY_TAKEN, game=game, holder_id=holder.member_id)
        redemption = mine[0]
        game = next((g for g in games if g.game_id == redemption.game_id), None)
        if game is not None and game.role_id != redemption.role_id:
            redemption = await self._rebind_role(redemption, game.role_id)
        applied = await self._apply_role(redemption, "Re-redeemed an itch.io download key")
        return RedeemResult(
            Outcome.ALREADY_REDEEMED if applied else Outcome.ROLE_FAILED,
            game=game,
            redemption=redemption,
        )

    async def _purchase_holder(
        self, guild_id: int, member_id: int, game_id: int, dkey: DownloadKey
    ) -> int | None:
        """Another member who holds this purchase through their linked itch.io account."""
        for r in await self.store.redemptions_of_purchase(guild_id, game_id, dkey.id):
            if r.active and r.member_id != member_id:
                return r.member_id
        if dkey.owner is not None:
            link = await self.store.itch_link_of_account(guild_id, dkey.owner.id)
            if link is not None and link.member_id != member_id:
                return link.member_id
        return None

    async def _rebind_role(self, redemption: Redemption, role_id: int) -> Redemption:
        # The mapping changed since: the current mapping's role is the one to give.
        await self.store.set_redemption_role(redemption.id, role_id)
        updated = await self.store.redemption(redemption.id)
        assert updated is not None
        return updated

    async def _find_game(
        self, guild_id: int, games: list[GameRole], parsed: ParsedKey
    ) -> tuple[tuple[GameRole, DownloadKey] | None, set[_Check]]:
        if parsed.game_url:
            by_url = [g for g in games if normalize_game_url(g.game_url) == parsed.game_url]
            if by_url:
                games = by_url

        statuses: set[_Check] = set()
        if len(games) == 1 or self.itch.idle_capacity() >= len(games):
            # The budget is idle: ask about every game at once, one round trip of latency.
            results = await asyncio.gather(*(self._check(g, parsed.key) for g in games))
            for game, (status, dkey) in zip(games, results, strict=True):
                statuses.add(status)
                if status is _Check.MATCH and dkey is not None:
                    return (game, dkey), statuses
            return None, statuses

        # The budget is busy: spend it sparingly, the games keys matched lately first, stop at
        # a match. (All-time counts would put a launch last, and counting is slow at scale.)
        for game in await self._recent_first(guild_id, games):
            status, dkey = await self._check(game, parsed.key)
            statuses.add(status)
            if status is _Check.MATCH and dkey is not None:
                return (game, dkey), statuses
        return None, statuses

    async def _recent_first(self, guild_id: int, games: list[GameRole]) -> list[GameRole]:
        if not self._recent.knows(guild_id):
            async with self._recent_seeding:  # a burst reads the audit trail once, not per key
                if not self._recent.knows(guild_id):
                    matched = [Outcome.REDEEMED.value, Outcome.ROLE_FAILED.value]
                    self._recent.seed(
                        guild_id,
                        await self.store.recent_audit_games(
                            guild_id, "redeem", matched, RECENT_SEED
                        ),
                    )
        return self._recent.ranked(guild_id, games)

    async def _check(self, game: GameRole, key: str) -> tuple[_Check, DownloadKey | None]:
        try:
            dkey = await self.itch.download_key(game.game_id, key)
        except ItchMisconfigured:
            log.error("itch.io rejected the bot's API key (ITCH_API_KEY): check the settings")
            return _Check.MISCONFIGURED, None
        except ItchRefused as exc:
            if any(m in ("invalid download key", "no download key found") for m in exc.messages):
                return _Check.NO, None
            log.warning("itch.io refused game %s: %s", game.game_id, "; ".join(exc.messages))
            return _Check.MISCONFIGURED, None
        except ItchUnavailable:
            return _Check.UNKNOWN, None
        if dkey.game_id != game.game_id:
            return _Check.NO, None
        return _Check.MATCH, dkey

    async def _apply_role(self, redemption: Redemption, reason: str) -> bool:
        result = await self.roles.add_role(
            redemption.guild_id, redemption.member_id, redemption.role_id, reason
        )
        applied = result is RoleResult.OK
        if applied != redemption.role_applied:
            await self.store.set_role_applied([redemption.id], applied)
        if not applied:
            log.warning(
                "guild=%s member=%s role=%s could not be added: %s",
                redemption.guild_id,
                redemption.member_id,
                redemption.role_id,
                result.value,
            )
        return applied

    async def _audited(
        self, guild_id: int, member_id: int, result: RedeemResult, digest: str | None = None
    ) -> RedeemResult:
        await self.store.add_audit(
            guild_id=guild_id,
            member_id=member_id,
            action="redeem",
            outcome=result.outcome.value,
            game_id=result.game.game_id if result.game else None,
            key_hash=digest,
            detail=(
                f"held by {result.holder_id}" if result.holder_id is not None else result.detail
            ),
        )
        event = _event_for(guild_id, member_id, result, digest)
        if event is not None:
            await publish_safely(self.events, event)
        return result

    # -- admin ------------------------------------------------------------------------------

    async def add_game(
        self, guild_id: int, game_id: int, role: RoleCandidate, actor_id: int
    ) -> GameAddResult:
        if role.is_default:
            return GameAddResult(GameAddOutcome.ROLE_EVERYONE)
        if role.managed:
            return GameAddResult(GameAddOutcome.ROLE_MANAGED)
        if role.position >= role.bot_top_position:
            return GameAddResult(GameAddOutcome.ROLE_TOO_HIGH)

        title = url = warning = None
        try:
            games = await self.itch.my_games()
        except ItchMisconfigured:
            warning = "itch.io rejected the bot's API key, so the game id could not be checked."
        except (ItchRefused, ItchUnavailable):
            warning = "itch.io could not be asked about this game id right now."
        else:
            found = next((g for g in games if g.id == game_id), None)
            if found is None:
                warning = (
                    f"Game id {game_id} is not among the games of the bot's itch.io API key "
                    "(my-games), so keys for it will be refused. The id is the number in the "
                    "game's edit page URL on itch.io (itch.io/game/edit/ID): link it again with "
                    "the right id."
                )
            else:
                title, url = found.title, found.url

        existed = await self.store.game_role(guild_id, game_id) is not None
        await self.store.set_game_role(guild_id, game_id, role.id, title, url)
        await self.store.add_audit(
            guild_id=guild_id,
            member_id=actor_id,
            action="game_add",
            outcome="ok",
            game_id=game_id,
            actor_id=actor_id,
            detail=f"role {role.id}",
        )
        return GameAddResult(
            GameAddOutcome.UPDATED if existed else GameAddOutcome.ADDED,
            game_title=title,
            warning=warning,
        )

    async def remove_game(self, guild_id: int, game_id: int, actor_id: int) -> bool:
        removed = await self.store.remove_game_role(guild_id, game_id)
        if removed:
            await self.store.add_audit(
                guild_id=guild_id,
                member_id=actor_id,
                action="game_remove",
                outcome="ok",
                game_id=game_id,
                actor_id=actor_id,
            )
        return removed

    async def list_games(self, guild_id: int) -> list[GameRole]:
        return await self.store.game_roles(guild_id)

    async def lookup(
        self, guild_id: int, *, member_id: int | None = None, key_text: str | None = None
    ) -> list[Redemption]:
        """Redemptions of a member, of a key (bare or URL), or the latest ones of the guild."""
        found: list[Redemption] | None = None
        if key_text is not None:
            parsed = parse_key(key_text)  # MalformedKey reaches the caller
            found = await self.store.redemptions_by_key(guild_id, key_hash(parsed.key))
            # The same purchase found through a linked itch.io account shows with it.
            for r in list(found):
                if r.key_id is not None:
                    same = await self.store.redemptions_of_purchase(guild_id, r.game_id, r.key_id)
                    found += [o for o in same if o not in found]
        if member_id is not None:
            mine = await self.store.redemptions_by_member(guild_id, member_id)
            found = mine if found is None else [r for r in found if r.member_id == member_id]
        if found is None:
            found = await self.store.recent_redemptions(guild_id, 25)
        return found

    async def revoke_plan(
        self, guild_id: int, member_id: int, game_id: int | None = None
    ) -> RevokePlan:
        """What `revoke` would do now, so an admin can confirm it first."""
        mine = await self.store.redemptions_by_member(guild_id, member_id)
        doomed = [r for r in mine if game_id is None or r.game_id == game_id]
        # Only live redemptions keep a role: one a re-check revoked gives nothing any more.
        kept_roles = {r.role_id for r in mine if r not in doomed and r.active}
        return RevokePlan(doomed, sorted({r.role_id for r in doomed} - kept_roles))

    async def revoke(
        self, guild_id: int, member_id: int, actor_id: int, game_id: int | None = None
    ) -> RevokeResult:
        """Delete the member's links (of one game, or all) and take away the roles they gave."""
        plan = await self.revoke_plan(guild_id, member_id, game_id)
        doomed = plan.redemptions
        if not doomed:
            return RevokeResult()
        await self.store.delete_redemptions(r.id for r in doomed)
        removed: list[int] = []
        failed: list[int] = []
        for role_id in plan.roles:
            result = await self.roles.remove_role(
                guild_id, member_id, role_id, "Redemption revoked by an admin"
            )
            if result in (RoleResult.OK, RoleResult.MEMBER_GONE):
                removed.append(role_id)
            else:
                failed.append(role_id)
        for r in doomed:
            await self.store.add_audit(
                guild_id=guild_id,
                member_id=member_id,
                action="revoke",
                outcome="revoked",
                game_id=r.game_id,
                key_hash=r.key_hash,
                actor_id=actor_id,
            )
        await publish_safely(
            self.events,
            Revoked(
                guild_id=guild_id,
                member_id=member_id,
                actor_id=actor_id,
                game_ids=tuple(sorted({r.game_id for r in doomed})),
                role_ids=tuple(removed),
                reason="/keys revoke",
            ),
        )
        log.info(
            "guild=%s member=%s revoked %d redemption(s) by admin %s",
            guild_id,
            member_id,
            len(doomed),
            actor_id,
        )
        return RevokeResult(revoked=doomed, roles_removed=removed, roles_failed=failed)

    # -- keeping roles true -----------------------------------------------------------------

    async def remove_role_unless_kept(self, redemption: Redemption, reason: str) -> RoleResult:
        """Take a redemption's role away unless another live redemption gives the same role."""
        others = await self.store.active_redemptions_by_member(
            redemption.guild_id, redemption.member_id
        )
        if any(r.id != redemption.id and r.role_id == redemption.role_id for r in others):
            return RoleResult.OK
        return await self.roles.remove_role(
            redemption.guild_id, redemption.member_id, redemption.role_id, reason
        )

    async def restore_member(self, guild_id: int, member_id: int) -> list[int]:
        """A member came back: give every role their live redemptions hold, without itch.io."""
        mine = await self.store.active_redemptions_by_member(guild_id, member_id)
        restored: list[int] = []
        for role_id in sorted({r.role_id for r in mine}):
            ids = [r.id for r in mine if r.role_id == role_id]
            result = await self.roles.add_role(
                guild_id, member_id, role_id, "Rejoined: restoring an itch.io buyer role"
            )
            await self.store.set_role_applied(ids, result is RoleResult.OK)
            if result is RoleResult.OK:
                restored.append(role_id)
        return restored

    async def reconcile_guild(
        self, guild_id: int, member_roles: Mapping[int, Collection[int]]
    ) -> ReconcileReport:
        """Give back recorded roles that present members lack; retry roles still pending.

        `member_roles` is every current member's role ids; members not in it have left and
        keep their records untouched."""
        added = failed = 0
        async for member_id, roles in self.store.iter_active_roles_by_member(guild_id):
            have = member_roles.get(member_id)
            if have is None:
                continue
            for role_id, ids in roles.items():
                if role_id in have:
                    # Already there: only rows still marked pending need a write.
                    await self.store.mark_applied_if_pending(ids)
                    continue
                result = await self.roles.add_role(
                    guild_id, member_id, role_id, "Restoring a recorded itch.io buyer role"
                )
                await self.store.set_role_applied(ids, result is RoleResult.OK)
                if result is RoleResult.OK:
                    added += 1
                else:
                    failed += 1
        if added or failed:
            log.info("guild=%s reconciled: %d role(s) added, %d failed", guild_id, added, failed)
        return ReconcileReport(added=added, failed=failed)

    async def retry_pending(self, guild_id: int) -> ReconcileReport:
        """Roles Discord refused before (hierarchy, permissions): try them again."""
        added = failed = 0
        for r in await self.store.pending_roles(guild_id):
            result = await self.roles.add_role(
                guild_id, r.member_id, r.role_id, "Applying a pending itch.io buyer role"
            )
            if result is RoleResult.OK:
                await self.store.set_role_applied([r.id], True)
                added += 1
            else:
                failed += 1
        return ReconcileReport(added=added, failed=failed)

    async def buyers_of_game(self, guild_id: int, game_id: int) -> list[Redemption]:
        return await self.store.active_redemptions_of_game(guild_id, game_id)

    async def grant_game_role_to_buyers(
        self, guild_id: int, game_id: int, actor_id: int
    ) -> ReconcileReport:
        """After a mapping change: every live redemption of the game gets the mapped role."""
        game = await self.store.game_role(guild_id, game_id)
        if game is None:
            return ReconcileReport()
        await self.store.set_game_redemptions_role(guild_id, game_id, game.role_id)
        added = failed = 0
        for r in await self.store.active_redemptions_of_game(guild_id, game_id):
            result = await self.roles.add_role(
                guild_id, r.member_id, game.role_id, "itch.io game linked to a new buyer role"
            )
            await self.store.set_role_applied([r.id], result is RoleResult.OK)
            if result is RoleResult.OK:
                added += 1
            elif result is not RoleResult.MEMBER_GONE:
                failed += 1
        await self.store.add_audit(
            guild_id=guild_id,
            member_id=actor_id,
            action="game_grant",
            outcome="ok",
            game_id=game_id,
            actor_id=actor_id,
            detail=f"{added} granted, {failed} failed",
        )
        return ReconcileReport(added=added, failed=failed)

    async def remove_game_role_from_buyers(
        self, guild_id: int, game_id: int, actor_id: int
    ) -> ReconcileReport:
        """After unlinking a game: take its role from its buyers, unless kept by another."""
        removed = failed = 0
        buyers = await self.store.active_redemptions_of_game(guild_id, game_id)
        for r in buyers:
            others = await self.store.active_redemptions_by_member(guild_id, r.member_id)
            if any(o.game_id != game_id and o.role_id == r.role_id for o in others):
                continue
            result = await self.roles.remove_role(
                guild_id, r.member_id, r.role_id, "itch.io game unlinked by an admin"
            )
            if result in (RoleResult.OK, RoleResult.MEMBER_GONE):
                removed += 1
            else:
                failed += 1
        await self.store.add_audit(
            guild_id=guild_id,
            member_id=actor_id,
            action="game_ungrant",
            outcome="ok",
            game_id=game_id,
            actor_id=actor_id,
            detail=f"{removed} removed, {failed} failed",
        )
        return ReconcileReport(removed=removed, failed=failed)


def _event_for(
    guild_id: int, member_id: int, result: RedeemResult, digest: str | None
) -> Event | None:
    fp = digest[:12] if digest else ""
    match result.outcome:
        case Outcome.REDEEMED if result.game:
            return Redeemed(guild_id, member_id, result.game.game_id, result.game.role_id, fp)
        case Outcome.ROLE_FAILED if result.game:
            return RoleFailed(guild_id, member_id, result.game.game_id, result.game.role_id)
        case Outcome.KEY_TAKEN if result.holder_id is not None:
            game_id = result.game.game_id if result.game else None
            return KeyShared(guild_id, member_id, result.holder_id, game_id, fp)
    return None
