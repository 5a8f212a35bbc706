"""Building the application from settings: one object per outside thing, made once."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import yarl

from bot.bot import ItchRoleBot
from bot.itch import ItchClient
from bot.settings import Settings
from bot.store import Store


def point_discord_at(api_base: str | None, gateway_url: str | None) -> None:
    """Send discord.py to another Discord API host (a proxy, or a test double)."""
    if api_base:
        discord.http.Route.BASE = api_base.rstrip("/")
    if gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def itch_client(
    session: aiohttp.ClientSession,
    settings: Settings,
    *,
    client_class: type[ItchClient] = ItchClient,
    **options: Any,
) -> ItchClient:
    """The itch.io client as the settings describe it; `options` tune timeouts and retries."""
    return client_class(
        session,
        settings.itch_api_key.get(),
        base_url=settings.itch_api_base,
        rate_limit=settings.itch_rate_limit,
        burst=settings.itch_rate_burst,
        **options,
    )


@contextlib.asynccontextmanager
async def application(
    settings: Settings,
    *,
    itch_options: dict[str, Any] | None = None,
    bot_options: dict[str, Any] | None = None,
) -> AsyncIterator[ItchRoleBot]:
    """The HTTP session, the store, the itch.io client and the Bot, closed in reverse order.

    `itch_options` tunes the itch.io client's timeouts and retries, `bot_options` discord.py's
    client (tests shorten both)."""
    point_discord_at(settings.discord_api_base, settings.discord_gateway_url)
    async with aiohttp.ClientSession() as session:
        itch = itch_client(session, settings, **(itch_options or {}))
        store = await Store.open(settings.database_path)
        try:
            async with ItchRoleBot(settings, store, itch, **(bot_options or {})) as bot:
                yield bot
        finally:
            await store.close()
