"""A loopback itch.io that follows the server-side API reference, with fault injection.

Routes: `/api/1/key/...` and `/api/1/jwt/...` with `Authorization: Bearer <credential>`, and
`/api/1/<credential>/...`. Endpoints: credentials/info, me, my-games,
game/{id}/download_keys, game/{id}/purchases.

Choices where itch.io's behaviour is not documented:

* credentials/info for an unscoped API key lists every scope the fake knows (`ALL_SCOPES`).
  A member's OAuth token has the scopes given to `add_user_token` (default `profile:me`).
* A refusal (`{"errors": [...]}`) is answered with `error_statuses[message]` if present,
  else `error_status` (400). By default "invalid key" is 401 and "invalid scope" is 403; set
  `error_status = 200` to have itch.io's "errors with 200" behaviour for the rest.
* Any credential is accepted under `key`, `jwt` or in the path.
* Fault kinds for `inject` / `always_fail`: a 3-digit status ("500", "503", "429", "404"...)
  answers that status with a JSON object without `errors` (429 never carries Retry-After unless
  `retry_after` is set); "hang" sleeps far longer than any client timeout; "html" is a 200
  text/html error page, "html500" the same with 500; "reset" aborts the connection with a TCP
  reset; "garbage" is a 200 application/json body that is not JSON.
* With `rate_limit` set, each credential has a token bucket (`rate_limit`/s, `burst` tokens);
  a request finding it empty is answered 429 (counted in `throttled`). It is checked when the
  request arrives, before any fault or latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import socket
import string
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

ALL_SCOPES = ["profile:me", "profile:games", "game:view", "game:view:purchases"]

_HANG_SECONDS = 3600.0
_KEY_ALPHABET = string.ascii_letters + string.digits
_ERROR_PAGE = (
    "<!DOCTYPE html><html><head><title>itch.io</title></head>"
    "<body><p>There was an error with your request</p></body></html>"
)


@dataclass
class ItchRequest:
    """One request the fake received. `status` is None when the answer was a hang or reset."""

    path: str
    query: dict[str, str]
    authorization: str | None
    time: float
    status: int | None = None


@dataclass
class _Cred:
    scopes: list[str] | None  # None = unscoped
    user: dict[str, Any]
    expires_at: str | None = None


@dataclass
class _Bucket:
    tokens: float
    last: float


@dataclass
class _Game:
    data: dict[str, Any]
    owner_key: str
    keys: list[dict[str, Any]] = field(default_factory=list)
    purchases: list[dict[str, Any]] = field(default_factory=list)


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "game"


def _has_scope(scopes: list[str] | None, needed: str | None) -> bool:
    if scopes is None or needed is None:
        return True
    return any(needed == s or needed.startswith(s + ":") for s in scopes)


class _Refusal(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class FakeItch:
    """An aiohttp web server on 127.0.0.1 (random port) that answers like itch.io."""

    def __init__(self, api_key: str = "test-api-key") -> None:
        self.api_key = api_key
        self.base_url = ""
        self.developer: dict[str, Any] = {
            "id": 1,
            "username": "dev",
            "display_name": "Developer",
            "url": "https://dev.itch.io",
            "cover_url": None,
            "gamer": False,
            "developer": True,
            "press_user": False,
        }
        # fault injection and behaviour knobs
        self.latency = 0.0
        self.rate_limit: float | None = None
        self.burst = 15
        self.retry_after: float | None = None
        self.always_fail: str | None = None
        self.error_status = 400
        self.error_statuses: dict[str, int] = {"invalid key": 401, "invalid scope": 403}
        self.empty_as_object = False  # answer empty lists as `{}`, as itch.io's backend can
        # records
        self.requests: list[ItchRequest] = []
        self.throttled = 0

        self._creds: dict[str, _Cred] = {}
        self._games: dict[int, _Game] = {}
        self._keys: dict[str, tuple[int, dict[str, Any]]] = {}
        self._revoked: set[str] = set()
        self._faults: list[tuple[str, str | None]] = []
        self._buckets: dict[str, _Bucket] = {}
        self._next_key_id = 100
        self._next_purchase_id = 5000
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self.add_api_key(api_key)

    # ---- lifecycle

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/1/{cred}/{tail:.+}", self._handle)
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}/api/1"

    async def close(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeItch:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- data

    def add_api_key(self, key: str, scopes: list[str] | None = None) -> None:
        """A developer API key (acting as `self.developer`); scopes None = unscoped."""
        self._creds[key] = _Cred(
            scopes=None if scopes is None else list(scopes), user=self.developer
        )

    def revoke_api_key(self, key: str) -> None:
        """The developer revoked an API key: itch.io answers "invalid key" from now on."""
        self._creds.pop(key, None)

    def add_user_token(
        self,
        token: str,
        user: dict[str, Any],
        *,
        scopes: list[str] | None = None,
        expires_at: str | None = None,
    ) -> None:
        """A member's OAuth token: `me` with it answers `{"user": user}`."""
        self._creds[token] = _Cred(
            scopes=["profile:me"] if scopes is None else list(scopes),
            user=user,
            expires_at=expires_at,
        )

    def add_game(
        self,
        game_id: int,
        title: str,
        *,
        url: str | None = None,
        owner_key: str | None = None,
        published: bool = True,
        created_at: str = "2023-05-06 07:08:09",
    ) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": game_id,
            "title": title,
            "url": url or f"https://dev.itch.io/{_slug(title)}",
            "type": "default",
            "short_text": f"{title}, a game",
            "cover_url": None,
            "created_at": created_at,
            "published": published,
            "published_at": created_at if published else None,
            "min_price": 0,
            "p_windows": True,
            "p_linux": True,
            "p_osx": True,
            "p_android": False,
            "views_count": 0,
            "downloads_count": 0,
            "purchases_count": 0,
            "earnings": [],
        }
        self._games[game_id] = _Game(data=data, owner_key=owner_key or self.api_key)
        return data

    def add_download_key(
        self,
        game_id: int,
        key: str | None = None,
        *,
        owner: dict[str, Any] | None = None,
        key_id: int | None = None,
        downloads: int = 0,
        created_at: str = "2024-01-02 03:04:05",
        email: str | None = None,
    ) -> dict[str, Any]:
        """A download key of a game; `owner` set = claimed by that itch.io account."""
        game = self._games[game_id]
        if key is None:
            key = "".join(random.choices(_KEY_ALPHABET, k=32))
        if key_id is None:
            self._next_key_id += 1
            key_id = self._next_key_id
        record: dict[str, Any] = {
            "id": key_id,
            "created_at": created_at,
            "downloads": downloads,
            "key": key,
            "game_id": game_id,
        }
        if owner is not None:
            record["owner"] = owner
        if email is not None:
            record["_email"] = email
        game.keys.append(record)
        self._keys[key] = (game_id, record)
        self._revoked.discard(key)
        return record

    def revoke_download_key(self, key: str) -> None:
        """Refund or revocation: itch.io answers "invalid download key" from now on."""
        self._revoked.add(key)

    def add_purchase(
        self,
        game_id: int,
        *,
        email: str | None = None,
        user_id: int | None = None,
        purchase_id: int | None = None,
        price: str = "$1.00",
        currency: str = "USD",
        source: str = "stripe",
        donation: bool = False,
        created_at: str = "2024-02-03 04:05:06",
    ) -> dict[str, Any]:
        game = self._games[game_id]
        if purchase_id is None:
            self._next_purchase_id += 1
            purchase_id = self._next_purchase_id
        record: dict[str, Any] = {
            "id": purchase_id,
            "game_id": game_id,
            "email": email,
            "created_at": created_at,
            "source": source,
            "currency": currency,
            "price": price,
            "sale_rate": 0,
            "donation": donation,
            "_user_id": user_id,
        }
        game.purchases.append(record)
        return record

    # ---- fault injection and records

    def inject(self, *faults: str, path_contains: str | None = None) -> None:
        """Queue one-shot faults for the next requests whose path contains `path_contains`."""
        for fault in faults:
            self._faults.append((fault, path_contains))

    def count(self, path_contains: str = "") -> int:
        return sum(1 for r in self.requests if path_contains in r.path)

    def count_status(self, status: int) -> int:
        return sum(1 for r in self.requests if r.status == status)

    def _take_fault(self, path: str) -> str | None:
        if self.always_fail is not None:
            return self.always_fail
        for i, (fault, where) in enumerate(self._faults):
            if where is None or where in path:
                del self._faults[i]
                return fault
        return None

    def _throttle(self, cred: str, now: float) -> bool:
        """True when this request is beyond the rate limit of its credential."""
        if self.rate_limit is None:
            return False
        bucket = self._buckets.get(cred)
        if bucket is None:
            bucket = self._buckets[cred] = _Bucket(tokens=float(self.burst), last=now)
        bucket.tokens = min(
            float(self.burst), bucket.tokens + (now - bucket.last) * self.rate_limit
        )
        bucket.last = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return False
        return True

    # ---- HTTP

    def _json(self, status: int, payload: dict[str, Any]) -> web.Response:
        return web.Response(
            status=status, text=json.dumps(payload), content_type="application/json"
        )

    def _refuse(self, message: str) -> web.Response:
        status = self.error_statuses.get(message, self.error_status)
        return self._json(status, {"errors": [message]})

    def _list(self, items: list[dict[str, Any]]) -> list[dict[str, Any]] | dict[str, Any]:
        return {} if not items and self.empty_as_object else items

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        now = time.monotonic()
        authorization = request.headers.get("Authorization")
        record = ItchRequest(
            path=request.path,
            query=dict(request.query),
            authorization=authorization,
            time=now,
        )
        self.requests.append(record)
        kind = request.match_info["cred"]
        if kind in ("key", "jwt"):
            credential = ""
            if authorization and authorization.startswith("Bearer "):
                credential = authorization[len("Bearer ") :].strip()
        else:
            credential = kind

        if self._throttle(credential, now):
            self.throttled += 1
            response: web.StreamResponse | None = self._fault_response("429")
        else:
            fault = self._take_fault(request.path)
            if fault in ("hang", "reset"):
                return await self._misbehave(fault, request)
            response = self._fault_response(fault) if fault else None
        if self.latency:
            await asyncio.sleep(self.latency)
        if response is None:
            response = self._answer(credential, request.match_info["tail"], request.query)
        record.status = response.status
        return response

    async def _misbehave(self, fault: str, request: web.Request) -> web.StreamResponse:
        if fault == "hang":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), _HANG_SECONDS)
            raise web.HTTPServiceUnavailable()
        transport = request.transport
        if transport is not None:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        # Nothing can be written any more; the handler still has to return something.
        return web.Response(status=500)

    def _fault_response(self, fault: str | None) -> web.Response | None:
        if fault is None:
            return None
        if fault == "html":
            return web.Response(status=200, text=_ERROR_PAGE, content_type="text/html")
        if fault == "html500":
            return web.Response(status=500, text=_ERROR_PAGE, content_type="text/html")
        if fault == "garbage":
            return web.Response(
                status=200, text='{"download_key": {"id": 1,', content_type="application/json"
            )
        if fault.isdigit():
            status = int(fault)
            headers = {}
            if status == 429 and self.retry_after is not None:
                headers["Retry-After"] = f"{self.retry_after:g}"
            return web.Response(
                status=status,
                text=json.dumps({"status": status}),
                content_type="application/json",
                headers=headers,
            )
        raise ValueError(f"unknown fault {fault!r}")

    def _answer(self, credential: str, tail: str, query: Any) -> web.Response:
        cred = self._creds.get(credential)
        if cred is None:
            return self._refuse("invalid key")
        try:
            payload = self._route(cred, credential, tail.strip("/"), query)
        except _Refusal as refusal:
            return self._refuse(refusal.message)
        return self._json(200, payload)

    def _route(self, cred: _Cred, credential: str, tail: str, query: Any) -> dict[str, Any]:
        parts = tail.split("/")
        if tail == "credentials/info":
            payload: dict[str, Any] = {
                "scopes": list(ALL_SCOPES) if cred.scopes is None else list(cred.scopes)
            }
            if cred.expires_at is not None:
                payload["expires_at"] = cred.expires_at
            return payload
        if tail == "me":
            self._need(cred, "profile:me")
            return {"user": cred.user}
        if tail == "my-games":
            self._need(cred, "profile:games")
            games = [g.data for g in self._games.values() if g.owner_key == credential]
            return {"games": self._list(games)}
        if len(parts) == 3 and parts[0] == "game" and parts[2] in ("download_keys", "purchases"):
            self._need(cred, "game:view:purchases")
            game = self._game(parts[1], credential)
            if parts[2] == "download_keys":
                return {"download_key": self._find_key(game, query)}
            return {"purchases": self._list(self._find_purchases(game, query))}
        raise _Refusal("invalid endpoint")

    @staticmethod
    def _need(cred: _Cred, scope: str) -> None:
        if not _has_scope(cred.scopes, scope):
            raise _Refusal("invalid scope")

    def _game(self, raw_id: str, credential: str) -> _Game:
        if not raw_id.isdigit():
            raise _Refusal("game_id must be an integer")
        game = self._games.get(int(raw_id))
        if game is None or game.owner_key != credential:
            raise _Refusal("invalid game")
        return game

    @staticmethod
    def _public(record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if not k.startswith("_")}

    def _find_key(self, game: _Game, query: Any) -> dict[str, Any]:
        game_id = game.data["id"]
        if "download_key" in query:
            found = self._keys.get(query["download_key"])
            if found is None or found[0] != game_id or query["download_key"] in self._revoked:
                raise _Refusal("invalid download key")
            return self._public(found[1])
        if "user_id" in query:
            if not query["user_id"].isdigit():
                raise _Refusal("user_id must be an integer")
            user_id = int(query["user_id"])
            for record in game.keys:
                owner = record.get("owner")
                if owner and owner.get("id") == user_id and record["key"] not in self._revoked:
                    return self._public(record)
            raise _Refusal("no download key found")
        if "email" in query:
            email = query["email"].lower()
            for record in game.keys:
                stored = record.get("_email")
                if stored and stored.lower() == email and record["key"] not in self._revoked:
                    return self._public(record)
            raise _Refusal("no download key found")
        raise _Refusal("missing download_key, user_id or email")

    def _find_purchases(self, game: _Game, query: Any) -> list[dict[str, Any]]:
        if "email" in query:
            email = query["email"].lower()
            found = [p for p in game.purchases if (p["email"] or "").lower() == email]
        elif "user_id" in query:
            if not query["user_id"].isdigit():
                raise _Refusal("user_id must be an integer")
            user_id = int(query["user_id"])
            found = [p for p in game.purchases if p["_user_id"] == user_id]
        else:
            raise _Refusal("missing email or user_id")
        return [self._public(p) for p in found]
