"""The Discord client: wires settings, store, itch.io client and service, loads the cogs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from datetime import timedelta
from typing import Any

import discord
from discord.ext import commands

from bot.admin import AdminService
from bot.events import FanOut
from bot.itch import ItchClient
from bot.linking import LinkService
from bot.oauth import OAuthServer, StateSigner
from bot.recheck import Rechecker
from bot.sealing import KeySealer
from bot.service import RedemptionService, RoleResult
from bot.settings import Settings
from bot.store import Store

log = logging.getLogger(__name__)

SHUTDOWN_GRACE = 5.0
PENDING_RETRY_SECONDS = 600
MEMBER_LIST_TIMEOUT = 10.0

EXTENSIONS = (
    "cogs.errors",
    "cogs.redeem",
    "cogs.keys",
    "cogs.logchannel",
    "cogs.link",
    "cogs.panel",
)

# Discord error codes that mean "that member or role is gone", not "we may not".
_UNKNOWN_MEMBER = 10007
_UNKNOWN_ROLE = 10011


class DiscordRoles:
    """The service's RoleGateway, over discord.py's REST client (no member cache needed)."""

    def __init__(self, client: discord.Client) -> None:
        self._client = client

    async def add_role(
        self, guild_id: int, member_id: int, role_id: int, reason: str
    ) -> RoleResult:
        return await self._change(True, guild_id, member_id, role_id, reason)

    async def remove_role(
        self, guild_id: int, member_id: int, role_id: int, reason: str
    ) -> RoleResult:
        return await self._change(False, guild_id, member_id, role_id, reason)

    async def _change(
        self, add: bool, guild_id: int, member_id: int, role_id: int, reason: str
    ) -> RoleResult:
        http = self._client.http
        call = http.add_role if add else http.remove_role
        try:
            await call(guild_id, member_id, role_id, reason=reason)
        except discord.Forbidden:
            return RoleResult.FORBIDDEN
        except discord.NotFound as exc:
            if exc.code == _UNKNOWN_MEMBER:
                return RoleResult.MEMBER_GONE
            return RoleResult.FORBIDDEN if exc.code == _UNKNOWN_ROLE else RoleResult.FAILED
        except (discord.HTTPException, OSError) as exc:
            log.warning("Role change failed on guild %s: %s", guild_id, type(exc).__name__)
            return RoleResult.FAILED
        return RoleResult.OK


class ItchRoleBot(commands.Bot):
    def __init__(self, settings: Settings, store: Store, itch: ItchClient, **options: Any) -> None:
        intents = discord.Intents.default()
        # Privileged: needed to see members join (roles back on rejoin) and to reconcile.
        intents.members = True
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            help_command=None,
            chunk_guilds_at_startup=False,
            allowed_mentions=discord.AllowedMentions.none(),
            **options,
        )
        self.settings = settings
        self.store = store
        self.itch = itch
        # Whoever watches (the log channel cog) subscribes to the service's events here.
        self.events = FanOut()
        self.admin = AdminService(store)
        self.service = RedemptionService(
            store,
            itch,
            DiscordRoles(self),
            self.events,
            sealer=KeySealer(settings.itch_api_key.get()),
        )
        self.links = LinkService(store, itch, self.service.roles, self.events)
        # /link's web server when a public URL is set; without one, /link works out of band.
        self.oauth: OAuthServer | None = None
        if settings.oauth_public_url and settings.itch_oauth_client_id:
            assert settings.oauth_state_secret is not None  # load_settings requires it
            self.oauth = OAuthServer(
                self.links,
                store,
                StateSigner(settings.oauth_state_secret.get()),
                client_id=settings.itch_oauth_client_id,
                public_url=settings.oauth_public_url,
                host=settings.oauth_listen_host,
                port=settings.oauth_listen_port,
            )
        self.rechecker = Rechecker(
            self.service,
            interval=timedelta(hours=settings.recheck_interval_hours or 24),
            max_failure_share=settings.recheck_max_failure_percent / 100,
        )
        self._background: list[asyncio.Task] = []
        self._reconciling = asyncio.Lock()
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False

    async def setup_hook(self) -> None:
        for name in EXTENSIONS:
            await self.load_extension(name)
        if self.settings.discord_guild_id:
            guild = discord.Object(id=self.settings.discord_guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("Synced %d commands to guild %s", len(synced), guild.id)
            # Global copies from an earlier global sync would show every command twice there.
            self.tree.clear_commands(guild=None)
            await self.tree.sync()
        else:
            synced = await self.tree.sync()
            log.info("Synced %d global commands", len(synced))

        if self.oauth is not None:
            await self.oauth.start()
        if self.settings.recheck_interval_hours > 0:
            self._spawn(self.rechecker.run_forever(), "scheduled re-checks")
        self._spawn(self._retry_pending_forever(), "pending roles")

    # -- in-flight work and a clean stop ------------------------------------------------------

    @contextlib.asynccontextmanager
    async def busy(self) -> AsyncIterator[None]:
        """Marks member-facing work (a redemption and its reply) that a stop should let finish."""
        self._busy += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._busy -= 1
            if not self._busy:
                self._idle.set()

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._background.append(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task) -> None:
        with contextlib.suppress(ValueError):
            self._background.remove(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("Background task %s died", task.get_name(), exc_info=exc)

    async def close(self) -> None:
        if not self._closing:
            self._closing = True
            for task in list(self._background):
                task.cancel()
            await asyncio.gather(*self._background, return_exceptions=True)
            # In-flight redemptions and OAuth pages finish side by side: the whole stop
            # stays well inside the 10 s a service manager gives.
            stopping = [self._drain()]
            if self.oauth is not None:
                stopping.append(self.oauth.stop())
            await asyncio.gather(*stopping)
        await super().close()

    async def _drain(self) -> None:
        """Let redemptions in flight finish and answer: a stop must not lose a reply."""
        try:
            async with asyncio.timeout(SHUTDOWN_GRACE):
                await self._idle.wait()
        except TimeoutError:
            log.warning("Stopping with %d interaction(s) still in flight", self._busy)

    # -- keeping roles true -------------------------------------------------------------------

    async def on_ready(self) -> None:
        log.info("Logged in as %s (%s) in %d guild(s)", self.user, self.user.id, len(self.guilds))
        if not self._closing:
            self._spawn(self.reconcile_all(), "reconcile")

    async def on_resumed(self) -> None:
        if not self._closing:
            self._spawn(self.reconcile_all(), "reconcile")

    async def on_member_join(self, member: discord.Member) -> None:
        if self._closing:
            return  # the next start-up's reconciliation gives the roles back
        async with self.busy():
            restored = await self.service.restore_member(member.guild.id, member.id)
        if restored:
            log.info(
                "guild=%s member=%s rejoined: %d role(s) restored",
                member.guild.id,
                member.id,
                len(restored),
            )

    async def on_guild_role_update(self, before: discord.Role, after: discord.Role) -> None:
        # An admin may just have fixed the hierarchy: pending roles get another try.
        if self._closing:
            return
        if before.position != after.position or before.permissions != after.permissions:
            await self.service.retry_pending(after.guild.id)

    async def on_member_update(self, before: discord.Member, after: discord.Member) -> None:
        if self._closing or self.user is None or after.id != self.user.id:
            return
        if before.roles != after.roles:
            await self.service.retry_pending(after.guild.id)

    async def reconcile_all(self) -> None:
        """Give back recorded roles that members lack (after downtime or a reconnect)."""
        async with self._reconciling:
            wanted = set(await self.store.guilds_with_redemptions())
            for guild in list(self.guilds):
                if guild.id not in wanted:
                    continue
                # Fresh from Discord, not the cache: events missed while away are not in it.
                members = await self.list_members(guild, fresh=True)
                if members is None:
                    log.warning("guild=%s: could not list members to reconcile", guild.id)
                    continue
                current = {m.id: {r.id for r in m.roles} for m in members}
                await self.service.reconcile_guild(guild.id, current)

    async def list_members(
        self, guild: discord.Guild, *, fresh: bool = False
    ) -> list[discord.Member] | None:
        """Every member of a guild (the bot caches none at start-up), or None if unlistable.

        Asks the gateway first (one request for the whole guild), then the REST API."""
        if guild.chunked and not fresh:
            return list(guild.members)
        try:
            async with asyncio.timeout(MEMBER_LIST_TIMEOUT):
                return await guild.chunk()
        except (discord.ClientException, TimeoutError):
            log.info("guild=%s: gateway member list timed out; asking the REST API", guild.id)
        try:
            async with asyncio.timeout(MEMBER_LIST_TIMEOUT):
                return [m async for m in guild.fetch_members(limit=None)]
        except (discord.HTTPException, discord.ClientException, TimeoutError):
            return None

    async def _retry_pending_forever(self) -> None:
        while True:
            await asyncio.sleep(PENDING_RETRY_SECONDS)
            for guild_id in {r.guild_id for r in await self.store.pending_roles()}:
                await self.service.retry_pending(guild_id)
