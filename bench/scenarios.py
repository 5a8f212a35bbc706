"""The six scenarios of `make bench`, each returning its figures beside their bounds."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.outside import FIRST_ROLE, GUILD, ROOT, ItchSetup, Outside, game_url
from bench.report import Figure, at_least, at_most, under
from bench.seed import build_store, seeded_key, seeded_member
from bench.world import FIRST_GAME, Attempt, bench_world, bot_env
from bot.keyparse import key_hash
from bot.service import Outcome, RedeemResult
from bot.store import Store
from cogs.replies import redeem_embed

REDEEMED = redeem_embed(RedeemResult(Outcome.REDEEMED)).title
ALREADY = redeem_embed(RedeemResult(Outcome.ALREADY_REDEEMED)).title
DISCORD_ACK_LIMIT = 3.0  # seconds Discord waits for an interaction's first response


@dataclass(frozen=True)
class Scale:
    """How big each scenario is. FULL is `make bench`; the smoke test uses a tiny one."""

    latency: float = 0.1  # itch.io's answer time, seconds
    limit: float = 50.0  # itch.io's requests/s (8 in reality, scaled up to keep runs short)
    itch_burst: int = 20  # what itch.io accepts at once (its Go client: "8/s, burst of 20")
    # ITCH_RATE_BURST. In production 15 (as itch.io's own client): the 5 below itch.io's 20
    # forgive 0.6 s of jitter at 8 r/s. At 50 r/s the same 0.6 s is 30 requests, so the bench
    # keeps 15 in hand (0.3 s): a thousand interactions at once delay some sends by ~0.2 s.
    client_burst: int = 5
    burst_members: int = 1000
    games: int = 5
    multi_history: int = 20_000  # past redemptions of the older games (a year of sales)
    early_buyers: int = 20  # launch day's first buyers, before the crowd
    multi_burst_members: int = 300
    overhead_members: int = 2000
    overhead_concurrency: int = 50
    reference_requests: int = 200
    store_sizes: tuple[int, ...] = (100_000, 1_000_000)
    lookups: int = 2000
    single_inserts: int = 1000
    startup_settle: float = 3.0  # discord.py waits 2 s for guilds before on_ready
    naive_sample: int = 100

    def itch(self) -> ItchSetup:
        return ItchSetup(
            latency=self.latency,
            limit=self.limit,
            burst=self.itch_burst,
            client_limit=self.limit,
            client_burst=self.client_burst,
        )


FULL = Scale()


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _count(attempts: Sequence[Attempt], title: str) -> int:
    return sum(1 for a in attempts if a.title == title)


def _rate(arrivals: Sequence[float]) -> float:
    """Requests per second between the first and the last arrival."""
    if len(arrivals) < 2:
        return 0.0
    return (len(arrivals) - 1) / (max(arrivals) - min(arrivals))


# -- 1 and 3: a burst of distinct keys, then the same members again --------------------------


async def burst_and_repeats(scale: Scale, workdir: Path) -> tuple[list[Figure], float]:
    """Figures of scenarios 1 and 3, and the burst's wall time (for the naive baseline)."""
    n = scale.burst_members
    async with bench_world(workdir, "burst", games=1, setup=scale.itch()) as world:
        members = await world.add_members(n)
        keys = await world.add_keys(world.games[0], n)
        started = time.perf_counter()
        attempts = await world.redeem_many(zip(members, keys, strict=True))
        wall = time.perf_counter() - started
        accepted = [at for at, status in await world.key_requests() if status == 200]
        throttled = await world.throttled()
        acks = [a.acked_after for a in attempts if a.acked_after is not None]

        before = await world.request_count()
        again = await world.redeem_many(
            zip(members, keys, strict=True), concurrency=scale.overhead_concurrency
        )
        repeat_requests = await world.request_count() - before

    s1, s3 = "1 burst", "3 repeats"
    return [
        Figure(s1, f"{n:,} members, {n:,} keys at once: redeemed", _count(attempts, REDEEMED),
               bound=at_least(n)),
        Figure(s1, "itch.io requests/s ÷ limit", _rate(accepted) / scale.limit,
               bound=at_least(0.95)),
        Figure(s1, "429 answers from itch.io", throttled, bound=at_most(0)),
        Figure(s1, "itch.io requests/s", _rate(accepted), "r/s"),
        Figure(s1, "whole burst, first /redeem to last reply", wall, "s"),
        Figure(s1, "slowest first response (Discord allows 3 s)", max(acks, default=0.0), "s",
               bound=under(DISCORD_ACK_LIMIT)),
        Figure(s3, f"the same {n:,} members again: itch.io requests", repeat_requests,
               bound=at_most(0)),
        Figure(s3, "answered as already redeemed", _count(again, ALREADY), bound=at_least(n)),
    ], wall  # fmt: skip


