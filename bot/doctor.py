"""`python -m bot doctor`: checks the set-up, one line per check, each with a verdict and a fix.

It changes nothing: GET requests to Discord and itch.io, and the database opened without migrating,
so it is safe to run beside a running bot. Secrets never reach its output: lines are built from
names, ids and the services' error messages, never from the settings' secret values.
"""

from __future__ import annotations

import asyncio
import enum
import os
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import aiohttp
import discord

from bot.app import itch_client, point_discord_at
from bot.errors import ItchMisconfigured, ItchRefused, ItchUnavailable, SettingsError
from bot.itch import Game, ItchClient
from bot.settings import Settings, load_settings
from bot.store import LATEST_SCHEMA_VERSION, GameRole, Store

# The itch.io scopes the bot's API key needs: my-games, and download_keys.
NEEDED_SCOPES = ("profile:games", "game:view:purchases")
# Application flags that mean the Server Members intent is on (the second below 100 servers).
GATEWAY_GUILD_MEMBERS = 1 << 14
GATEWAY_GUILD_MEMBERS_LIMITED = 1 << 15
MANAGE_ROLES = 1 << 28
ADMINISTRATOR = 1 << 3
# What the bot needs where it works: Manage Roles, and to post the redeem panel.
INVITE_PERMISSIONS = MANAGE_ROLES | (1 << 10) | (1 << 11) | (1 << 14)
# A well-formed key that no game has: itch.io answers "invalid download key" to a key that may
# check download keys, and "invalid scope" to one that may not.
PROBE_KEY = "0" * 32
# The doctor should answer within seconds, even when a service does not.
ITCH_OPTIONS = {"timeout": 10.0, "max_attempts": 2, "deadline": 20.0}
DISCORD_TIMEOUT = 30.0


class Verdict(enum.StrEnum):
    OK = "ok"
    WARN = "warn"  # worth knowing, but the bot works
    FAIL = "FAIL"
    SKIP = "skip"  # could not be checked because an earlier check failed


@dataclass(frozen=True)
class Check:
    verdict: Verdict
    subject: str
    finding: str
    fix: str | None = None

    def line(self) -> str:
        text = f"{self.verdict.value:<4}  {self.subject}: {self.finding}"
        return f"{text} — fix: {self.fix}" if self.fix else text


def ok(subject: str, finding: str) -> Check:
    return Check(Verdict.OK, subject, finding)


def warn(subject: str, finding: str, fix: str | None = None) -> Check:
    return Check(Verdict.WARN, subject, finding, fix)


def fail(subject: str, finding: str, fix: str) -> Check:
    return Check(Verdict.FAIL, subject, finding, fix)


def skip(subject: str, until: str) -> Check:
    return Check(Verdict.SKIP, subject, f"not checked until {until}")


def exit_status(checks: list[Check]) -> int:
    return 1 if any(c.verdict is Verdict.FAIL for c in checks) else 0


def report(checks: list[Check], out: TextIO) -> int:
    """Print one line per check and a summary; return the exit status."""
    for check in checks:
        print(check.line(), file=out)
    failed = sum(c.verdict is Verdict.FAIL for c in checks)
    if failed:
        print(f"\n{failed} check(s) failed: fix them, then run `make doctor` again.", file=out)
    else:
        print("\nAll checks passed.", file=out)
    return exit_status(checks)


def invite_url(application_id: int | str) -> str:
    return (
        f"https://discord.com/oauth2/authorize?client_id={application_id}"
        f"&scope=bot+applications.commands&permissions={INVITE_PERMISSIONS}"
    )


def scope_covers(granted: tuple[str, ...], needed: str) -> bool:
    """A scope gives all its subscopes: `game` covers `game:view:purchases`, not the reverse."""
    return any(needed == s or needed.startswith(s + ":") for s in granted)


# --------------------------------------------------------------------------------------------
# Entry points


