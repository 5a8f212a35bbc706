"""Async client for itch.io's server-side API (the legacy `/api/1/KEY/...` endpoints).

Every call goes through one request function that:

* authenticates with `Authorization: Bearer ...` (never puts a credential in the URL path),
* rate-limits itself client-side (a leaky bucket with a burst, with two priorities),
* looks at the JSON body's `errors` array before the HTTP status (itch.io answers errors with
  2xx as well as 4xx statuses),
* retries what may be transient (network errors, timeouts, 5xx, 429, answers that are not a
  JSON object) with exponential backoff and full jitter, all within one overall deadline
  (which does not count the time spent waiting for the client's own rate limiter).

Secrets (the API key, members' OAuth tokens, download keys) never appear in log lines or in
exception messages: requests are described by their endpoint name only, and aiohttp's own
exceptions, whose text includes the full URL and so the query string, are never stringified.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from aiolimiter import AsyncLimiter

from bot.errors import ItchMisconfigured, ItchRefused, ItchUnavailable

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://itch.io/api/1"

_ITCH_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
_INVALID_KEY = "invalid key"


# --------------------------------------------------------------------------------------------
# Typed results


@dataclass(frozen=True)
class ItchUser:
    """An itch.io account (public profile data only)."""

    id: int
    username: str
    display_name: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Credentials:
    """What itch.io says about a set of credentials: its scopes, and expiry for JWTs.

    The scopes are kept exactly as itch.io lists them (itch.io lists explicit scopes even for
    unscoped API keys in its sample), so an empty tuple means "itch.io listed none".
    """

    scopes: tuple[str, ...]
    expires_at: datetime | None


@dataclass(frozen=True)
class Game:
    """One of the games the API key's account uploaded or can edit."""

    id: int
    title: str
    url: str | None
    published: bool
    created_at: datetime | None
    purchases_count: int | None
    downloads_count: int | None


@dataclass(frozen=True)
class DownloadKey:
    """A download key that itch.io confirmed for a game.

    The key string itself is deliberately not kept: it is a secret that grants the game.
    `owner` is None when no itch.io account has claimed the key.
    """

    id: int
    game_id: int
    created_at: datetime | None
    downloads: int | None
    owner: ItchUser | None


@dataclass(frozen=True)
class Purchase:
    """A completed purchase of a game (the buyer's e-mail address is deliberately not kept)."""

    id: int
    game_id: int
    created_at: datetime | None
    source: str | None
    currency: str | None
    price: str | None
    donation: bool


