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
        await wait_started(world, proc, 1)
        await world.discord.wait_for_request(
            lambda r: r.method == "PUT" and r.path.endswith(f"/guilds/{GUILD}/commands"),
            timeout=30,
        )
        await link_game(world)
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


async def wait_started(world, proc, readies: int) -> None:
    """Until Discord sent READY to the process; fails at once if the process died."""
    ready = asyncio.ensure_future(world.discord.wait_ready(timeout=30, count=readies))
    died = asyncio.ensure_future(proc.wait())
    done, _ = await asyncio.wait({ready, died}, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:
        ready.cancel()
        err = await proc.stderr.read()
        raise AssertionError(f"the bot exited with {proc.returncode}: {err.decode()[-2000:]}")
    died.cancel()
    await ready


async def link_game(world) -> None:
    handle = await world.discord.slash(
        GUILD,
        309,
        "keys",
        [{"name": "game_id", "value": GAME_A}, {"name": "role", "value": str(BUYER_A)}],
        subcommand=["game", "add"],
        permissions=1 << 5,
    )
    assert (await handle.final(timeout=15))["embeds"][0]["title"] == "Game linked"


def told_success(handle) -> bool:
    message = handle.message or {}
    embeds = message.get("embeds") or []
    return bool(embeds) and embeds[0].get("title") == "Key redeemed"


async def burst(world, count: int, first_member: int = 5000):
    members = []
    for i in range(count):
        member = first_member + i
        world.guild.add_member(member, f"buyer{i}")
        key = f"BurstKey{i:04d}".ljust(32, "k")
        world.itch.add_download_key(GAME_A, key)
        members.append((member, key))
    handles = await asyncio.gather(
        *(
            world.discord.slash(GUILD, m, "redeem", [{"name": "key", "value": k}])
            for m, k in members
        )
    )
    return list(zip(members, handles, strict=True))


async def wait_for_successes(sent, at_least: int, within: float = 20) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while sum(told_success(h) for _, h in sent) < at_least:
        assert loop.time() < deadline, "the burst never got going"
        await asyncio.sleep(0.01)


def stored_members(db_path) -> dict[int, tuple]:
    import sqlite3

    db = sqlite3.connect(db_path)
    try:
        rows = db.execute(
            "SELECT member_id, key_hash, role_id, status FROM redemptions WHERE guild_id=?",
            (GUILD,),
        ).fetchall()
    finally:
        db.close()
    return {r[0]: r for r in rows}


async def test_sigkill_mid_burst_loses_nothing_told(world, tmp_path):
    world.itch.latency = 0.02
    proc = await start(world, tmp_path)
    try:
        await wait_started(world, proc, 1)
        await link_game(world)
        sent = await burst(world, 40)
        await wait_for_successes(sent, 8)
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
    told = {m for (m, _), h in sent if told_success(h)}
    assert told
    stored = stored_members(world.db_path)
    assert told <= set(stored)
    # No half-written row: every stored redemption is whole.
    for member, key_hash, role_id, status in stored.values():
        assert len(key_hash) == 64 and role_id == BUYER_A and status == "active", member
    # Restart on the same database: reconciliation gives every recorded buyer the role,
    # including any recorded just before the kill whose role request never went out.
    for member in stored:
        world.guild.members[member]["roles"] = []
    proc = await start(world, tmp_path)
    try:
        await wait_started(world, proc, 2)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while not all(BUYER_A in world.guild.member_roles(m) for m in stored):
            assert loop.time() < deadline, "reconciliation did not restore every recorded role"
            await asyncio.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 10)
    assert proc.returncode == 0


async def test_sigterm_mid_burst_exits_cleanly_and_keeps_every_success(world, tmp_path):
    world.itch.latency = 0.02
    proc = await start(world, tmp_path)
    try:
        await wait_started(world, proc, 1)
        await link_game(world)
        sent = await burst(world, 30)
        await wait_for_successes(sent, 5)
    finally:
        proc.send_signal(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        started = loop.time()
        _, err = await asyncio.wait_for(proc.communicate(), 10)
        elapsed = loop.time() - started
    assert proc.returncode == 0, err.decode()[-2000:]
    assert elapsed < 10
    told = {m for (m, _), h in sent if told_success(h)}
    stored = stored_members(world.db_path)
    assert told <= set(stored)
    # Everything recorded has its role: the stop let in-flight redemptions finish.
    assert all(BUYER_A in world.guild.member_roles(m) for m in stored)
    # The database was closed cleanly (WAL checkpointed into the main file).
    wal = world.db_path.with_name(world.db_path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