async def run_doctor(
    env: Mapping[str, str], out: TextIO, *, itch_options: dict[str, Any] | None = None
) -> int:
    try:
        settings = load_settings(env)
    except SettingsError as exc:
        checks = [
            fail(
                "settings",
                f"{exc.name} {exc.problem}",
                f"set {exc.name} in .env (or the environment), then run the doctor again",
            ),
            skip("other checks", "the settings are valid"),
        ]
        return report(checks, out)
    return report(await diagnose(settings, itch_options=itch_options), out)


async def diagnose(
    settings: Settings, *, itch_options: dict[str, Any] | None = None
) -> list[Check]:
    checks = [
        ok(
            "settings",
            f"valid (database {settings.database_path}, itch.io API {settings.itch_api_base})",
        )
    ]
    db_checks, game_roles = await check_database(settings.database_path)
    checks += db_checks
    checks += await check_discord(settings, game_roles)
    checks += await check_itch(settings, game_roles, itch_options or ITCH_OPTIONS)
    return checks


# --------------------------------------------------------------------------------------------
# The database


def _nearest_existing(path: Path) -> Path:
    for candidate in [path, *path.parents]:
        if candidate.exists():
            return candidate
    return Path(".")


def _database_file(path: Path) -> Check | None:
    """What the file system says; None when there is a file for SQLite to open."""
    subject = "database"
    if not path.exists():
        folder = _nearest_existing(path.parent)
        if not os.access(folder, os.W_OK):
            return fail(
                subject,
                f"{path} does not exist and {folder} is not writable, so the bot can't create it",
                f"create {path.parent} and give the user that runs the bot write access",
            )
        return ok(subject, f"{path} does not exist yet: the bot creates it at its first start")
    if not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
        return fail(
            subject,
            f"{path} (or its folder) is not writable by this user",
            "give the user that runs the bot write access to the file and its folder",
        )
    return None


async def check_database(path: Path) -> tuple[list[Check], list[GameRole]]:
    """Reachable, writable, and at the schema version this code expects; plus the game links."""
    subject = "database"
    problem = _database_file(path)
    if problem is not None:
        return [problem], []
    try:
        store = await Store.open(path, migrate=False)
    except (sqlite3.Error, OSError) as exc:
        return [
            fail(
                subject,
                f"{path} could not be opened as SQLite ({exc})",
                "check that DATABASE_URL points at the bot's database file",
            )
        ], []
    try:
        version = await store.schema_version()
        try:
            game_roles = await store.all_game_roles()
        except sqlite3.Error:
            game_roles = []
    finally:
        await store.close()
    if version > LATEST_SCHEMA_VERSION:
        check = fail(
            subject,
            f"{path} is at schema version {version}, newer than this version of the bot "
            f"understands ({LATEST_SCHEMA_VERSION})",
            "run the newer version of the bot that wrote it, or restore a backup",
        )
    elif version < LATEST_SCHEMA_VERSION:
        check = warn(
            subject,
            f"{path} is at schema version {version}: the bot migrates it to "
            f"{LATEST_SCHEMA_VERSION} at its next start",
            "nothing to do; a backup of the file first is a good idea",
        )
    else:
        check = ok(subject, f"{path} is reachable, schema version {version} (current)")
    return [check], game_roles


# --------------------------------------------------------------------------------------------
# Discord


async def check_discord(settings: Settings, game_roles: list[GameRole]) -> list[Check]:
    point_discord_at(settings.discord_api_base, settings.discord_gateway_url)
    http = discord.http.HTTPClient(asyncio.get_running_loop())
    try:
        async with asyncio.timeout(DISCORD_TIMEOUT):
            return await _discord_checks(http, settings, game_roles)
    except TimeoutError:
        return [
            fail(
                "Discord",
                f"no answer within {DISCORD_TIMEOUT:g}s",
                "check the network, then run the doctor again",
            )
        ]
    except discord.HTTPException as exc:
        # After a good login: Discord failing one of the reads (an outage, a rate limit).
        return [
            fail(
                "Discord",
                f"answered HTTP {exc.status} to the doctor's questions",
                "run the doctor again in a minute",
            )
        ]
    except (aiohttp.ClientError, OSError) as exc:
        return [
            fail(
                "Discord",
                f"the connection failed ({type(exc).__name__})",
                "check the network, then run the doctor again",
            )
        ]
    finally:
        await http.close()