# -- 2: several games ------------------------------------------------------------------------

# How a launch-day crowd spreads over the games of a server: mostly the game just launched,
# some the back catalogue. The new game has the highest id (it was made last) and, unlike the
# others, no past redemptions.
LAUNCH_MIX = (0.05, 0.08, 0.12, 0.15, 0.60)


def _mix(games: list[int], n: int, rng: random.Random) -> list[int]:
    weights = LAUNCH_MIX[-len(games) :] if len(games) <= len(LAUNCH_MIX) else None
    return rng.choices(games, weights=weights, k=n)


async def multi_game(scale: Scale, workdir: Path) -> list[Figure]:
    s = "2 multi-game"
    async with bench_world(
        workdir, "multi", games=scale.games, setup=scale.itch(), history=scale.multi_history
    ) as world:
        n = len(world.games)

        # A bare key with itch.io's budget idle: every game is asked at once.
        idle_trips = []
        idle_requests = 0
        for member, game in zip(await world.add_members(n), world.games, strict=True):
            (key,) = await world.add_keys(game, 1)
            await world.wait_idle(n)
            before = await world.request_count()
            attempt = await world.redeem(member, key)
            idle_requests += await world.request_count() - before
            idle_trips.append(attempt.seconds / scale.latency)

        # A download URL: its game page names the game.
        url_requests = 0
        for member, game in zip(await world.add_members(n), world.games, strict=True):
            (key,) = await world.add_keys(game, 1)
            await world.wait_idle(n)
            before = await world.request_count()
            await world.redeem(member, f"{game_url(game)}/download/{key}")
            url_requests += await world.request_count() - before

        # Launch day: the first buyers come one by one, then the crowd (bare keys, all at
        # once): the budget is the limit now, so requests per key count.
        rng = random.Random(2)
        for member, game in zip(
            await world.add_members(scale.early_buyers),
            _mix(world.games, scale.early_buyers, rng),
            strict=True,
        ):
            (key,) = await world.add_keys(game, 1)
            await world.wait_idle(n)
            await world.redeem(member, key)
        m = scale.multi_burst_members
        pairs = []
        for member, game in zip(await world.add_members(m), _mix(world.games, m, rng), strict=True):
            (key,) = await world.add_keys(game, 1)
            pairs.append((member, key))
        await world.wait_idle(scale.client_burst)
        before = await world.request_count()
        started = time.perf_counter()
        attempts = await world.redeem_many(pairs)
        wall = time.perf_counter() - started
        requests = await world.key_requests(before)
        throttled = await world.throttled()

    return [
        Figure(s, f"bare key, budget idle: reply time in itch.io round trips (worst of {n})",
               max(idle_trips), bound=at_most(1.5)),
        Figure(s, "bare key, budget idle: itch.io requests", idle_requests / n),
        Figure(s, "download URL of a known game page: itch.io requests", url_requests / n,
               bound=at_most(1)),
        Figure(s, f"burst of {m:,} bare keys: redeemed", _count(attempts, REDEEMED),
               bound=at_least(m)),
        Figure(s, f"burst: itch.io requests per bare key ((n+1)/2 = {(n + 1) / 2:g})",
               len(requests) / m, bound=at_most((n + 1) / 2)),
        Figure(s, "burst: redemptions/s", m / wall, "/s"),
        Figure(s, "burst: itch.io requests/s", _rate([at for at, _ in requests]), "r/s"),
        Figure(s, "429 answers from itch.io", throttled, bound=at_most(0)),
    ]  # fmt: skip


# -- 4: the bot's own time -------------------------------------------------------------------


