"""The bench's world: the real bot, wired as bot.app.application wires it, in this process;
Discord and itch.io (the loopback fakes) in another (bench/outside.py). Members redeem through
the real /redeem command, over real HTTP and a real gateway connection."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import discord

from bench.outside import (
    FIRST_ROLE,
    GUILD,
    Addresses,
    ItchSetup,
    Outside,
    Sent,
    game_url,
)
from bench.seed import build_store
from bot.app import itch_client, point_discord_at
from bot.bot import ItchRoleBot
from bot.itch import DownloadKey, ItchClient, Priority
from bot.keyparse import parse_key
from bot.service import RedeemResult, RedemptionService
from bot.settings import load_settings
from bot.store import Store

FIRST_GAME = 3000
ITCH_DEADLINE = inspect.signature(ItchClient).parameters["deadline"].default


class TimedItchClient(ItchClient):
    """The real itch.io client, also noting when each download-key check ran, by key."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spans: defaultdict[str, list[tuple[float, float]]] = defaultdict(list)

    async def download_key(
        self, game_id: int, key: str, *, priority: Priority = Priority.HIGH
    ) -> DownloadKey:
        started = time.perf_counter()
        try:
            return await super().download_key(game_id, key, priority=priority)
        finally:
            self.spans[key].append((started, time.perf_counter()))

    def seconds_in(self, key: str) -> float:
        """Time spent inside download_key for this key; overlapping checks count once."""
        total, reached = 0.0, float("-inf")
        for start, end in sorted(self.spans.get(key, ())):
            if end > reached:
                total += end - max(start, reached)
                reached = end
        return total


class TimedService:
    """The bot's RedemptionService, also noting when each member's redeem ran."""

    def __init__(self, service: RedemptionService) -> None:
        self._service = service
        self.spans: dict[int, tuple[float, float]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service, name)

    async def redeem(
        self, guild_id: int, member_id: int, text: str, **options: Any
    ) -> RedeemResult:
        started = time.perf_counter()
        try:
            return await self._service.redeem(guild_id, member_id, text, **options)
        finally:
            self.spans[member_id] = (started, time.perf_counter())


@dataclass(frozen=True)
class Attempt:
    """One /redeem: what the member saw, and where the time went."""

    member_id: int
    key: str
    title: str  # of the reply's embed
    seconds: float  # from the interaction reaching the bot to the reply reaching Discord
    acked_after: float | None  # from the interaction reaching the bot to its deferral
    service_seconds: float  # inside RedemptionService.redeem
    itch_seconds: float  # inside ItchClient.download_key (rate limiter's wait included)

    @property
    def outside_itch(self) -> float:
        """The whole interaction but the itch.io call: what the bot and Discord add."""
        return max(0.0, self.seconds - self.itch_seconds)

    @property
    def service_outside_itch(self) -> float:
        """The redemption service but the itch.io call: parse, store, role request."""
        return max(0.0, self.service_seconds - self.itch_seconds)


@dataclass
class BenchWorld:
    outside: Outside
    bot: ItchRoleBot
    client: TimedItchClient
    service: TimedService
    games: list[int]
    rate_limit: float  # the bot's ITCH_RATE_LIMIT

    async def add_members(self, n: int) -> list[int]:
        return await self.outside.call("add_members", n)

    async def add_keys(self, game_id: int, n: int) -> list[str]:
        return await self.outside.call("add_keys", game_id, n)

    async def request_count(self) -> int:
        """Requests itch.io received so far (of any kind)."""
        return await self.outside.call("request_count")

    async def key_requests(self, since: int = 0) -> list[tuple[float, int | None]]:
        """(arrival time, status) of download_keys requests itch.io received since `since`."""
        return [(at, status) for at, status in await self.outside.call("key_requests", since)]

    async def throttled(self) -> int:
        """Requests itch.io answered with 429."""
        return await self.outside.call("throttled")

    async def wait_idle(self, units: float) -> None:
        """Until the bot's itch.io budget could send `units` requests at once."""
        shortfall = units - self.client.idle_capacity()
        if shortfall > 0:
            await asyncio.sleep(shortfall / self.rate_limit + 0.005)

    async def redeem_many(
        self,
        pairs: Iterable[tuple[int, str]],
        concurrency: int | None = None,
        stagger: float = 0.0,
    ) -> list[Attempt]:
        """(member, key or URL) pairs: all at once, or `concurrency` members at a time."""
        sent = await self.outside.call("redeem", list(pairs), concurrency, stagger)
        attempts = []
        for s in (Sent(**fields) for fields in sent):
            key = parse_key(s.text).key
            attempts.append(
                Attempt(
                    member_id=s.member_id,
                    key=key,
                    title=s.title,
                    seconds=s.replied - s.sent,
                    acked_after=None if s.acked is None else s.acked - s.sent,
                    service_seconds=_length(self.service.spans.get(s.member_id)),
                    itch_seconds=self.client.seconds_in(key),
                )
            )
        return attempts

    async def redeem(self, member_id: int, text: str) -> Attempt:
        (attempt,) = await self.redeem_many([(member_id, text)])
        return attempt


