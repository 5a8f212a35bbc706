"""The Discord client: wires settings, store, itch.io client and service, loads the cogs."""

from __future__ import annotations

import logging

import discord
from discord.ext import commands

from bot.itch import ItchClient
from bot.service import RedemptionService, RoleResult
from bot.settings import Settings
from bot.store import Store

log = logging.getLogger(__name__)

EXTENSIONS = ("cogs.errors", "cogs.redeem", "cogs.keys")

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
    def __init__(self, settings: Settings, store: Store, itch: ItchClient) -> None:
        intents = discord.Intents.default()
        # Privileged: needed to see members join (roles back on rejoin) and to reconcile.
        intents.members = True
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            help_command=None,
            chunk_guilds_at_startup=False,
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.settings = settings
        self.store = store
        self.itch = itch
        self.service = RedemptionService(store, itch, DiscordRoles(self))

    async def setup_hook(self) -> None:
        for name in EXTENSIONS:
            await self.load_extension(name)
        if self.settings.discord_guild_id:
            guild = discord.Object(id=self.settings.discord_guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("Synced %d commands to guild %s", len(synced), guild.id)
        else:
            synced = await self.tree.sync()
            log.info("Synced %d global commands", len(synced))

    async def on_ready(self) -> None:
        log.info("Logged in as %s (%s) in %d guild(s)", self.user, self.user.id, len(self.guilds))