async def _discord_checks(
    http: discord.http.HTTPClient, settings: Settings, game_roles: list[GameRole]
) -> list[Check]:
    subject = "Discord token"
    try:
        me = await http.static_login(settings.discord_token.get())
    except discord.LoginFailure:
        return [
            fail(
                subject,
                "Discord refused DISCORD_TOKEN",
                "in the Discord developer portal open your application → Bot → Reset Token, "
                "and put the new token in DISCORD_TOKEN",
            ),
            skip("Discord servers and roles", "Discord accepts the token"),
        ]
    except discord.HTTPException as exc:
        return [
            fail(subject, f"Discord answered HTTP {exc.status}", "try again in a minute"),
            skip("Discord servers and roles", "Discord answers"),
        ]
    except (aiohttp.ClientError, OSError) as exc:
        return [
            fail(
                subject,
                f"Discord could not be reached ({type(exc).__name__})",
                "check the network (and DISCORD_API_BASE, if set)",
            ),
            skip("Discord servers and roles", "Discord answers"),
        ]
    bot_id = int(me["id"])
    checks = [ok(subject, f"valid: the bot is {me['username']} ({bot_id})")]

    app = await http.request(discord.http.Route("GET", "/applications/@me"))
    app_id = app.get("id", bot_id)
    flags = int(app.get("flags") or 0)
    if flags & (GATEWAY_GUILD_MEMBERS | GATEWAY_GUILD_MEMBERS_LIMITED):
        checks.append(ok("Server Members intent", "enabled"))
    else:
        checks.append(
            fail(
                "Server Members intent",
                "disabled, so Discord would refuse the bot at login",
                "in the Discord developer portal open your application → Bot → Privileged "
                "Gateway Intents, turn on Server Members Intent and save",
            )
        )

    checks.append(await _commands_check(http, app_id, settings.discord_guild_id))

    guilds = await _all_guilds(http)
    if not guilds:
        checks.append(
            fail("servers", "the bot is in no server", f"invite it: {invite_url(app_id)}")
        )
    else:
        checks.append(ok("servers", f"the bot is in {len(guilds)} server(s)"))
    guild_ids = {int(g["id"]) for g in guilds}
    if settings.discord_guild_id and settings.discord_guild_id not in guild_ids:
        checks.append(
            fail(
                "DISCORD_GUILD_ID",
                f"{settings.discord_guild_id} is not a server the bot is in",
                "set it to your server's id (right-click the server → Copy Server ID), or "
                f"leave it empty; to invite the bot: {invite_url(app_id)}",
            )
        )
    for guild in guilds:
        linked = [g for g in game_roles if g.guild_id == int(guild["id"])]
        checks += await _guild_checks(http, guild, bot_id, linked, app_id)
    return checks


async def _commands_check(
    http: discord.http.HTTPClient, app_id: int | str, guild_id: int | None
) -> Check:
    subject = "slash commands"
    where = f"in server {guild_id}" if guild_id else "globally"
    try:
        if guild_id:
            commands = await http.get_guild_commands(app_id, guild_id)
        else:
            commands = await http.get_global_commands(app_id)
    except discord.HTTPException as exc:
        return warn(subject, f"could not be listed (HTTP {exc.status})")
    if not commands:
        return warn(
            subject,
            f"none registered {where} yet",
            "start the bot (`make run`): it registers them at start-up",
        )
    names = ", ".join(sorted(f"/{c['name']}" for c in commands))
    return ok(subject, f"{names} registered {where}")


async def _all_guilds(http: discord.http.HTTPClient) -> list[dict[str, Any]]:
    guilds: list[dict[str, Any]] = []
    while True:
        page = await http.get_guilds(200, after=int(guilds[-1]["id"]) if guilds else None)
        guilds += page
        if len(page) < 200:
            return guilds


