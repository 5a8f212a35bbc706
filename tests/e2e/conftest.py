"""End-to-end: the real Bot, built by the real application factory, against loopback fakes of
Discord (REST + gateway) and itch.io. Tests assert what those fakes saw."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import discord
import pytest

from bot.app import application
from bot.bot import ItchRoleBot
from bot.settings import Secret, Settings
from tests.fakes.discord_fake import FakeDiscord, FakeGuild
from tests.fakes.itch_fake import FakeItch

GUILD = 100
OTHER_GUILD = 900
ALICE, BOB, CAROL, ADMIN, OTHER_ADMIN = 301, 302, 303, 309, 901
BUYER_A, BUYER_B, HIGH_ROLE, MANAGED_ROLE, ADMIN_ROLE = 201, 202, 203, 204, 205
OTHER_BUYER = 911
GENERAL, LOCKED = 400, 401
GAME_A, GAME_B = 3, 4
KEY = "YWKse5jeAeuZ8w3a5qO2b2PId1sChw2B9b637w6z"
MANAGE_GUILD = 1 << 5

FAST_ITCH = {
    "timeout": 0.5,
    "max_attempts": 3,
    "backoff_base": 0.01,
    "backoff_max": 0.05,
    "deadline": 3.0,
}

# discord.py waits this long after the last GUILD_CREATE before on_ready (2 s by default).
FAST_DISCORD = {"guild_ready_timeout": 0.05}


@dataclass
class World:
    discord: FakeDiscord
    itch: FakeItch
    guild: FakeGuild
    other_guild: FakeGuild
    db_path: Path
    bot: ItchRoleBot | None = None
    _task: asyncio.Task | None = field(default=None, repr=False)

    def settings(self, **over) -> Settings:
        base = dict(
            discord_token=Secret(self.discord.token),
            itch_api_key=Secret(self.itch.api_key),
            itch_api_base=self.itch.base_url,
            database_path=self.db_path,
            discord_guild_id=None,
            itch_rate_limit=100.0,
            itch_rate_burst=20,
            recheck_interval_hours=0,
            discord_api_base=self.discord.base_url,
            discord_gateway_url=self.discord.gateway_url,
        )
        return Settings(**{**base, **over})

    @contextlib.asynccontextmanager
    async def running(self, **settings_over) -> AsyncIterator[ItchRoleBot]:
        """Start the bot as `python -m bot` would, wait until Discord sent it READY."""
        readies = self.discord.ready_count
        async with application(
            self.settings(**settings_over), itch_options=FAST_ITCH, bot_options=FAST_DISCORD
        ) as bot:
            self.bot = bot
            task = asyncio.create_task(bot.start(self.discord.token))
            try:
                await self.discord.wait_ready(count=readies + 1)
                yield bot
            finally:
                await bot.close()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(task, 10)
                self.bot = None

    async def slash(self, user_id, name, options=None, *, subcommand=(), guild=GUILD):
        return await self.discord.slash(guild, user_id, name, options, subcommand=subcommand)

    async def redeem(self, user_id, key, guild=GUILD):
        handle = await self.slash(user_id, "redeem", [{"name": "key", "value": key}], guild=guild)
        return handle, await handle.final()

    async def keys(self, user_id, *path, guild=GUILD, **options):
        opts = [{"name": k, "value": v} for k, v in options.items() if v is not None]
        handle = await self.slash(user_id, "keys", opts, subcommand=list(path), guild=guild)
        return handle, await handle.final()

    async def settled(self, handle, busy_title: str, within: float = 15.0) -> dict:
        """The interaction's message once it no longer shows `busy_title` (progress edits)."""
        await handle.final(within)

        def done():
            message = handle.message or {}
            embeds = message.get("embeds") or [{}]
            return message if embeds[0].get("title") != busy_title else None

        return await self.discord._wait_until(done, within, f"{busy_title!r} to finish")

    async def press(self, user_id, message: dict, label: str, guild=GUILD):
        """Press the button with this label on a message the bot sent."""
        for row in message.get("components") or []:
            for item in row.get("components", []):
                if item.get("label") == label:
                    return await self.discord.click(guild, user_id, message, item["custom_id"])
        raise LookupError(f"no button {label!r} on the message")

    def itch_key_requests(self):
        return [r for r in self.itch.requests if "download_keys" in r.path]

    def role_requests(self, method=None):
        return [
            r
            for r in self.discord.requests
            if "/roles/" in r.path
            and "/members/" in r.path
            and (method is None or r.method == method)
        ]


def build_world(fake: FakeDiscord, itch: FakeItch, db_path: Path) -> World:
    guild = fake.add_guild(GUILD, "Game Studio")
    guild.add_role(BUYER_A, "X-Moon buyer", 1)
    guild.add_role(BUYER_B, "Y-Sun buyer", 2)
    guild.add_role(ADMIN_ROLE, "Mods", 3, permissions=MANAGE_GUILD)
    guild.add_role(HIGH_ROLE, "Above the bot", 20)
    guild.add_role(MANAGED_ROLE, "Some integration", 4, managed=True)
    guild.add_member(ALICE, "alice")
    guild.add_member(BOB, "bob")
    guild.add_member(CAROL, "carol")
    guild.add_member(ADMIN, "admin", [ADMIN_ROLE])
    guild.add_channel(GENERAL, "general")
    guild.add_channel(LOCKED, "locked", bot_can_send=False)

    other = fake.add_guild(OTHER_GUILD, "Other Studio")
    other.add_role(OTHER_BUYER, "Buyer", 1)
    other.add_role(OTHER_BUYER + 1, "Admins", 2, permissions=MANAGE_GUILD)
    other.add_member(OTHER_ADMIN, "otheradmin", [OTHER_BUYER + 1])
    other.add_member(ALICE, "alice")
    other.add_channel(OTHER_GUILD + 1, "general")

    itch.add_game(GAME_A, "X-Moon", url="http://leafo.itch.io/x-moon")
    itch.add_game(GAME_B, "Y-Sun", url="https://leafo.itch.io/y-sun")
    return World(fake, itch, guild, other, db_path)


@pytest.fixture
async def world(tmp_path) -> AsyncIterator[World]:
    fake = FakeDiscord()
    itch = FakeItch()
    await fake.start()
    await itch.start()
    original = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    try:
        yield build_world(fake, itch, tmp_path / "bot.db")
    finally:
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = original
        await itch.close()
        await fake.close()


@pytest.fixture
async def bot(world) -> AsyncIterator[ItchRoleBot]:
    async with world.running() as running_bot:
        yield running_bot


@pytest.fixture
async def linked(world, bot) -> World:
    """A running bot with both games linked by an admin through the real command."""
    for game_id, role in ((GAME_A, BUYER_A), (GAME_B, BUYER_B)):
        _, final = await world.keys(ADMIN, "game", "add", game_id=game_id, role=str(role))
        assert final["embeds"][0]["title"] == "Game linked", final
    return world
