"""The itch.io OAuth side of /link: signed one-use states and the small web server.

itch.io's OAuth is the implicit flow: the member's access token comes back in the URL fragment,
which browsers never send to a server. So `/oauth/callback` serves a page whose script reads the
fragment and POSTs `{access_token, state}` as JSON to `/oauth/token`, where the bot checks the
state, proves the account with the token (then forgets it) and links it.

The state names the guild and the member, expires after 10 minutes, is signed with
HMAC-SHA256 (OAUTH_STATE_SECRET), and carries a random nonce that works once: used nonces are
kept in the database until their state expires, so a replay is refused even after a restart.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import html
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote, urlencode

from aiohttp import web

from bot.errors import SettingsError
from bot.linking import GameStatus, LinkOutcome, LinkResult, LinkService
from bot.store import Store

log = logging.getLogger(__name__)

ITCH_AUTHORIZE_URL = "https://itch.io/user/oauth"
OOB_REDIRECT_URI = "urn:ietf:wg:oauth:2.0:oob"
CALLBACK_PATH = "/oauth/callback"
TOKEN_PATH = "/oauth/token"  # noqa: S105 (a path, not a password)
STATE_TTL = 600  # seconds; Discord's interaction tokens (15 minutes) outlive it
MAX_BODY = 4096
MAX_TOKEN_LENGTH = 512

_STATE_RE = re.compile(
    r"(?P<guild>\d{1,20})\.(?P<member>\d{1,20})\.(?P<exp>\d{1,12})"
    r"\.(?P<nonce>[A-Za-z0-9_-]{16,64})\.(?P<sig>[A-Za-z0-9_-]{43})",
    re.ASCII,
)
_TOKEN_RE = re.compile(rf"[\x21-\x7e]{{1,{MAX_TOKEN_LENGTH}}}", re.ASCII)
_PASTED_TOKEN_RE = re.compile(r"access_token=([^&#\s]+)")
_SIGNING_CONTEXT = b"itch-role-bot link state v1\n"


def authorize_url(client_id: str, redirect_uri: str, state: str | None = None) -> str:
    """itch.io's OAuth page for the implicit flow with the `profile:me` scope."""
    query = {
        "client_id": client_id,
        "scope": "profile:me",
        "response_type": "token",
        "redirect_uri": redirect_uri,
    }
    if state is not None:
        query["state"] = state
    return f"{ITCH_AUTHORIZE_URL}?{urlencode(query)}"


def parse_token(text: str) -> str | None:
    """A token as a member pastes it: bare, or in a URL or fragment with `access_token=`."""
    text = text.strip()
    found = _PASTED_TOKEN_RE.search(text)
    if found:
        text = unquote(found[1])
    return text if _TOKEN_RE.fullmatch(text) else None


# --------------------------------------------------------------------------------------------
# Signed states


class StateProblem(enum.StrEnum):
    FORGED = "forged"  # not signed by us (another secret, edited, or garbage)
    EXPIRED = "expired"
    REPLAYED = "replayed"


class InvalidState(Exception):
    def __init__(self, problem: StateProblem) -> None:
        super().__init__(problem.value)
        self.problem = problem


@dataclass(frozen=True)
class LinkState:
    guild_id: int
    member_id: int
    expires_at: int  # Unix time
    nonce: str

    @property
    def expires(self) -> datetime:
        return datetime.fromtimestamp(self.expires_at, UTC)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class StateSigner:
    """Makes and checks states `guild.member.expiry.nonce.signature`."""

    def __init__(
        self, secret: str, *, ttl: int = STATE_TTL, clock: Callable[[], float] = time.time
    ) -> None:
        if not secret:
            raise ValueError("a state secret is required")
        self._key = hashlib.sha256(secret.encode()).digest()
        self.ttl = ttl
        self._clock = clock

    def __repr__(self) -> str:
        return "StateSigner(***)"

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, _SIGNING_CONTEXT + payload.encode(), "sha256").digest())

    def issue(
        self, guild_id: int, member_id: int, *, now: float | None = None
    ) -> tuple[str, LinkState]:
        issued = self._clock() if now is None else now
        info = LinkState(guild_id, member_id, int(issued) + self.ttl, secrets.token_urlsafe(16))
        payload = f"{info.guild_id}.{info.member_id}.{info.expires_at}.{info.nonce}"
        return f"{payload}.{self._sign(payload)}", info

    def verify(self, state: str) -> LinkState:
        """The state's contents if we signed it and it has not expired; else InvalidState."""
        match = _STATE_RE.fullmatch(state) if isinstance(state, str) else None
        if match is None:
            raise InvalidState(StateProblem.FORGED)
        payload = state[: match.start("sig") - 1]
        if not hmac.compare_digest(self._sign(payload), match["sig"]):
            raise InvalidState(StateProblem.FORGED)
        info = LinkState(
            int(match["guild"]), int(match["member"]), int(match["exp"]), match["nonce"]
        )
        if info.expires_at <= self._clock():
            raise InvalidState(StateProblem.EXPIRED)
        return info