async def _guild_checks(
    http: discord.http.HTTPClient,
    guild: dict[str, Any],
    bot_id: int,
    linked: list[GameRole],
    app_id: int | str,
) -> list[Check]:
    guild_id = int(guild["id"])
    where = f'server "{guild["name"]}" ({guild_id})'
    try:
        roles = {int(r["id"]): r for r in await http.get_roles(guild_id)}
        member = await http.get_member(guild_id, bot_id)
    except discord.HTTPException as exc:
        return [
            fail(
                where,
                f"its roles could not be read (HTTP {exc.status})",
                f"invite the bot again: {invite_url(app_id)}",
            )
        ]
    own = [roles[int(r)] for r in member.get("roles", []) if int(r) in roles]
    permissions = int(roles[guild_id]["permissions"]) if guild_id in roles else 0
    for role in own:
        permissions |= int(role["permissions"])
    top = max(own, key=lambda r: (r["position"], -int(r["id"])), default=None)
    top_name = top["name"] if top else "@everyone"
    top_position = top["position"] if top else 0

    checks: list[Check] = []
    if guild.get("owner") or permissions & (MANAGE_ROLES | ADMINISTRATOR):
        checks.append(ok(where, "the bot has Manage Roles"))
    else:
        checks.append(
            fail(
                where,
                "the bot lacks the Manage Roles permission, so it can't give any role",
                f'Server Settings → Roles → "{top_name}" → turn on Manage Roles',
            )
        )
    if not linked:
        checks.append(ok(where, "no games linked here yet (`/keys game add`)"))
    for game in linked:
        subject = f"{where}, game {game.game_id}"
        role = roles.get(game.role_id)
        if role is None:
            checks.append(
                fail(
                    subject,
                    f"its role ({game.role_id}) no longer exists",
                    f"pick another with `/keys game add game_id:{game.game_id} role:<role>`",
                )
            )
        elif role.get("managed"):
            checks.append(
                fail(
                    subject,
                    f'role "{role["name"]}" is managed by an integration and can\'t be given',
                    f"pick another with `/keys game add game_id:{game.game_id} role:<role>`",
                )
            )
        elif role["position"] >= top_position:
            checks.append(
                fail(
                    subject,
                    f'role "{role["name"]}" is not below the bot\'s highest role "{top_name}", '
                    "so Discord won't let the bot give it",
                    f'Server Settings → Roles: drag "{top_name}" above "{role["name"]}"',
                )
            )
        else:
            checks.append(
                ok(subject, f'role "{role["name"]}" is below the bot\'s role "{top_name}"')
            )
    return checks


# --------------------------------------------------------------------------------------------
# itch.io


async def check_itch(
    settings: Settings, game_roles: list[GameRole], itch_options: dict[str, Any]
) -> list[Check]:
    async with aiohttp.ClientSession() as session:
        itch = itch_client(session, settings, **itch_options)
        return await _itch_checks(itch, game_roles)


KEY_FIX = (
    "generate a key at itch.io → Settings → API keys (https://itch.io/user/settings/api-keys) "
    "with the account that owns the games, and put it in ITCH_API_KEY"
)