async def overhead(scale: Scale, workdir: Path) -> list[Figure]:
    s = "4 overhead"
    n, c = scale.overhead_members, scale.overhead_concurrency
    async with bench_world(workdir, "overhead", games=1, setup=scale.itch()) as world:
        members = await world.add_members(n)
        keys = await world.add_keys(world.games[0], n)
        cpu = time.process_time()
        # Members arrive one itch.io slot apart, then each redeems right after the last.
        attempts = await world.redeem_many(
            zip(members, keys, strict=True), concurrency=c, stagger=1 / scale.limit
        )
        cpu = time.process_time() - cpu
        # For scale: one role request alone, paced the same way, the member already has it.
        round_trips = []
        for _ in range(scale.reference_requests):
            await asyncio.sleep(1 / scale.limit)
            started = time.perf_counter()
            await world.bot.http.add_role(GUILD, members[0], FIRST_ROLE)
            round_trips.append((time.perf_counter() - started) * 1000)
    whole = [a.outside_itch * 1000 for a in attempts]
    service = [a.service_outside_itch * 1000 for a in attempts]
    return [
        Figure(s, f"{n:,} redemptions, {c} at a time: redeemed", _count(attempts, REDEEMED),
               bound=at_least(n)),
        Figure(s, "service outside the itch.io call (parse, store, role request), p50",
               percentile(service, 0.5), "ms"),
        Figure(s, "service outside the itch.io call (parse, store, role request), p99",
               percentile(service, 0.99), "ms", bound=under(5)),
        Figure(s, "whole interaction outside the itch.io call (+ deferral, reply), p50",
               percentile(whole, 0.5), "ms"),
        Figure(s, "whole interaction outside the itch.io call (+ deferral, reply), p99",
               percentile(whole, 0.99), "ms", bound=under(5)),
        Figure(s, "bot process CPU per redemption", cpu / n * 1000, "ms"),
        Figure(s, "for scale: one role request to the Discord fake, p50",
               percentile(round_trips, 0.5), "ms"),
        Figure(s, "for scale: one role request to the Discord fake, p99",
               percentile(round_trips, 0.99), "ms"),
    ]  # fmt: skip


# -- 5: a big store --------------------------------------------------------------------------


def _size_name(size: int) -> str:
    if size >= 1_000_000 and size % 1_000_000 == 0:
        return f"{size // 1_000_000}M"
    return f"{size // 1000}k" if size % 1000 == 0 else str(size)


async def store_at_scale(scale: Scale, workdir: Path, size: int) -> list[Figure]:
    s = f"5 store {_size_name(size)}"
    games = [(FIRST_GAME + i, FIRST_ROLE + i) for i in range(scale.games)]
    path = workdir / f"store-{size}.db"
    seeded = await build_store(path, size, GUILD, games)
    db_bytes = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))

    rng = random.Random(size)
    by_member, by_key = [], []
    store = await Store.open(path)
    try:
        for _ in range(scale.lookups):
            i = rng.randrange(size)
            started = time.perf_counter()
            found = await store.redemptions_by_member(GUILD, seeded_member(i))
            by_member.append(time.perf_counter() - started)
            digest = key_hash(seeded_key(size, i))
            started = time.perf_counter()
            found += await store.redemptions_by_key(GUILD, digest)
            by_key.append(time.perf_counter() - started)
            assert found, "a seeded redemption was not found"
        started = time.perf_counter()
        for j in range(scale.single_inserts):
            game_id, role_id = games[j % len(games)]
            await store.add_redemption(
                guild_id=GUILD,
                member_id=seeded_member(size + 2 * j),
                game_id=game_id,
                key_id=None,
                key_hash=key_hash(f"fresh{size}x{j:09d}KeyAbCdEfGh"),
                itch_user_id=None,
                itch_username=None,
                role_id=role_id,
            )
        single = scale.single_inserts / (time.perf_counter() - started)
    finally:
        await store.close()

    rss, peak, cpu = await startup_memory(scale, workdir, path, [g for g, _ in games])
    await asyncio.to_thread(_remove_database, path)
    return [
        Figure(s, "bulk load (one transaction)", seeded.per_second, "redemptions/s"),
        Figure(s, "Store.add_redemption one at a time", single, "/s"),
        Figure(s, "lookup by member, p99", percentile(by_member, 0.99) * 1000, "ms",
               bound=under(1)),
        Figure(s, "lookup by key, p99", percentile(by_key, 0.99) * 1000, "ms", bound=under(1)),
        Figure(s, "database size (redemptions + audit)", db_bytes / 2**20, "MiB"),
        Figure(s, "bot process CPU time to start up", cpu, "s"),
        Figure(s, "bot process memory after start-up (RSS)", rss, "MiB"),
        Figure(s, "bot process memory, peak during start-up", peak, "MiB", bound=under(150)),
    ]  # fmt: skip


