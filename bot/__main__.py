"""`python -m bot`: start the bot (the default command), or run one of the shell commands of
bot/cli.py (`doctor`, `check-key`, `games`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys

import discord
from dotenv import find_dotenv, load_dotenv

from bot.app import application
from bot.cli import COMMANDS, USAGE, run_command
from bot.errors import SettingsError
from bot.settings import Settings, load_settings

log = logging.getLogger("bot")


class OneLineFormatter(logging.Formatter):
    """One line per event, a traceback included, so journald and `docker logs` keep it whole."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\n", " | ")


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    # These libraries' DEBUG lines carry payloads (a member's key in an interaction, SQL
    # parameters): never wanted, whatever LOG_LEVEL says.
    for name in ("discord", "aiosqlite"):
        logging.getLogger(name).setLevel(max(logging.INFO, logging.getLevelName(level)))


def fail(name: str, problem: str) -> int:
    print(f"Setting {name} {problem}", file=sys.stderr)
    return 2


async def run_bot(settings: Settings) -> int:
    async with application(settings) as bot:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, lambda: asyncio.ensure_future(bot.close()))
        try:
            await bot.start(settings.discord_token.get())
        except discord.LoginFailure:
            return fail("DISCORD_TOKEN", "is invalid: Discord rejected it at login")
        except SettingsError as exc:  # found only when used, e.g. OAUTH_LISTEN's port is taken
            return fail(exc.name, exc.problem)
        except discord.PrivilegedIntentsRequired:
            print(
                "Enable the SERVER MEMBERS INTENT for this bot in the Discord developer "
                "portal (Bot page, Privileged Gateway Intents), then start again.",
                file=sys.stderr,
            )
            return 2
    log.info("Stopped cleanly")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "run"
    if command in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if command != "run" and command not in COMMANDS:
        print(f"Unknown command {command!r}.\n\n{USAGE}", file=sys.stderr)
        return 2
    # The real environment wins over .env.
    load_dotenv(find_dotenv(usecwd=True), override=False)
    if command != "run":
        # Their output is for a person at a terminal: only warnings (retries) join it.
        setup_logging("WARNING")
        return run_command(command, args[1:], os.environ)
    try:
        settings = load_settings(os.environ)
    except SettingsError as exc:
        return fail(exc.name, exc.problem)
    setup_logging(settings.log_level)
    return asyncio.run(run_bot(settings))


if __name__ == "__main__":
    sys.exit(main())