def _length(span: tuple[float, float] | None) -> float:
    return 0.0 if span is None else span[1] - span[0]


@contextlib.contextmanager
def _logging_to(path: Path) -> Iterator[None]:
    """What production logs (INFO) goes to a file: writing it is part of the bot's cost."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.setLevel(level)
        root.removeHandler(handler)
        handler.close()


def bot_env(where: Addresses, db_path: Path, setup: ItchSetup) -> dict[str, str]:
    """The settings of a bot pointed at the outside world, as environment variables."""
    return {
        "DISCORD_TOKEN": where.discord_token,
        "ITCH_API_KEY": where.itch_api_key,
        "ITCH_API_BASE": where.itch_api_base,
        "DATABASE_URL": f"sqlite:///{db_path}",
        "DISCORD_GUILD_ID": str(GUILD),
        "DISCORD_API_BASE": where.discord_api_base,
        "DISCORD_GATEWAY_URL": where.discord_gateway_url,
        "ITCH_RATE_LIMIT": f"{setup.client_limit:g}",
        "ITCH_RATE_BURST": str(setup.client_burst),
        "LOG_LEVEL": "INFO",
        # Background re-checks would spend itch.io budget in the middle of a measurement.
        "RECHECK_INTERVAL_HOURS": "0",
    }


async def ready_or_failed(outside: Outside, bot_task: asyncio.Task, count: int = 1) -> None:
    """Until Discord sent READY; a bot that dies starting up raises here, not after a timeout."""
    ready = asyncio.create_task(outside.call("wait_ready", count, 60.0))
    await asyncio.wait({ready, bot_task}, return_when=asyncio.FIRST_COMPLETED)
    if not ready.done():
        bot_task.result()  # raises what stopped the bot
        raise RuntimeError("the bot stopped before Discord sent READY")
    ready.result()


async def _stop(bot: ItchRoleBot, task: asyncio.Task) -> None:
    await bot.close()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 30)


def _restore_discord(base: str, gateway: Any) -> None:
    discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = base, gateway


@contextlib.asynccontextmanager
async def bench_world(
    workdir: Path,
    name: str,
    *,
    games: int,
    setup: ItchSetup,
    history: int = 0,
) -> AsyncIterator[BenchWorld]:
    """A running bot with `games` games linked to buyer roles. Its store is fresh, or holds
    `history` past redemptions of every game but the last (the newest), until yesterday."""
    game_ids = [FIRST_GAME + i for i in range(games)]
    db_path = workdir / f"{name}.db"
    if history:
        older = [(g, FIRST_ROLE + i) for i, g in enumerate(game_ids[:-1])]
        await build_store(db_path, history, GUILD, older)
    async with contextlib.AsyncExitStack() as stack:
        stack.enter_context(_logging_to(workdir / f"{name}.log"))
        stack.callback(
            _restore_discord,
            discord.http.Route.BASE,
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY,
        )
        outside = await stack.enter_async_context(Outside.running(game_ids, setup))
        assert outside.addresses is not None
        settings = load_settings(bot_env(outside.addresses, db_path, setup))
        # From here on, as bot.app.application builds the bot for `python -m bot`.
        point_discord_at(settings.discord_api_base, settings.discord_gateway_url)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        client = itch_client(
            session,
            settings,
            client_class=TimedItchClient,
            deadline=ITCH_DEADLINE / setup.speedup,
        )
        store = await Store.open(settings.database_path)
        stack.push_async_callback(store.close)
        for i, game_id in enumerate(game_ids):
            # What `/keys game add` stores, my-games' title and URL included.
            await store.set_game_role(
                GUILD, game_id, FIRST_ROLE + i, f"Game {game_id}", game_url(game_id)
            )
        # discord.py would wait 2 s for more guilds before on_ready (tests shorten it too).
        bot = await stack.enter_async_context(
            ItchRoleBot(settings, store, client, guild_ready_timeout=0.05)
        )
        # The /redeem command finds the service on the bot at each call.
        service = TimedService(bot.service)
        bot.service = service  # type: ignore[assignment]
        task = asyncio.create_task(bot.start(settings.discord_token.get()))
        stack.push_async_callback(_stop, bot, task)
        await ready_or_failed(outside, task)
        await bot.wait_until_ready()
        yield BenchWorld(
            outside=outside,
            bot=bot,
            client=client,
            service=service,
            games=game_ids,
            rate_limit=settings.itch_rate_limit,
        )