# --------------------------------------------------------------------------------------------
# The web server

ResultListener = Callable[[LinkState, LinkResult], Awaitable[None]]

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;"
    "line-height:1.5;color:#222}h1{font-size:1.4rem}button{font-size:1rem;padding:.4rem 1rem}"
)

# Kept constant (the token URL comes from a data attribute) so the CSP can allow it by hash.
_SCRIPT = """(function () {
  "use strict";
  var main = document.getElementById("link");
  var title = document.getElementById("title");
  var message = document.getElementById("message");
  var retry = document.getElementById("retry");
  var params = new URLSearchParams(window.location.hash.slice(1));
  var token = params.get("access_token");
  var state = params.get("state");
  var error = params.get("error") || new URLSearchParams(window.location.search).get("error");
  // The token must not stay in the address bar or in the history.
  history.replaceState(null, "", window.location.pathname);
  function show(t, m) { title.textContent = t; message.textContent = m; }
  if (!token || !state) {
    show(error ? "Linking was cancelled" : "Nothing to link here",
         "Run /link in Discord to link your itch.io account.");
    return;
  }
  var body = JSON.stringify({access_token: token, state: state});
  token = null;
  function send() {
    retry.hidden = true;
    show("Linking your itch.io account\\u2026", "One moment.");
    fetch(main.dataset.tokenUrl, {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: body,
      credentials: "omit",
      cache: "no-store",
      referrerPolicy: "no-referrer"
    }).then(function (r) { return r.json(); }).then(function (d) {
      show(d.title, d.message);
      if (d.retry) { retry.hidden = false; } else { body = null; }
    }).catch(function () {
      show("The bot could not be reached", "Nothing was recorded. Try again in a moment.");
      retry.hidden = false;
    });
  }
  retry.addEventListener("click", send);
  send();
})();"""


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


_BASE_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


@dataclass(frozen=True)
class _Reply:
    status: int
    title: str
    message: str
    ok: bool = False
    retry: bool = False  # the same state may be tried again (nothing was used up)


_STATE_REPLIES = {
    StateProblem.FORGED: _Reply(
        403,
        "This link isn't valid",
        "It was not made by this bot, or it was changed on the way. Run /link in Discord to "
        "get a new one.",
    ),
    StateProblem.EXPIRED: _Reply(
        410,
        "This link has expired",
        "Links from /link work for 10 minutes. Run /link in Discord to get a new one.",
    ),
    StateProblem.REPLAYED: _Reply(
        409,
        "This link was already used",
        "Each link from /link works once. Run /link in Discord to get a new one.",
    ),
}


def _titles(result: LinkResult, *statuses: GameStatus) -> str:
    return ", ".join(
        c.game.game_title or f"game {c.game.game_id}" for c in result.with_status(*statuses)
    )


def _link_reply(result: LinkResult) -> _Reply:
    match result.outcome:
        case LinkOutcome.LINKED:
            name = result.account.username if result.account else "your account"
            parts = [f"Linked the itch.io account {name}."]
            found = _titles(result, GameStatus.FOUND, GameStatus.ROLE_FAILED)
            missing = _titles(result, GameStatus.NOT_FOUND)
            other = _titles(result, GameStatus.HELD, GameStatus.UNCHECKED)
            if found:
                parts.append(f"Found: {found}.")
            if missing:
                parts.append(f"Not found: {missing}.")
            if other:
                parts.append(f"Not given (ask the server admins): {other}.")
            if not result.games:
                parts.append("This server has no games set up yet.")
            parts.append("The details are in Discord; you can close this page.")
            return _Reply(200, "itch.io account linked", " ".join(parts), ok=True)
        case LinkOutcome.ACCOUNT_TAKEN:
            return _Reply(
                409,
                "This itch.io account is linked to another member",
                "An itch.io account can be linked to one member of a server. Nothing changed; "
                "if the account is yours, contact the server admins.",
            )
        case LinkOutcome.TOKEN_REFUSED:
            return _Reply(
                401,
                "itch.io did not accept the login",
                "Nothing changed. Run /link in Discord to try again.",
            )
        case LinkOutcome.UNAVAILABLE:
            return _Reply(
                503,
                "itch.io is unavailable",
                "itch.io is not answering right now, so nothing was recorded. Try again in a "
                "few minutes.",
                retry=True,
            )
        case LinkOutcome.MISCONFIGURED:
            return _Reply(
                500,
                "The server's setup needs a fix",
                "Your account could not be checked because of a problem with this server's "
                "itch.io settings. Nothing was recorded; please tell the server admins.",
            )
    raise AssertionError(result.outcome)  # every outcome has its page


