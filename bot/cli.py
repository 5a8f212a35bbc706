"""The shell commands beside `run`: `doctor`, `check-key` and `games`.

Each needs only the settings it uses: `doctor` all of them (checking them is its first line),
`check-key` and `games` only the itch.io ones (ITCH_API_KEY, and ITCH_API_BASE and the rate
settings if set), so they work before Discord is set up. Results go to stdout, problems with
the command line or the settings to stderr.

Exit statuses: 0 all good; 1 a check failed, or itch.io refused (the key, or our API key);
2 bad usage or settings; 3 itch.io could not be reached.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import aiohttp

from bot.doctor import ITCH_OPTIONS, run_doctor
from bot.errors import ItchMisconfigured, ItchRefused, ItchUnavailable, MalformedKey, SettingsError
from bot.itch import ItchClient
from bot.keyparse import fingerprint, parse_key
from bot.settings import ItchSettings, load_itch_settings

USAGE = """\
Usage: python -m bot [COMMAND]

  run                           start the bot (the default)
  doctor                        check the set-up: one line per check, with a fix for each problem
  check-key GAME_ID KEY_OR_URL  ask itch.io about one download key (or download URL) of a game
  games                         list the games of the itch.io API key: id, title, URL

Settings come from the environment and .env (see .env.example). check-key and games need only
ITCH_API_KEY."""

COMMANDS = ("doctor", "check-key", "games")

OK, REFUSED, USAGE_ERROR, UNAVAILABLE = 0, 1, 2, 3


def run_command(command: str, args: list[str], env: Mapping[str, str]) -> int:
    """Run one of COMMANDS from the shell (its own event loop)."""
    if command == "doctor":
        if args:
            return _usage(f"doctor takes no arguments, got {' '.join(args)!r}")
        return asyncio.run(run_doctor(env, sys.stdout))
    if command == "check-key":
        if len(args) != 2:
            return _usage("check-key needs GAME_ID and KEY_OR_URL")
        raw_id, text = args
        if not raw_id.isdigit():
            return _usage(f"GAME_ID must be a number (see `python -m bot games`), got {raw_id!r}")
        itch = _itch_settings(env)
        if itch is None:
            return USAGE_ERROR
        return asyncio.run(check_key(itch, int(raw_id), text, sys.stdout))
    if command == "games":
        if args:
            return _usage(f"games takes no arguments, got {' '.join(args)!r}")
        itch = _itch_settings(env)
        if itch is None:
            return USAGE_ERROR
        return asyncio.run(list_games(itch, sys.stdout))
    return _usage(f"Unknown command {command!r}.")


def _usage(problem: str) -> int:
    print(f"{problem}\n\n{USAGE}", file=sys.stderr)
    return USAGE_ERROR


def _itch_settings(env: Mapping[str, str]) -> ItchSettings | None:
    try:
        return load_itch_settings(env)
    except SettingsError as exc:
        print(f"Setting {exc.name} {exc.problem}", file=sys.stderr)
        return None


def _client(
    session: aiohttp.ClientSession, itch: ItchSettings, options: dict[str, Any] | None
) -> ItchClient:
    return ItchClient(
        session,
        itch.api_key.get(),
        base_url=itch.api_base,
        rate_limit=itch.rate_limit,
        burst=itch.rate_burst,
        **(options or ITCH_OPTIONS),
    )


def _refusal(exc: ItchRefused) -> str:
    return "; ".join(exc.messages)


async def check_key(
    itch: ItchSettings,
    game_id: int,
    text: str,
    out: TextIO,
    *,
    itch_options: dict[str, Any] | None = None,
) -> int:
    """Ask itch.io once whether a download key belongs to a game, and print what it says.

    The key itself is never printed: only its fingerprint, as admins see it in `/keys lookup`."""
    try:
        parsed = parse_key(text)
    except MalformedKey as exc:
        print(
            f"That is not an itch.io download key or download URL ({exc.reason}). Give the key "
            "(the part after /download/ in the download URL) or the whole URL.",
            file=out,
        )
        return USAGE_ERROR
    name = f"key {fingerprint(parsed.key)} for game {game_id}"
    async with aiohttp.ClientSession() as session:
        try:
            key = await _client(session, itch, itch_options).download_key(game_id, parsed.key)
        except ItchMisconfigured as exc:
            print(
                f"itch.io refused the API key (ITCH_API_KEY): {_refusal(exc)}. "
                "Run `python -m bot doctor` to see what to fix.",
                file=out,
            )
            return REFUSED
        except ItchRefused as exc:
            print(f'refused: itch.io says "{_refusal(exc)}" about {name}.', file=out)
            if "invalid download key" in exc.messages:
                print(
                    "The key is mistyped, was refunded or revoked, or belongs to another game.",
                    file=out,
                )
            elif any("game" in m for m in exc.messages):
                print("Run `python -m bot games` to see the ids of your games.", file=out)
            return REFUSED
        except ItchUnavailable as exc:
            print(f"itch.io did not answer ({exc}). Try again in a minute.", file=out)
            return UNAVAILABLE
    if key.owner is None:
        owner = "unclaimed (no itch.io account has claimed this key)"
    else:
        owner = f"{key.owner.username or '?'} (itch.io user {key.owner.id})"
    created = key.created_at.strftime("%Y-%m-%d %H:%M:%S UTC") if key.created_at else "unknown"
    lines = [
        f"valid: itch.io knows {name}",
        f"  owner:     {owner}",
        f"  game:      {key.game_id}" + (f" (from {parsed.game_url})" if parsed.game_url else ""),
        f"  created:   {created}",
        f"  downloads: {key.downloads if key.downloads is not None else 'unknown'}",
        f"  key id:    {key.id}",
    ]
    print("\n".join(lines), file=out)
    return OK


async def list_games(
    itch: ItchSettings, out: TextIO, *, itch_options: dict[str, Any] | None = None
) -> int:
    """The API key's games from my-games, one per line: id, title, URL."""
    async with aiohttp.ClientSession() as session:
        try:
            games = await _client(session, itch, itch_options).my_games()
        except ItchMisconfigured as exc:
            print(
                f"itch.io refused the API key (ITCH_API_KEY): {_refusal(exc)}. "
                "Run `python -m bot doctor` to see what to fix.",
                file=out,
            )
            return REFUSED
        except ItchRefused as exc:
            print(
                f'itch.io refused my-games: "{_refusal(exc)}". The API key needs the '
                "profile:games scope (keys from itch.io → Settings → API keys have it).",
                file=out,
            )
            return REFUSED
        except ItchUnavailable as exc:
            print(f"itch.io did not answer ({exc}). Try again in a minute.", file=out)
            return UNAVAILABLE
    if not games:
        print(
            "The API key's account has no games. Use a key of the account that owns (or can "
            "edit) them.",
            file=out,
        )
        return OK
    rows = [
        (str(g.id), g.title + ("" if g.published else " (unpublished)"), g.url or "")
        for g in sorted(games, key=lambda g: g.id)
    ]
    id_width = max(len("ID"), *(len(r[0]) for r in rows))
    title_width = max(len("TITLE"), *(len(r[1]) for r in rows))
    print(f"{'ID':<{id_width}}  {'TITLE':<{title_width}}  URL", file=out)
    for game_id, title, url in rows:
        print(f"{game_id:<{id_width}}  {title:<{title_width}}  {url}".rstrip(), file=out)
    print(
        "\nLink one to a role in Discord with `/keys game add game_id:<ID> role:<role>`.", file=out
    )
    return OK