def parse_itch_date(s: str | None) -> datetime | None:
    """Parse an itch.io date (`YYYY-MM-DD HH:MM:SS`, no zone, meaning UTC) to an aware datetime.

    ISO 8601 strings are accepted too (with or without a zone; naive ones are taken as UTC).
    Returns None for None, empty or unparseable input.
    """
    if not s or not isinstance(s, str):
        return None
    text = s.strip()
    try:
        return datetime.strptime(text, _ITCH_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


class Priority(enum.IntEnum):
    """Who is waiting for an answer: a member (HIGH) or a background re-check (LOW)."""

    HIGH = 0
    LOW = 1


# --------------------------------------------------------------------------------------------
# Rate limiting with two priorities


class _PriorityLimiter:
    """An `AsyncLimiter` (sustained `rate`/s, at most `burst` at once from idle) with priorities.

    * HIGH callers queue on a FIFO `asyncio.Lock`; the holder alone waits inside the
      AsyncLimiter. So HIGH callers are served strictly in arrival order, and the AsyncLimiter
      never holds more than one waiter (its own queue is not strictly FIFO).
    * LOW callers queue on their own FIFO lock. The holder takes capacity only when no HIGH
      caller is waiting and the limiter has capacity right now (then `acquire()` returns without
      suspending, so nothing can slip in between); otherwise it sleeps until the next unit of
      capacity is due, or until no HIGH caller waits any more, and checks again.

    A mirror of the bucket's level (same leaky-bucket arithmetic, updated at every acquisition)
    tells how much capacity is idle and when the next unit is due, without touching the
    AsyncLimiter's private state.
    """

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        # max_rate units per time_period: leaks at burst / (burst / rate) = rate per second,
        # and holds at most `burst` units, i.e. `burst` acquisitions at once from idle.
        self._limiter = AsyncLimiter(max_rate=burst, time_period=burst / rate)
        self._level = 0.0
        self._last = 0.0
        self._high_waiting = 0
        self._no_high = asyncio.Event()
        self._no_high.set()
        self._high_lock = asyncio.Lock()
        self._low_lock = asyncio.Lock()

    def _leak(self) -> None:
        now = asyncio.get_running_loop().time()
        self._level = max(0.0, self._level - (now - self._last) * self.rate)
        self._last = now

    def _took_one(self) -> None:
        self._leak()
        self._level += 1.0

    def idle(self) -> float:
        """Units that could be taken right now without waiting."""
        if self._high_waiting:
            return 0.0
        self._leak()
        return max(0.0, self.burst - self._level)

    def _next_unit_in(self) -> float:
        self._leak()
        return max((self._level + 1.0 - self.burst) / self.rate, 0.001)

    async def acquire(self, priority: Priority) -> None:
        if priority is Priority.HIGH:
            await self._acquire_high()
        else:
            await self._acquire_low()

    async def _acquire_high(self) -> None:
        self._high_waiting += 1
        self._no_high.clear()
        try:
            async with self._high_lock:
                await self._limiter.acquire()
                self._took_one()
        finally:
            self._high_waiting -= 1
            if not self._high_waiting:
                self._no_high.set()

    async def _acquire_low(self) -> None:
        async with self._low_lock:
            while True:
                if self._high_waiting:
                    await self._no_high.wait()
                    continue
                if self._limiter.has_capacity():
                    # Capacity is there and no HIGH caller waits: this returns at once.
                    await self._limiter.acquire()
                    self._took_one()
                    return
                await asyncio.sleep(self._next_unit_in())


# --------------------------------------------------------------------------------------------
# The client


@dataclass(frozen=True)
class _Transient:
    """A failed attempt worth retrying; `problem` is safe to log (no URL, no secrets)."""

    problem: str
    retry_after: float | None = None


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def _decode_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one (HTML pages, garbage, arrays)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _error_messages(errors: object) -> list[str]:
    if isinstance(errors, list):
        return [str(m) for m in errors]
    if isinstance(errors, dict):
        return [str(m) for m in errors.values()]
    return [str(errors)]


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _as_str(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _items(value: object) -> list[dict[str, Any]]:
    """A JSON list of objects; itch.io encodes an empty list as `{}` at times."""
    if isinstance(value, dict):
        value = list(value.values())
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


class ItchClient:
    """itch.io server-side API client. The aiohttp session belongs to the caller."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        rate_limit: float = 8.0,
        burst: int = 15,
        timeout: float = 10.0,
        max_attempts: int = 4,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        deadline: float = 50.0,
    ) -> None:
        if not api_key:
            raise ValueError("an itch.io API key is required")
        if rate_limit <= 0 or burst < 1:
            raise ValueError("rate_limit must be > 0 and burst >= 1")
        if timeout <= 0 or deadline <= 0 or max_attempts < 1:
            raise ValueError("timeout and deadline must be > 0, max_attempts >= 1")
        if backoff_base < 0 or backoff_max < 0:
            raise ValueError("backoff_base and backoff_max must be >= 0")
        self._session = session
        self._api_key = api_key
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._deadline = deadline
        self._limiter = _PriorityLimiter(rate_limit, burst)
        self._stats: dict[str, float] = {
            "calls": 0,
            "requests": 0,
            "retries": 0,
            "rate_limited": 0,
            "errors": 0,
            "refused": 0,
            "unavailable": 0,
            "limiter_wait": 0.0,
        }

    def __repr__(self) -> str:
        return f"<ItchClient {self._base_url}>"

    # ---- capacity and counters

    def idle_capacity(self) -> float:
        """How many requests could be sent right now without waiting for the rate limiter."""
        return self._limiter.idle()

    @property
    def stats(self) -> dict[str, float]:
        """A snapshot of the counters.

        calls: public calls made; requests: HTTP attempts sent; retries: attempts after a
        call's first; rate_limited: 429 answers seen; errors: failed attempts (network,
        timeout, 5xx, 429, not JSON); refused / unavailable: calls that ended with ItchRefused
        (incl. ItchMisconfigured) / ItchUnavailable; limiter_wait: seconds spent waiting for
        the client-side rate limiter, summed over attempts.
        """
        return dict(self._stats)

    # ---- endpoints

    async def credentials_info(self) -> Credentials:
        data = await self._get("credentials/info")
        scopes = data.get("scopes")
        if isinstance(scopes, dict):
            scopes = list(scopes.values())
        if not isinstance(scopes, list):
            scopes = []
        return Credentials(
            scopes=tuple(str(s) for s in scopes),
            expires_at=parse_itch_date(data.get("expires_at")),
        )

    async def me(self, token: str | None = None, *, kind: str = "key") -> ItchUser:
        """The account of our API key (token None), or of a member's OAuth token.

        With a token, asks `{base}/{kind}/me` (kind "key" or "jwt") with that token as Bearer;
        itch.io rejecting that token is an ItchRefused, not an ItchMisconfigured.
        """
        if kind not in ("key", "jwt"):
            raise ValueError("kind must be 'key' or 'jwt'")
        if token is not None and not token:
            raise ValueError("an empty token was given")
        data = await self._get("me", token=token, kind=kind)
        user = self._user(data.get("user"))
        if user is None:
            raise self._unexpected("me")
        return user

    async def my_games(self, *, priority: Priority = Priority.HIGH) -> list[Game]:
        data = await self._get("my-games", priority=priority)
        games: list[Game] = []
        for item in _items(data.get("games")):
            game_id = _as_int(item.get("id"))
            if game_id is None:
                continue
            games.append(
                Game(
                    id=game_id,
                    title=_as_str(item.get("title")) or "",
                    url=_as_str(item.get("url")),
                    published=bool(item.get("published")),
                    created_at=parse_itch_date(item.get("created_at")),
                    purchases_count=_as_int(item.get("purchases_count")),
                    downloads_count=_as_int(item.get("downloads_count")),
                )
            )
        return games

    async def download_key(
        self, game_id: int, key: str, *, priority: Priority = Priority.HIGH
    ) -> DownloadKey:
        """Check a download key for a game; ItchRefused(["invalid download key"]) if it is not."""
        if not key:
            raise ValueError("an empty download key was given")
        return await self._download_keys(game_id, {"download_key": key}, priority)

    async def download_key_by_user(
        self, game_id: int, user_id: int, *, priority: Priority = Priority.HIGH
    ) -> DownloadKey:
        """The key of an itch.io user for a game; ItchRefused(["no download key found"]) if none."""
        return await self._download_keys(game_id, {"user_id": str(int(user_id))}, priority)

    async def download_key_by_email(
        self, game_id: int, email: str, *, priority: Priority = Priority.HIGH
    ) -> DownloadKey:
        """The key bought with an e-mail address (misses claimed keys; verify the address!)."""
        if not email:
            raise ValueError("an empty e-mail address was given")
        return await self._download_keys(game_id, {"email": email}, priority)

    async def purchases(
        self,
        game_id: int,
        *,
        email: str | None = None,
        user_id: int | None = None,
        priority: Priority = Priority.HIGH,
    ) -> list[Purchase]:
        """Completed purchases of a game by an e-mail address or a user (claimed keys excluded)."""
        if email is not None and user_id is None:
            params = {"email": email}
        elif user_id is not None and email is None:
            params = {"user_id": str(int(user_id))}
        else:
            raise ValueError("give exactly one of email or user_id")
        game_id = self._game_id(game_id)
        data = await self._get(f"game/{game_id}/purchases", params, priority=priority)
        result: list[Purchase] = []
        for item in _items(data.get("purchases")):
            purchase_id = _as_int(item.get("id"))
            if purchase_id is None:
                continue
            result.append(
                Purchase(
                    id=purchase_id,
                    game_id=_as_int(item.get("game_id")) or game_id,
                    created_at=parse_itch_date(item.get("created_at")),
                    source=_as_str(item.get("source")),
                    currency=_as_str(item.get("currency")),
                    price=_as_str(item.get("price")),
                    donation=bool(item.get("donation")),
                )
            )
        return result

    # ---- helpers for endpoints

    @staticmethod
    def _game_id(game_id: int) -> int:
        if isinstance(game_id, bool) or not isinstance(game_id, int):
            raise TypeError("game_id must be an int")
        return game_id

    @staticmethod
    def _user(value: object) -> ItchUser | None:
        if not isinstance(value, dict):
            return None
        user_id = _as_int(value.get("id"))
        if user_id is None:
            return None
        return ItchUser(
            id=user_id,
            username=_as_str(value.get("username")) or "",
            display_name=_as_str(value.get("display_name")) or None,
            url=_as_str(value.get("url")),
        )

    @staticmethod
    def _unexpected(endpoint: str) -> ItchUnavailable:
        return ItchUnavailable(f"itch.io gave an unexpected answer to {endpoint}")

    async def _download_keys(
        self, game_id: int, params: dict[str, str], priority: Priority
    ) -> DownloadKey:
        game_id = self._game_id(game_id)
        endpoint = f"game/{game_id}/download_keys"
        data = await self._get(endpoint, params, priority=priority)
        item = data.get("download_key")
        key_id = _as_int(item.get("id")) if isinstance(item, dict) else None
        if not isinstance(item, dict) or key_id is None:
            raise self._unexpected(endpoint)
        answered_game = _as_int(item.get("game_id"))
        if answered_game is not None and answered_game != game_id:
            # The reference says itch.io refuses keys of another game; never trust otherwise.
            log.warning("itch.io answered %s with a key of game %s", endpoint, answered_game)
            raise ItchRefused(["invalid download key"], 200)
        return DownloadKey(
            id=key_id,
            game_id=game_id,
            created_at=parse_itch_date(item.get("created_at")),
            downloads=_as_int(item.get("downloads")),
            owner=self._user(item.get("owner")),
        )

    # ---- the one request function

    async def _get(
        self,
        endpoint: str,
        params: dict[str, str] | None = None,
        *,
        priority: Priority = Priority.HIGH,
        token: str | None = None,
        kind: str = "key",
    ) -> dict[str, Any]:
        """GET `{base}/{kind}/{endpoint}`; returns the JSON object of a successful answer.

        Raises ItchMisconfigured (our API key refused), ItchRefused (any other `errors`), or
        ItchUnavailable (no usable answer within max_attempts / the deadline).
        """
        own_key = token is None
        name = endpoint if own_key else f"{kind}/{endpoint} (member token)"
        url = f"{self._base_url}/{kind}/{endpoint}"
        headers = {
            "Authorization": f"Bearer {self._api_key if own_key else token}",
            "Accept": "application/json",
        }
        loop = asyncio.get_running_loop()
        deadline_at = loop.time() + self._deadline
        self._stats["calls"] += 1
        problem = "no answer"
        try:
            async with asyncio.timeout_at(deadline_at) as deadline:
                for attempt in range(1, self._max_attempts + 1):
                    if attempt > 1:
                        self._stats["retries"] += 1
                    # Queueing for our own rate limit (behind a launch-day crowd, at 8 r/s) is
                    # not itch.io failing to answer: the deadline stops while we wait our turn.
                    deadline.reschedule(None)
                    waited_from = loop.time()
                    await self._limiter.acquire(priority)
                    waited = loop.time() - waited_from
                    self._stats["limiter_wait"] += waited
                    deadline_at += waited
                    deadline.reschedule(deadline_at)
                    outcome = await self._attempt(url, name, params, headers, attempt, own_key)
                    if isinstance(outcome, dict):
                        return outcome
                    problem = outcome.problem
                    self._stats["errors"] += 1
                    if attempt == self._max_attempts:
                        break
                    delay = self._backoff(attempt, outcome.retry_after)
                    if loop.time() + delay >= deadline_at:
                        problem += "; no time left to retry"
                        break
                    log.warning(
                        "itch.io %s attempt %d/%d failed: %s; retrying in %.2fs",
                        name,
                        attempt,
                        self._max_attempts,
                        problem,
                        delay,
                    )
                    await asyncio.sleep(delay)
        except TimeoutError:
            # Only the overall deadline ends here: per-attempt timeouts are handled inside.
            problem = f"no answer within {self._deadline:g}s (last problem: {problem})"
        except ItchRefused:
            self._stats["refused"] += 1
            raise
        except ItchUnavailable:
            self._stats["unavailable"] += 1
            raise
        self._stats["unavailable"] += 1
        log.warning("itch.io %s unavailable: %s", name, problem)
        raise ItchUnavailable(f"itch.io could not answer {name}: {problem}")

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        ceiling = min(self._backoff_max, self._backoff_base * 2 ** (attempt - 1))
        return random.uniform(0.0, ceiling)

    async def _attempt(
        self,
        url: str,
        name: str,
        params: dict[str, str] | None,
        headers: dict[str, str],
        attempt: int,
        own_key: bool,
    ) -> dict[str, Any] | _Transient:
        """One HTTP attempt: the answer's JSON object, a _Transient, or a final exception."""
        self._stats["requests"] += 1
        started = asyncio.get_running_loop().time()
        try:
            async with self._session.get(
                url,
                params=params,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                allow_redirects=False,
                raise_for_status=False,
            ) as resp:
                status = resp.status
                retry_after = _parse_retry_after(resp.headers.get("Retry-After"))
                body = await resp.read()
        except TimeoutError:
            # asyncio.TimeoutError and aiohttp's ServerTimeoutError alike.
            log.debug("itch.io %s attempt %d timed out", name, attempt)
            return _Transient(f"timed out after {self._timeout:g}s")
        except (aiohttp.ClientError, OSError) as exc:
            # Never str(exc): aiohttp puts the URL, query string included, in its messages.
            log.debug("itch.io %s attempt %d failed: %s", name, attempt, type(exc).__name__)
            return _Transient(f"connection failed ({type(exc).__name__})")

        elapsed = asyncio.get_running_loop().time() - started
        log.debug("itch.io %s attempt %d: HTTP %d in %.3fs", name, attempt, status, elapsed)

        if status == 429:
            # Retried whatever the body says: being throttled is never a verdict.
            self._stats["rate_limited"] += 1
            return _Transient("rate limited (HTTP 429)", retry_after)
        data = _decode_object(body)
        if data is None:
            return _Transient(f"answer is not a JSON object (HTTP {status})", retry_after)
        errors = data.get("errors")
        if errors:
            messages = _error_messages(errors)
            if own_key and any(m.strip().lower() == _INVALID_KEY for m in messages):
                log.error("itch.io refused the bot's API key (%s, HTTP %d)", name, status)
                raise ItchMisconfigured(messages, status)
            log.debug("itch.io refused %s (HTTP %d): %s", name, status, "; ".join(messages))
            raise ItchRefused(messages, status)
        if 200 <= status < 300:
            return data
        if status >= 500:
            return _Transient(f"HTTP {status}", retry_after)
        raise ItchUnavailable(f"itch.io answered {name} with unexpected HTTP {status}")