_BAD_REQUEST = _Reply(400, "That didn't work", "Run /link in Discord to get a new link.")
_FAILED = _Reply(
    500,
    "Something went wrong on our side",
    "Please try /link again later; the server admins can check the bot's logs.",
)


class OAuthServer:
    """An aiohttp server inside the bot process: `/oauth/callback` and `/oauth/token` only."""

    def __init__(
        self,
        links: LinkService,
        store: Store,
        signer: StateSigner,
        *,
        client_id: str,
        public_url: str,
        host: str,
        port: int,
    ) -> None:
        self.links = links
        self.store = store
        self.signer = signer
        self.client_id = client_id
        self.public_url = public_url.rstrip("/")
        self.host = host
        self.port = port  # the bound port once started (OAUTH_LISTEN may say 0)
        # Told about every link attempt with a valid state (the /link cog tells the member).
        self.on_result: ResultListener | None = None
        self._runner: web.AppRunner | None = None
        self._page_csp = (
            f"{_BASE_CSP}; script-src {_csp_hash(_SCRIPT)}; style-src {_csp_hash(_STYLE)};"
            f" connect-src {self.token_url}"
        )

    @property
    def redirect_uri(self) -> str:
        return self.public_url + CALLBACK_PATH

    @property
    def token_url(self) -> str:
        return self.public_url + TOKEN_PATH

    def authorize(self, guild_id: int, member_id: int) -> tuple[str, LinkState]:
        """itch.io's OAuth URL for this member, with a fresh state."""
        state, info = self.signer.issue(guild_id, member_id)
        return authorize_url(self.client_id, self.redirect_uri, state), info

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_get(CALLBACK_PATH, self._callback, allow_head=False)
        app.router.add_post(TOKEN_PATH, self._token)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        app.on_response_prepare.append(self._secure)
        # No access log: nothing about a member's visit needs to outlive the request.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=3.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await self.stop()
            raise SettingsError(
                "OAUTH_LISTEN", f"{self.host}:{self.port} can't be used: {exc.strerror or exc}"
            ) from None
        self.port = self._runner.addresses[0][1]
        log.info(
            "OAuth web server listening on %s:%s for %s", self.host, self.port, self.public_url
        )

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- handlers ---------------------------------------------------------------------------

    @staticmethod
    async def _secure(request: web.Request, response: web.StreamResponse) -> None:
        for name, value in _SECURITY_HEADERS.items():
            response.headers[name] = value
        response.headers.setdefault("Content-Security-Policy", _BASE_CSP)

    async def _not_found(self, request: web.Request) -> web.Response:
        return web.Response(status=404, text="Not found")

    async def _callback(self, request: web.Request) -> web.Response:
        page = (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>Link your itch.io account</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
            f'<main id="link" data-token-url="{html.escape(self.token_url, quote=True)}">\n'
            '<h1 id="title">Linking your itch.io account</h1>\n'
            '<p id="message">This page needs JavaScript to finish linking your account.</p>\n'
            '<button id="retry" type="button" hidden>Try again</button>\n'
            f"</main>\n<script>{_SCRIPT}</script>\n</body>\n</html>\n"
        )
        return web.Response(
            text=page,
            content_type="text/html",
            headers={"Content-Security-Policy": self._page_csp},
        )

    async def _token(self, request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            return self._json(_Reply(415, "That didn't work", "Expected JSON."))
        try:
            data = json.loads(await request.read())
        except ValueError:
            return self._json(_BAD_REQUEST)
        token = data.get("access_token") if isinstance(data, dict) else None
        state = data.get("state") if isinstance(data, dict) else None
        if (
            not isinstance(token, str)
            or not isinstance(state, str)
            or not _TOKEN_RE.fullmatch(token)
        ):
            return self._json(_BAD_REQUEST)

        try:
            info = self.signer.verify(state)
            if not await self.store.use_oauth_nonce(info.nonce, info.expires):
                raise InvalidState(StateProblem.REPLAYED)
        except InvalidState as exc:
            log.info("OAuth state refused: %s", exc.problem.value)
            return self._json(_STATE_REPLIES[exc.problem])

        try:
            # The token goes to itch.io's `me` and nowhere else: not stored, logged or echoed.
            result = await self.links.link(info.guild_id, info.member_id, token)
        except Exception:
            log.exception("Linking failed for member %s", info.member_id)
            return self._json(_FAILED)
        if result.outcome is LinkOutcome.UNAVAILABLE:
            # Nothing happened, so the same state may be tried again once itch.io answers.
            await self.store.release_oauth_nonce(info.nonce)
        if self.on_result is not None:
            try:
                await self.on_result(info, result)
            except Exception:
                log.exception("Could not tell member %s about their link", info.member_id)
        return self._json(_link_reply(result))

    @staticmethod
    def _json(reply: _Reply) -> web.Response:
        body = {"ok": reply.ok, "title": reply.title, "message": reply.message}
        if reply.retry:
            body["retry"] = True
        return web.json_response(body, status=reply.status)
