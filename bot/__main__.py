"""`python -m bot`: start the bot (the default command)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys

import aiohttp
import discord
from dotenv import find_dotenv, load_dotenv

from bot.bot import ItchRoleBot
from bot.errors import SettingsError
from bot.itch import ItchClient
from bot.settings import Settings, load_settings
from bot.store import Store

log = logging.getLogger("bot")


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # discord.py's own INFO lines are useful; its DEBUG lines carry payloads, never wanted.
    logging.getLogger("discord").setLevel(max(logging.INFO, logging.getLevelName(level)))


def fail(name: str, problem: str) -> int:
    print(f"Setting {name} {problem}", file=sys.stderr)
    return 2


async def run_bot(settings: Settings) -> int:
    async with aiohttp.ClientSession() as session:
        itch = ItchClient(
            session,
            settings.itch_api_key.get(),
            base_url=settings.itch_api_base,
            rate_limit=settings.itch_rate_limit,
            burst=settings.itch_rate_burst,
        )
        store = await Store.open(settings.database_path)
        try:
            async with ItchRoleBot(settings, store, itch) as bot:
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGTERM, signal.SIGINT):
                    with contextlib.suppress(NotImplementedError):
                        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(bot.close()))
                try:
                    await bot.start(settings.discord_token.get())
                except discord.LoginFailure:
                    return fail("DISCORD_TOKEN", "is invalid: Discord rejected it at login")
                except discord.PrivilegedIntentsRequired:
                    print(
                        "Enable the SERVER MEMBERS INTENT for this bot in the Discord developer "
                        "portal (Bot page, Privileged Gateway Intents), then start again.",
                        file=sys.stderr,
                    )
                    return 2
        finally:
            await store.close()
    log.info("Stopped cleanly")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "run"
    if command != "run":
        print(f"Unknown command {command!r}. Usage: python -m bot [run]", file=sys.stderr)
        return 2
    # The real environment wins over .env.
    load_dotenv(find_dotenv(usecwd=True), override=False)
    try:
        settings = load_settings(os.environ)
    except SettingsError as exc:
        return fail(exc.name, exc.problem)
    setup_logging(settings.log_level)
    return asyncio.run(run_bot(settings))


if __name__ == "__main__":
    sys.exit(main())
