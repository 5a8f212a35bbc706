"""`python -m bot doctor` against the loopback Discord and itch.io: a healthy set-up, then each
broken one, with its exit status and the line that says what to fix."""

from __future__ import annotations

import asyncio
import io
import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import discord
import pytest

from bot.doctor import diagnose, report, run_doctor
from bot.settings import Secret
from bot.store import Store
from tests.e2e.conftest import (
    BUYER_A,
    BUYER_B,
    GAME_A,
    GAME_B,
    GUILD,
    HIGH_ROLE,
    OTHER_GUILD,
    World,
    build_world,
)
from tests.fakes import itch_fake
from tests.fakes.discord_fake import SEND_MESSAGES, VIEW_CHANNEL, FakeDiscord
from tests.fakes.itch_fake import FakeItch

ROOT = Path(__file__).resolve().parents[1]
FAST_ITCH = {"timeout": 0.5, "max_attempts": 2, "backoff_base": 0.01, "deadline": 3.0}
GATEWAY_GUILD_MEMBERS = 1 << 14


@pytest.fixture
async def world(tmp_path) -> AsyncIterator[World]:
    """The e2e world (two servers, two itch.io games), both games linked, commands synced."""
    fake, itch = FakeDiscord(), FakeItch()
    await fake.start()
    await itch.start()
    original = discord.http.Route.BASE
    try:
        world = build_world(fake, itch, tmp_path / "bot.db")
        await link(world, (GAME_A, BUYER_A), (GAME_B, BUYER_B))
        fake.global_commands = [{"name": "redeem"}, {"name": "keys"}]
        yield world
    finally:
        discord.http.Route.BASE = original
        await itch.close()
        await fake.close()


async def link(world: World, *pairs: tuple[int, int]) -> None:
    store = await Store.open(world.db_path)
    try:
        for game_id, role_id in pairs:
            await store.set_game_role(GUILD, game_id, role_id, None, None)
    finally:
        await store.close()


async def doctor(world: World, **settings) -> tuple[int, list[str]]:
    out = io.StringIO()
    status = report(await diagnose(world.settings(**settings), itch_options=FAST_ITCH), out)
    text = out.getvalue()
    for secret in (world.discord.token, world.itch.api_key):
        assert secret not in text
    return status, text.splitlines()


def the_line(lines: list[str], start: str) -> str:
    (found,) = [line for line in lines if line.startswith(start)]
    return found


async def test_healthy_set_up_passes_every_check(world):
    status, lines = await doctor(world)
    assert status == 0
    checks = lines[: lines.index("")]
    assert checks and all(line.startswith("ok  ") for line in checks), "\n".join(lines)
    assert lines[-1] == "All checks passed."
    assert the_line(lines, "ok    Discord token") == (
        f"ok    Discord token: valid: the bot is FakeBot ({world.discord.bot_user_id})"
    )
    assert the_line(lines, "ok    Server Members intent") == "ok    Server Members intent: enabled"
    assert the_line(lines, f'ok    server "Game Studio" ({GUILD}): the bot')
    assert the_line(lines, f'ok    server "Game Studio" ({GUILD}), game {GAME_A}') == (
        f'ok    server "Game Studio" ({GUILD}), game {GAME_A}: role "X-Moon buyer" is below '
        'the bot\'s role "FakeBot"'
    )
    assert the_line(lines, f'ok    server "Other Studio" ({OTHER_GUILD}): no games')
    # The titles are printed, so a wrong id is obvious.
    assert the_line(lines, f"ok    game {GAME_A}") == (
        f'ok    game {GAME_A}: "X-Moon" http://leafo.itch.io/x-moon (server(s) {GUILD})'
    )
    assert the_line(lines, f"ok    game {GAME_B}").startswith(f'ok    game {GAME_B}: "Y-Sun"')
    assert "schema version" in the_line(lines, "ok    database")
    # Read-only toward Discord.
    assert {r.method for r in world.discord.requests} == {"GET"}


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (
            "bad Discord token",
            "FAIL  Discord token: Discord refused DISCORD_TOKEN — fix: in the Discord developer "
            "portal open your application → Bot → Reset Token",
        ),
        (
            "members intent off",
            "FAIL  Server Members intent: disabled, so Discord would refuse the bot at login — "
            "fix: in the Discord developer portal",
        ),
        (
            "no Manage Roles",
            f'FAIL  server "Game Studio" ({GUILD}): the bot lacks the Manage Roles permission, so '
            'it can\'t give any role — fix: Server Settings → Roles → "FakeBot" → turn on '
            "Manage Roles",
        ),
        (
            "role above the bot",
            f'FAIL  server "Game Studio" ({GUILD}), game {GAME_A}: role "Above the bot" is not '
            "below the bot's highest role \"FakeBot\", so Discord won't let the bot give it — "
            'fix: Server Settings → Roles: drag "FakeBot" above "Above the bot"',
        ),
        (
            "bad itch.io key",
            "FAIL  itch.io API key: itch.io refused ITCH_API_KEY (invalid key) — fix: generate a "
            "key at itch.io → Settings → API keys",
        ),
        (
            "scoped key without game:view:purchases",
            "FAIL  itch.io scopes: the key lacks game:view:purchases — fix: use an unscoped key "
            "from itch.io → Settings → API keys, or a key with profile:games and "
            "game:view:purchases",
        ),
        (
            "scoped key with neither scope",
            "FAIL  itch.io scopes: the key lacks profile:games and game:view:purchases",
        ),
        (
            "unknown game id",
            f"FAIL  game 777: linked in server(s) {GUILD}, but it is not among the key's games, "
            "so every key for it will be refused — fix: run `python -m bot games` to find the "
            "right id",
        ),
        (
            "bot in no server",
            "FAIL  servers: the bot is in no server — fix: invite it: "
            "https://discord.com/oauth2/authorize?client_id=",
        ),
        (
            "DISCORD_GUILD_ID elsewhere",
            "FAIL  DISCORD_GUILD_ID: 555 is not a server the bot is in",
        ),
        (
            "database from a newer version",
            "FAIL  database: ",
        ),
    ],
)
async def test_each_broken_set_up_fails_with_its_fix(world, breakage, expected):
    settings = {}
    match breakage:
        case "bad Discord token":
            settings["discord_token"] = Secret("not-the-token")
        case "members intent off":
            world.discord.app_flags = 0
        case "no Manage Roles":
            world.guild.set_bot_permissions(SEND_MESSAGES | VIEW_CHANNEL)
        case "role above the bot":
            await link(world, (GAME_A, HIGH_ROLE))
        case "bad itch.io key":
            settings["itch_api_key"] = Secret("not-the-key")
        case "scoped key without game:view:purchases":
            world.itch.add_api_key(world.itch.api_key, scopes=["profile:me", "profile:games"])
        case "scoped key with neither scope":
            world.itch.add_api_key(world.itch.api_key, scopes=["profile:me"])
        case "unknown game id":
            await link(world, (777, BUYER_A))
        case "bot in no server":
            world.discord.guilds.clear()
        case "DISCORD_GUILD_ID elsewhere":
            settings["discord_guild_id"] = 555
        case "database from a newer version":
            with sqlite3.connect(world.db_path) as db:
                db.execute("PRAGMA user_version=99")
    status, lines = await doctor(world, **settings)
    assert status == 1
    assert any(line.startswith(expected) for line in lines), "\n".join(lines)
    assert lines[-1].endswith("fix them, then run `make doctor` again.")
    if breakage == "database from a newer version":
        assert "newer than this version of the bot" in the_line(lines, "FAIL  database")
    if breakage == "bad Discord token":
        assert the_line(lines, "skip  Discord servers and roles")