async def _itch_checks(itch: ItchClient, game_roles: list[GameRole]) -> list[Check]:
    subject = "itch.io API key"
    try:
        credentials = await itch.credentials_info()
    except ItchMisconfigured:
        return [
            fail(subject, "itch.io refused ITCH_API_KEY (invalid key)", KEY_FIX),
            skip("itch.io scopes and games", "itch.io accepts the key"),
        ]
    except ItchRefused as exc:
        return [
            fail(subject, f'itch.io refused it: "{"; ".join(exc.messages)}"', KEY_FIX),
            skip("itch.io scopes and games", "itch.io accepts the key"),
        ]
    except ItchUnavailable:
        return [
            fail(
                subject,
                "itch.io could not be reached or did not answer",
                "check the network (and ITCH_API_BASE, if set), then run the doctor again",
            ),
            skip("itch.io scopes and games", "itch.io answers"),
        ]
    checks = [ok(subject, "accepted by itch.io")]

    games: list[Game] | None = None
    games_problem = ""
    try:
        games = await itch.my_games()
    except ItchRefused as exc:
        games_problem = f'itch.io refused my-games: "{"; ".join(exc.messages)}"'
    except ItchUnavailable:
        games_problem = "itch.io did not answer my-games"

    checks.append(await _scopes_check(itch, credentials.scopes, games, game_roles))
    if games is None:
        checks.append(
            fail("itch.io games", games_problem, "fix the scopes above, then run the doctor again")
        )
        return checks
    checks += _games_checks(games, game_roles)
    return checks


async def _scopes_check(
    itch: ItchClient,
    listed: tuple[str, ...],
    games: list[Game] | None,
    game_roles: list[GameRole],
) -> Check:
    """Each needed scope is listed by credentials/info, or else proven by the call needing it.

    itch.io's reference says keys made on its API keys page are unscoped, yet its sample
    credentials/info answer for such a key lists only some scopes: so an unlisted scope is
    tried before the key is blamed."""
    subject = "itch.io scopes"
    missing = [s for s in NEEDED_SCOPES if not scope_covers(listed, s)]
    if not missing:
        return ok(subject, "the key may use " + " and ".join(NEEDED_SCOPES))
    lacking: list[str] = []
    unproven: list[str] = []
    for scope in missing:
        if scope == "profile:games":
            if games is None:
                lacking.append(scope)
            continue
        game_id = games[0].id if games else (game_roles[0].game_id if game_roles else None)
        if game_id is None:
            unproven.append(scope)
            continue
        try:
            await itch.download_key(game_id, PROBE_KEY)
        except ItchRefused as exc:
            if "invalid download key" not in exc.messages:
                lacking.append(scope)
        except ItchUnavailable:
            unproven.append(scope)
    fix = "use an unscoped key from itch.io → Settings → API keys, or a key with " + " and ".join(
        NEEDED_SCOPES
    )
    if lacking:
        return fail(subject, "the key lacks " + " and ".join(lacking), fix)
    if unproven:
        return warn(
            subject,
            "credentials/info does not list " + " and ".join(unproven) + " and there was no "
            "game to try it on",
            "run the doctor again once a game is linked",
        )
    return ok(
        subject,
        "not all listed by credentials/info, but itch.io answered the calls that need "
        + " and ".join(missing),
    )


def _games_checks(games: list[Game], game_roles: list[GameRole]) -> list[Check]:
    by_id = {g.id: g for g in games}
    if not games:
        checks = [
            warn(
                "itch.io games",
                "the key's account has no games",
                "use an API key of the account that owns (or can edit) the games",
            )
        ]
    else:
        checks = [ok("itch.io games", f"the key sees {len(games)} game(s)")]
    if not game_roles:
        checks.append(
            warn(
                "linked games",
                "no game is linked to a role yet",
                "run `python -m bot games` for the ids, then `/keys game add` in Discord",
            )
        )
    linked_in: dict[int, list[int]] = {}
    for link in game_roles:
        linked_in.setdefault(link.game_id, []).append(link.guild_id)
    for game_id, guild_ids in sorted(linked_in.items()):
        servers = ", ".join(str(g) for g in guild_ids)
        game = by_id.get(game_id)
        if game is None:
            checks.append(
                fail(
                    f"game {game_id}",
                    f"linked in server(s) {servers}, but it is not among the key's games, so "
                    "every key for it will be refused",
                    "run `python -m bot games` to find the right id, then "
                    f"`/keys game add game_id:<id> role:<role>` and "
                    f"`/keys game remove game_id:{game_id}`",
                )
            )
        else:
            checks.append(
                ok(f"game {game_id}", f'"{game.title}" {game.url or ""} (server(s) {servers})')
            )
    return checks
