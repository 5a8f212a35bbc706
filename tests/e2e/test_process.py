"""`python -m bot` as a real process, pointed at the loopback fakes by its settings."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.e2e.conftest import ALICE, BUYER_A, GAME_A, GUILD, KEY

ROOT = Path(__file__).resolve().parents[2]


def process_env(world, **over) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "ITCH_"))}
    env.update(
        DISCORD_TOKEN=world.discord.token,
        ITCH_API_KEY=world.itch.api_key,
        ITCH_API_BASE=world.itch.base_url,
        DATABASE_URL=f"sqlite:///{world.db_path}",
        DISCORD_API_BASE=world.discord.base_url,
        DISCORD_GATEWAY_URL=world.discord.gateway_url,
        DISCORD_GUILD_ID=str(GUILD),
        PYTHONPATH=str(ROOT),
    )
    env.update(over)
    return env


async def start(world, tmp_path, **over) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=tmp_path,
        env=process_env(world, **over),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_token_rejected_at_login_is_one_line(world, tmp_path):
    proc = await start(world, tmp_path, DISCORD_TOKEN="not-the-token")
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode != 0
    lines = [line for line in err.decode().splitlines() if "DISCORD_TOKEN" in line]
    assert len(lines) == 1 and "Traceback" not in err.decode()
    assert "not-the-token" not in err.decode()


async def test_process_redeems_then_stops_cleanly_on_sigterm(world, tmp_path):
    world.itch.add_download_key(GAME_A, KEY)
    proc = await start(world, tmp_path)
    try:
        await world.discord.wait_ready(timeout=30)
        await world.discord.wait_for_request(
            lambda r: r.method == "PUT" and r.path.endswith(f"/guilds/{GUILD}/commands"),
            timeout=30,
        )
        handle = await world.discord.slash(
            GUILD,
            309,
            "keys",
            [{"name": "game_id", "value": GAME_A}, {"name": "role", "value": str(BUYER_A)}],
            subcommand=["game", "add"],
            permissions=1 << 5,
        )
        assert (await handle.final(timeout=15))["embeds"][0]["title"] == "Game linked"
        handle = await world.discord.slash(GUILD, ALICE, "redeem", [{"name": "key", "value": KEY}])
        assert (await handle.final(timeout=15))["embeds"][0]["title"] == "Key redeemed"
        assert BUYER_A in world.guild.member_roles(ALICE)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 0, err.decode()[-2000:]
    log = err.decode()
    for secret in (KEY, world.itch.api_key, world.discord.token):
        assert secret not in log
