"""Discord and itch.io, in a process of their own.

The loopback fakes run in a child process so that the bot's process does only the bot's work:
on two cores the bot gets one and "the outside world" the other, as in production, where
Discord and itch.io do their work elsewhere. The bench drives the child (`python -m
bench.outside`) one call at a time: a JSON line on its stdin, a JSON line back on its stdout.
Both processes read the same monotonic clock (time.perf_counter), so a time stamped in one can
be compared with a time stamped in the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import random
import string
import sys
import time
import traceback
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakes.discord_fake import FakeDiscord
from tests.fakes.itch_fake import FakeItch

GUILD = 100
CHANNEL = 400
FIRST_ROLE = 500
FIRST_MEMBER = 1_000_000
REPLY_TIMEOUT = 600.0
_LINE_LIMIT = 64 * 1024 * 1024  # one JSON line per call or answer (thousands of attempts)

_KEY_ALPHABET = string.ascii_letters + string.digits
ROOT = Path(__file__).resolve().parents[1]


def game_url(game_id: int) -> str:
    """The game's page, as itch.io's my-games gives it (and download URLs start with it)."""
    return f"https://dev.itch.io/game-{game_id}"


def role_of(games: list[int], game_id: int) -> int:
    return FIRST_ROLE + games.index(game_id)


REAL_LIMIT = 8.0  # itch.io's requests per second; the bench scales it up to keep runs short


@dataclass(frozen=True)
class ItchSetup:
    """How the itch.io fake answers, and what the bot allows itself."""

    latency: float  # seconds per answer
    limit: float | None  # the fake's requests per second (None: unlimited)
    burst: int  # how many requests the fake accepts at once from idle
    client_limit: float  # the bot's ITCH_RATE_LIMIT
    client_burst: int  # the bot's ITCH_RATE_BURST

    @property
    def speedup(self) -> float:
        """How much faster than itch.io's real limit the budget runs: the bot's own time
        limits (its itch.io deadline) shrink by as much, so queues meet them as they would."""
        return max(1.0, self.client_limit / REAL_LIMIT)


@dataclass(frozen=True)
class Addresses:
    discord_token: str
    discord_api_base: str
    discord_gateway_url: str
    itch_api_key: str
    itch_api_base: str


@dataclass(frozen=True)
class Sent:
    """One /redeem as Discord saw it; times are time.perf_counter() values."""

    member_id: int
    text: str
    sent: float  # the interaction was written to the bot's gateway connection
    acked: float | None  # the bot's first response (the deferral) arrived
    replied: float  # the reply (edit of the original response) arrived
    title: str  # of the reply's embed


class BenchDiscord(FakeDiscord):
    """The Discord fake, noting when each interaction is acknowledged and answered."""

    def __init__(self) -> None:
        super().__init__()
        self.acked: dict[str, float] = {}
        self._replied: dict[str, float] = {}
        self._waiting: dict[str, asyncio.Future[float]] = {}

    def _reply_arrived(self, token: str) -> None:
        at = self._replied.setdefault(token, time.perf_counter())
        waiter = self._waiting.pop(token, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(at)

    async def _interaction_callback(
        self, record: Any, interaction_id: str, token: str
    ) -> tuple[int, Any]:
        answer = await super()._interaction_callback(record, interaction_id, token)
        self.acked.setdefault(token, time.perf_counter())
        return answer

    async def _hook_edit(
        self, record: Any, app_id: str, token: str, message_id: str
    ) -> tuple[int, Any]:
        answer = await super()._hook_edit(record, app_id, token, message_id)
        self._reply_arrived(token)
        return answer

    async def _webhook_execute(self, record: Any, app_id: str, token: str) -> tuple[int, Any]:
        answer = await super()._webhook_execute(record, app_id, token)
        self._reply_arrived(token)
        return answer

    async def reply_at(self, token: str) -> float:
        if token in self._replied:
            return self._replied[token]
        waiter = self._waiting[token] = asyncio.get_running_loop().create_future()
        return await asyncio.wait_for(waiter, REPLY_TIMEOUT)


class OutsideWorld:
    """What the child process runs: the two fakes, and members typing /redeem."""

    def __init__(self) -> None:
        self.discord = BenchDiscord()
        self.itch = FakeItch()
        self._rng = random.Random(6)
        self._next_member = FIRST_MEMBER

    async def setup(self, games: list[int], itch_setup: dict[str, Any]) -> Addresses:
        setup = ItchSetup(**itch_setup)
        await self.discord.start()
        await self.itch.start()
        guild = self.discord.add_guild(GUILD, "Launch Day")
        guild.add_channel(CHANNEL, "general")
        for game_id in games:
            guild.add_role(role_of(games, game_id), f"Buyer of {game_id}", 1 + games.index(game_id))
            self.itch.add_game(game_id, f"Game {game_id}", url=game_url(game_id))
        self.itch.latency = setup.latency
        self.itch.rate_limit = setup.limit
        self.itch.burst = setup.burst
        return Addresses(
            discord_token=self.discord.token,
            discord_api_base=self.discord.base_url,
            discord_gateway_url=self.discord.gateway_url,
            itch_api_key=self.itch.api_key,
            itch_api_base=self.itch.base_url,
        )

    async def close(self) -> None:
        await self.itch.close()
        await self.discord.close()

    async def add_members(self, n: int) -> list[int]:
        ids = list(range(self._next_member, self._next_member + n))
        self._next_member += n
        guild = self.discord.guilds[GUILD]
        for member_id in ids:
            guild.add_member(member_id, f"buyer{member_id}")
        return ids

    async def add_keys(self, game_id: int, n: int) -> list[str]:
        keys = ["".join(self._rng.choices(_KEY_ALPHABET, k=32)) for _ in range(n)]
        for key in keys:
            self.itch.add_download_key(game_id, key)
        return keys

    async def wait_ready(self, count: int, timeout: float) -> None:  # noqa: ASYNC109
        await self.discord.wait_ready(timeout, count=count)

    async def request_count(self) -> int:
        return len(self.itch.requests)

    async def key_requests(self, since: int) -> list[tuple[float, int | None]]:
        """(time.monotonic() of arrival, status) of the download_keys requests since `since`."""
        return [
            (r.time, r.status)
            for r in self.itch.requests[since:]
            if r.path.endswith("/download_keys")
        ]

    async def throttled(self) -> int:
        return self.itch.throttled

    async def redeem(
        self, pairs: list[tuple[int, str]], concurrency: int | None, stagger: float
    ) -> list[Sent]:
        """Members type /redeem: all at once, or `concurrency` at a time (each starting
        `stagger` seconds after the previous one, then redeeming member after member)."""
        done: list[Sent] = []

        async def one(member_id: int, text: str) -> None:
            handle = await self.discord.slash(
                GUILD, member_id, "redeem", [{"name": "key", "value": text}]
            )
            sent = time.perf_counter()
            replied = await self.discord.reply_at(handle.token)
            embeds = (handle.message or {}).get("embeds") or [{}]
            done.append(
                Sent(
                    member_id=member_id,
                    text=text,
                    sent=sent,
                    acked=self.discord.acked.get(handle.token),
                    replied=replied,
                    title=str(embeds[0].get("title", "")),
                )
            )

        if concurrency is None:
            await asyncio.gather(*(one(m, t) for m, t in pairs))
            return done
        queue = list(reversed(pairs))

        async def member_after_member(position: int) -> None:
            await asyncio.sleep(position * stagger)
            while queue:
                await one(*queue.pop())

        await asyncio.gather(*(member_after_member(i) for i in range(concurrency)))
        return done


async def _serve() -> None:
    """Answer the bench's calls: one JSON line in on stdin, one JSON line out."""
    loop = asyncio.get_running_loop()
    calls = asyncio.StreamReader(limit=_LINE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(calls), sys.stdin)
    # Answers go to the real stdout; anything else printed lands on stderr.
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    world = OutsideWorld()
    while line := await calls.readline():
        method, args = json.loads(line)
        try:
            value = await getattr(world, method)(*args)
        except Exception:
            answer = {"ok": False, "error": traceback.format_exc()}
        else:
            answer = {"ok": True, "value": _plain(value)}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
        if method == "close":
            return


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class Outside:
    """The bench's handle on the outside world's process."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self.addresses: Addresses | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, games: list[int], setup: ItchSetup) -> AsyncIterator[Outside]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.outside",
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=_LINE_LIMIT,
        )
        outside = cls(process)
        try:
            outside.addresses = Addresses(
                **await outside.call("setup", games, dataclasses.asdict(setup))
            )
            yield outside
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(outside.call("close"), 10)
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()

    async def call(self, method: str, *args: Any) -> Any:
        process = self._process
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write((json.dumps([method, list(args)]) + "\n").encode())
        await process.stdin.drain()
        line = await process.stdout.readline()
        if not line:
            raise RuntimeError(f"the outside world's process ended during {method}")
        answer = json.loads(line)
        if not answer["ok"]:
            raise RuntimeError(f"the outside world failed in {method}:\n{answer['error']}")
        return answer["value"]


if __name__ == "__main__":
    asyncio.run(_serve())
