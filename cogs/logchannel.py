"""The admins' log channel: every event the service publishes, posted there as a short embed.

Events are queued and posted by one background task, so a redemption never waits for (or fails
because of) the log channel. A new event type gets its message by adding a function decorated
with `@renders(ThatEvent)`; an event nobody wrote a renderer for is still posted, generically.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import discord
from discord.ext import commands

from bot.events import (
    AccountLinked,
    CooldownReached,
    Event,
    ItchAccountTaken,
    KeyRevokedByRecheck,
    KeyShared,
    RecheckHalted,
    Redeemed,
    Revoked,
    RoleFailed,
)
from bot.store import GameRole
from cogs.replies import BAD, INFO, OK, WARN, game_name

if TYPE_CHECKING:
    from bot.bot import ItchRoleBot

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000
# At shutdown, queued posts get this long (seconds) to go out before the worker is cancelled.
UNLOAD_GRACE = 2.5

Games = Mapping[int, GameRole]
E = TypeVar("E", bound=Event)
_RENDERERS: dict[type[Event], Callable[[Any, Games], discord.Embed]] = {}


def renders(kind: type[E]) -> Callable[[Callable[[E, Games], discord.Embed]], Any]:
    """Register the log message of one event type (subclasses use it too)."""

    def register(fn: Callable[[E, Games], discord.Embed]) -> Callable[[E, Games], discord.Embed]:
        _RENDERERS[kind] = fn
        return fn

    return register


def render(event: Event, games: Games) -> discord.Embed:
    for kind in type(event).__mro__:
        renderer = _RENDERERS.get(kind)
        if renderer is not None:
            embed = renderer(event, games)
            break
    else:
        embed = _generic(event)
    embed.timestamp = discord.utils.utcnow()
    return embed


def _game(games: Games, game_id: int | None) -> str:
    return game_name(games.get(game_id) if game_id is not None else None, game_id)


def _roles(role_ids: tuple[int, ...]) -> str:
    return ", ".join(f"<@&{r}>" for r in role_ids)


@renders(Redeemed)
def _redeemed(e: Redeemed, games: Games) -> discord.Embed:
    return discord.Embed(
        title="Key redeemed",
        description=f"<@{e.member_id}> redeemed {_game(games, e.game_id)} and got <@&{e.role_id}>."
        f"\nKey `{e.fingerprint}`",
        colour=OK,
    )


@renders(KeyShared)
def _key_shared(e: KeyShared, games: Games) -> discord.Embed:
    return discord.Embed(
        title="Key already claimed: possible sharing",
        description=f"<@{e.member_id}> tried a key of {_game(games, e.game_id)} that "
        f"<@{e.holder_id}> already redeemed. It was refused; `/keys audit member:` shows what "
        f"each of them tried.\nKey `{e.fingerprint}`",
        colour=BAD,
    )


@renders(RoleFailed)
def _role_failed(e: RoleFailed, games: Games) -> discord.Embed:
    return discord.Embed(
        title="Role could not be added",
        description=f"<@{e.member_id}> redeemed {_game(games, e.game_id)}, but Discord refused "
        f"to give <@&{e.role_id}>. Move my role above it (and keep Manage Roles): it is given "
        "as soon as that is fixed.",
        colour=WARN,
    )


@renders(CooldownReached)
def _cooldown(e: CooldownReached, games: Games) -> discord.Embed:
    return discord.Embed(
        title="Cool-down reached",
        description=f"<@{e.member_id}> had too many refused attempts in 10 minutes and must "
        "wait before trying again. `/keys audit` shows what they tried.",
        colour=WARN,
    )


@renders(Revoked)
def _revoked(e: Revoked, games: Games) -> discord.Embed:
    who = f" by <@{e.actor_id}>" if e.actor_id else ""
    names = ", ".join(_game(games, g) for g in e.game_ids) or "nothing"
    text = f"<@{e.member_id}>: {names} revoked{who} ({e.reason})."
    if e.role_ids:
        text += f"\nRoles taken away: {_roles(e.role_ids)}"
    return discord.Embed(title="Redemption revoked", description=text, colour=INFO)


@renders(KeyRevokedByRecheck)
def _recheck_revoked(e: KeyRevokedByRecheck, games: Games) -> discord.Embed:
    role = (
        f"<@&{e.role_id}> was taken away."
        if e.role_removed
        else f"<@&{e.role_id}> stays: another redemption gives it, or Discord refused. "
        "`/keys lookup member:` shows their other redemptions; if none gives it, take it away by "
        "hand."
    )
    return discord.Embed(
        title="Refund or revoked key",
        description=f"itch.io no longer accepts <@{e.member_id}>'s key of "
        f"{_game(games, e.game_id)} ({e.reason}). {role}\nKey `{e.fingerprint}`",
        colour=WARN,
    )


@renders(RecheckHalted)
def _recheck_halted(e: RecheckHalted, games: Games) -> discord.Embed:
    return discord.Embed(
        title="Re-check stopped: nothing more removed",
        description=f"{e.reason}. Checked {e.checked}: {e.refused} refused, {e.failed} failed. "
        "No role was taken away for the refused keys. Check that itch.io is up and that the "
        "bot's itch.io API key is valid (whoever runs the bot can check with `make doctor`), "
        "then run `/keys recheck`.",
        colour=BAD,
    )


@renders(ItchAccountTaken)
def _account_taken(e: ItchAccountTaken, games: Games) -> discord.Embed:
    who = f"{e.itch_username} ({e.itch_user_id})" if e.itch_username else str(e.itch_user_id)
    return discord.Embed(
        title="itch.io account already linked: possible sharing",
        description=f"<@{e.member_id}> tried to link the itch.io account {who}, which "
        f"<@{e.holder_id}> already linked. It was refused; `/keys audit member:` shows what "
        "each of them tried.",
        colour=BAD,
    )


@renders(AccountLinked)
def _account_linked(e: AccountLinked, games: Games) -> discord.Embed:
    who = f"{e.itch_username} ({e.itch_user_id})" if e.itch_username else str(e.itch_user_id)
    found = ", ".join(_game(games, g) for g in e.game_ids) or "no new game"
    return discord.Embed(
        title="itch.io account linked",
        description=f"<@{e.member_id}> linked the itch.io account {who}: {found}.",
        colour=OK,
    )


_MEMBER_FIELDS = re.compile(r"(member|holder|actor|user)_id")


def _generic(event: Event) -> discord.Embed:
    """Any other event: its name and its fields, members and roles as mentions."""
    title = re.sub(r"(?<!^)(?=[A-Z])", " ", type(event).__name__).capitalize()
    lines = []
    if event.member_id:
        lines.append(f"Member: <@{event.member_id}>")
    for f in dataclasses.fields(event):
        if f.name in ("guild_id", "member_id"):
            continue
        value = getattr(event, f.name)
        if value is None or value == ():
            continue
        if _MEMBER_FIELDS.fullmatch(f.name) and isinstance(value, int):
            shown = f"<@{value}>"
        elif f.name == "role_id" and isinstance(value, int):
            shown = f"<@&{value}>"
        elif isinstance(value, tuple):
            shown = ", ".join(str(v) for v in value)
        else:
            shown = str(value)
        lines.append(f"{f.name.replace('_', ' ').capitalize()}: {shown[:300]}")
    return discord.Embed(title=title[:256], description="\n".join(lines)[:4000], colour=INFO)


class LogChannel(commands.Cog):
    """Posts the service's events to each guild's log channel (set with /keys log-channel)."""

    def __init__(self, bot: ItchRoleBot) -> None:
        self.bot = bot
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self._worker: asyncio.Task | None = None

    async def cog_load(self) -> None:
        self._worker = asyncio.create_task(self._post_forever(), name="log channel")
        self.bot.events.subscribe(self)

    async def cog_unload(self) -> None:
        self.bot.events.unsubscribe(self)
        if self._worker is None:
            return
        # Let the queued posts go out rather than cut a database read or a post in half.
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._worker), UNLOAD_GRACE)
        except TimeoutError:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    async def publish(self, event: Event) -> None:
        """EventSink: queue only, so the member's redemption goes on at once."""
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            log.warning(
                "guild=%s log channel is behind: dropped %s", event.guild_id, type(event).__name__
            )

    async def _post_forever(self) -> None:
        while True:
            event = await self._queue.get()
            if event is None:  # unloading
                return
            try:
                await self.post(event)
            except Exception:
                log.exception("Could not post %s to the log channel", type(event).__name__)

    async def post(self, event: Event) -> None:
        channel_id = await self.bot.admin.log_channel(event.guild_id)
        if channel_id is None:
            return
        embed = render(event, await self.bot.admin.games(event.guild_id))
        channel = self.bot.get_partial_messageable(channel_id, guild_id=event.guild_id)
        try:
            await channel.send(embed=embed)
        except (discord.HTTPException, OSError) as exc:  # no access any more, channel deleted
            log.warning(
                "guild=%s could not post %s to log channel %s: %s",
                event.guild_id,
                type(event).__name__,
                channel_id,
                getattr(exc, "text", None) or type(exc).__name__,
            )


async def setup(bot: ItchRoleBot) -> None:
    await bot.add_cog(LogChannel(bot))