@pytest.mark.parametrize(
    "scopes",
    [
        ["profile:games", "game:view:purchases"],
        ["profile", "game"],  # a scope gives all its subscopes
        ["profile:games", "game:view"],
    ],
)
async def test_scopes_that_cover_what_is_needed_pass(world, scopes):
    world.itch.add_api_key(world.itch.api_key, scopes=scopes)
    status, lines = await doctor(world)
    assert status == 0, "\n".join(lines)
    assert the_line(lines, "ok    itch.io scopes")


async def test_unscoped_key_listing_fewer_scopes_passes_after_trying(world, monkeypatch):
    # itch.io's reference shows an API key's credentials/info listing only these two.
    monkeypatch.setattr(itch_fake, "ALL_SCOPES", ["profile:me", "profile:games"])
    status, lines = await doctor(world)
    assert status == 0, "\n".join(lines)
    assert the_line(lines, "ok    itch.io scopes") == (
        "ok    itch.io scopes: not all listed by credentials/info, but itch.io answered the "
        "calls that need game:view:purchases"
    )
    probes = [r for r in world.itch.requests if "download_keys" in r.path]
    assert len(probes) == 1


async def test_limited_members_intent_flag_also_counts(world):
    world.discord.app_flags = GATEWAY_GUILD_MEMBERS
    status, lines = await doctor(world)
    assert status == 0
    assert the_line(lines, "ok    Server Members intent")


async def test_warnings_do_not_fail(world, tmp_path):
    world.discord.global_commands = []
    status, lines = await doctor(world, database_path=tmp_path / "new" / "bot.db")
    assert status == 0
    assert the_line(lines, "warn  slash commands: none registered globally yet")
    assert the_line(lines, "warn  linked games: no game is linked to a role yet")
    assert the_line(lines, "ok    database").endswith("the bot creates it at its first start")
    assert not (tmp_path / "new").exists()  # the doctor never creates anything


async def test_invalid_settings_are_the_one_failure(world):
    out = io.StringIO()
    status = await run_doctor({"ITCH_API_KEY": "x"}, out)
    assert status == 1
    assert out.getvalue().splitlines()[:2] == [
        "FAIL  settings: DISCORD_TOKEN is required but not set (see .env.example) — fix: set "
        "DISCORD_TOKEN in .env (or the environment), then run the doctor again",
        "skip  other checks: not checked until the settings are valid",
    ]


async def test_python_m_bot_doctor(world, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "ITCH_"))}
    env.update(
        DISCORD_TOKEN=world.discord.token,
        ITCH_API_KEY=world.itch.api_key,
        ITCH_API_BASE=world.itch.base_url,
        DATABASE_URL=f"sqlite:///{world.db_path}",
        DISCORD_API_BASE=world.discord.base_url,
        PYTHONPATH=str(ROOT),
    )
    world.guild.set_bot_permissions(SEND_MESSAGES | VIEW_CHANNEL)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "doctor",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1, err.decode()
    text = out.decode()
    assert f'FAIL  server "Game Studio" ({GUILD}): the bot lacks the Manage Roles' in text
    assert "ok    itch.io API key: accepted by itch.io" in text
    for secret in (world.discord.token, world.itch.api_key):
        assert secret not in text + err.decode()