def _remove_database(path: Path) -> None:
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()


def _memory(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, MiB."""
    fields = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            name, _, value = line.partition(":")
            fields[name] = value.split()
    return int(fields["VmRSS"][0]) / 1024, int(fields["VmHWM"][0]) / 1024


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        after_name = stat.read().rsplit(")", 1)[1].split()
    ticks = int(after_name[11]) + int(after_name[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


async def _settled(pid: int, at_least_for: float) -> None:
    """After `at_least_for` seconds, until the process has used no CPU for half a second."""
    await asyncio.sleep(at_least_for)
    deadline = time.monotonic() + 60
    last = _cpu_seconds(pid)
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now = _cpu_seconds(pid)
        if now == last:
            return
        last = now


async def startup_memory(
    scale: Scale, workdir: Path, db_path: Path, games: list[int]
) -> tuple[float, float, float]:
    """Start `python -m bot` on the store, as in production: its memory once started (RSS and
    peak, MiB) and the CPU time it took."""
    setup = ItchSetup(latency=0.0, limit=None, burst=20, client_limit=8, client_burst=15)
    async with Outside.running(games, setup) as outside:
        assert outside.addresses is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "ITCH_"))}
        env.update(bot_env(outside.addresses, db_path, setup), PYTHONPATH=str(ROOT))
        env["LOG_LEVEL"] = "WARNING"
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            cwd=workdir,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            ready = asyncio.create_task(outside.call("wait_ready", 1, 120.0))
            ended = asyncio.create_task(process.wait())
            await asyncio.wait({ready, ended}, return_when=asyncio.FIRST_COMPLETED)
            if ended.done():
                ready.cancel()
                assert process.stderr is not None
                said = (await process.stderr.read()).decode(errors="replace")[-2000:]
                raise RuntimeError(f"python -m bot stopped at start-up:\n{said}")
            ready.result()
            await _settled(process.pid, scale.startup_settle)
            return *_memory(process.pid), _cpu_seconds(process.pid)
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), 15)
                except TimeoutError:
                    process.kill()
                    await process.wait()


# -- 6: one member at a time -----------------------------------------------------------------


async def naive(scale: Scale, burst_wall: float) -> list[Figure]:
    """The same burst verified as peer bots do: one request at a time, waiting for each.

    A blocking call inside the event loop takes the same time per key; only a sample is run
    (the time is linear in the number of keys) to keep `make bench` short."""
    s = "6 naive baseline"
    n, sample = scale.burst_members, min(scale.naive_sample, scale.burst_members)
    async with Outside.running([FIRST_GAME], scale.itch()) as outside:
        assert outside.addresses is not None
        keys = await outside.call("add_keys", FIRST_GAME, sample)
        url = f"{outside.addresses.itch_api_base}/key/game/{FIRST_GAME}/download_keys"
        headers = {"Authorization": f"Bearer {outside.addresses.itch_api_key}"}
        verified = 0
        async with aiohttp.ClientSession() as session:
            started = time.perf_counter()
            for key in keys:
                async with session.get(url, params={"download_key": key}, headers=headers) as r:
                    verified += r.status == 200 and "download_key" in await r.json()
            per_key = (time.perf_counter() - started) / sample
    return [
        Figure(s, f"keys verified one at a time (a sample of {sample} of the {n:,})",
               verified, bound=at_least(sample)),
        Figure(s, f"time for {n:,} keys one at a time", per_key * n, "s"),
        Figure(s, "naive time ÷ the bot's burst time", per_key * n / burst_wall, "x"),
    ]  # fmt: skip


async def all_scenarios(
    scale: Scale, workdir: Path, only: frozenset[str] = frozenset("123456")
) -> list[Figure]:
    """Every scenario (or those numbered in `only`), figures in scenario order."""
    figures: list[Figure] = []
    burst_wall = None
    if only & {"1", "3", "6"}:
        figures, burst_wall = await burst_and_repeats(scale, workdir)
    if "2" in only:
        figures += await multi_game(scale, workdir)
    if "4" in only:
        figures += await overhead(scale, workdir)
    if "5" in only:
        for size in scale.store_sizes:
            figures += await store_at_scale(scale, workdir, size)
    if "6" in only and burst_wall is not None:
        figures += await naive(scale, burst_wall)
    return sorted((f for f in figures if f.scenario[0] in only), key=lambda f: f.scenario[0])
