"""Loopback fake of Discord's REST API and gateway for tests.

One aiohttp server on 127.0.0.1 (random port) serves both the REST API (under ``/api/v10``)
and the gateway websocket (at ``/``). The real, unpatched discord.py client talks to it
once :meth:`FakeDiscord.patch_discord` has pointed ``discord.http.Route.BASE`` and
``DiscordWebSocket.DEFAULT_GATEWAY`` at the fake.

Tests drive the "Discord side" (slash commands, button clicks, modal submits, member
joins, gateway drops) and then assert on what Discord saw: :attr:`FakeDiscord.requests`,
interaction responses (:class:`InteractionHandle`), messages and guild state.

Behaviour worth knowing:

* Handler crashes inside the fake are answered with HTTP 400 (never 5xx, which discord.py
  retries after sleeping) and collected in :attr:`FakeDiscord.errors`.
* The gateway compresses frames with zlib-stream when the client asks for it
  (``compress=zlib-stream`` in the query, which discord.py does unless zstd is installed);
  otherwise it sends plain text frames, which discord.py also accepts.
* Like Discord, ``GUILD_CREATE`` carries only the bot's own member unless the client
  identified with the presences intent; discord.py then asks for the rest with
  REQUEST_GUILD_MEMBERS (op 8), which is answered with one GUILD_MEMBERS_CHUNK.
* Like Discord, the first followup after a deferred (type 5) response replaces the
  "thinking" message instead of creating a new one (the defer decides ephemerality).
* discord.py waits ``guild_ready_timeout`` (2 s by default) after the last GUILD_CREATE
  before firing ``on_ready``; construct test clients with e.g. ``guild_ready_timeout=0.05``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import mimetypes
import re
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import discord.gateway
import discord.http
import yarl
from aiohttp import WSMsgType, web
from multidict import CIMultiDict

__all__ = [
    "ADMINISTRATOR",
    "ATTACH_FILES",
    "BOT_ROLE_PERMISSIONS",
    "DEFAULT_EVERYONE_PERMISSIONS",
    "EMBED_LINKS",
    "MANAGE_NICKNAMES",
    "MANAGE_ROLES",
    "SEND_MESSAGES",
    "VIEW_CHANNEL",
    "FakeDiscord",
    "FakeGuild",
    "InteractionHandle",
    "RecordedRequest",
]

# --- permission bits -------------------------------------------------------------------
ADMINISTRATOR = 1 << 3
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MANAGE_NICKNAMES = 1 << 27
MANAGE_ROLES = 1 << 28
USE_APPLICATION_COMMANDS = 1 << 31
ALL_PERMISSIONS = discord.Permissions.all().value

DEFAULT_EVERYONE_PERMISSIONS = (
    VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY | USE_APPLICATION_COMMANDS
)
BOT_ROLE_PERMISSIONS = MANAGE_ROLES | SEND_MESSAGES | VIEW_CHANNEL | EMBED_LINKS | ATTACH_FILES

# --- gateway intents ---------------------------------------------------------------------
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT

# --- message flags -----------------------------------------------------------------------
FLAG_EPHEMERAL = 1 << 6
# Pass as `permissions=` to send an interaction whose member has no resolved permissions.
OMIT_PERMISSIONS = -1
FLAG_LOADING = 1 << 7

APP_FLAG_GATEWAY_GUILD_MEMBERS_LIMITED = 1 << 15
APP_FLAG_GATEWAY_MESSAGE_CONTENT_LIMITED = 1 << 19

_DISCORD_EPOCH_MS = 1_420_070_400_000
_HEARTBEAT_INTERVAL_MS = 41_250
_ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024

# interaction types
_PING, _APP_COMMAND, _COMPONENT, _AUTOCOMPLETE, _MODAL_SUBMIT = 1, 2, 3, 4, 5


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


class _ApiError(Exception):
    def __init__(
        self, status: int, code: int, message: str, errors: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.body: dict[str, Any] = {"message": message, "code": code}
        if errors:
            self.body["errors"] = errors


def _form_error(field_name: str, code: str, message: str) -> _ApiError:
    return _ApiError(
        400,
        50035,
        "Invalid Form Body",
        {field_name: {"_errors": [{"code": code, "message": message}]}},
    )


def _missing_permissions() -> _ApiError:
    return _ApiError(403, 50013, "Missing Permissions")


@dataclass
class RecordedRequest:
    """One REST request as the fake received it.

    ``path`` is relative to the API base (e.g. ``/guilds/1/members/2/roles/3``);
    ``headers`` is case-insensitive and holds ``X-Audit-Log-Reason`` already URL-decoded.
    """

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: list[tuple[str, bytes]]
    headers: Mapping[str, str]
    status: int = 0
    response: Any = None

    @property
    def reason(self) -> str | None:
        """The decoded audit-log reason, if any."""
        return self.headers.get("X-Audit-Log-Reason")


class _Session:
    def __init__(self, session_id: str, intents: int, shard: list[int] | None) -> None:
        self.session_id = session_id
        self.intents = intents
        self.shard = shard
        self.seq = 0
        self.resumable = True


class _GatewayConnection:
    """One websocket connection; all outgoing frames go through one ordered queue."""

    def __init__(self, ws: web.WebSocketResponse, *, zlib_stream: bool) -> None:
        self.ws = ws
        self._compressor = zlib.compressobj() if zlib_stream else None
        self._queue: asyncio.Queue[tuple[dict[str, Any], asyncio.Future[bool]]] = asyncio.Queue()
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        self.session: _Session | None = None
        self.live = False  # READY or RESUMED has been queued on this connection

    def send(self, payload: dict[str, Any]) -> asyncio.Future[bool]:
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((payload, fut))
        return fut

    def send_dispatch(self, event: str, data: Any) -> asyncio.Future[bool]:
        assert self.session is not None
        self.session.seq += 1
        return self.send({"op": 0, "t": event, "s": self.session.seq, "d": data})

    def covers_guild(self, guild_id: int | None) -> bool:
        if self.session is None or not self.session.shard:
            return True
        shard_id, shard_count = self.session.shard
        return ((guild_id or 0) >> 22) % shard_count == shard_id

    async def _write_loop(self) -> None:
        while True:
            payload, fut = await self._queue.get()
            ok = False
            try:
                raw = json.dumps(payload, separators=(",", ":"))
                if self._compressor is not None:
                    data = self._compressor.compress(raw.encode())
                    data += self._compressor.flush(zlib.Z_SYNC_FLUSH)
                    await self.ws.send_bytes(data)
                else:
                    await self.ws.send_str(raw)
                ok = True
            except Exception:  # the socket went away; the frame is simply lost
                ok = False
            finally:
                if not fut.done():
                    fut.set_result(ok)

    async def stop(self) -> None:
        self.live = False
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        while not self._queue.empty():
            _, fut = self._queue.get_nowait()
            if not fut.done():
                fut.set_result(False)


class FakeGuild:
    """World state of one guild. Create with :meth:`FakeDiscord.add_guild`."""

    def __init__(
        self,
        fake: FakeDiscord,
        guild_id: int,
        name: str,
        owner_id: int,
        everyone_permissions: int,
    ) -> None:
        self._fake = fake
        self._announce = False  # no gateway events while constructing
        self.id = guild_id
        self.name = name
        self.owner_id = owner_id
        self.joined_at = _now_iso()
        self.roles: dict[int, dict[str, Any]] = {}
        self.members: dict[int, dict[str, Any]] = {}
        self.channels: dict[int, dict[str, Any]] = {}
        self.add_role(guild_id, "@everyone", 0, permissions=everyone_permissions)
        self.bot_role_id = fake._ids.next()
        bot_role = self.add_role(
            self.bot_role_id, fake.bot_username, 10, permissions=BOT_ROLE_PERMISSIONS, managed=True
        )
        bot_role["tags"] = {"bot_id": str(fake.bot_user_id)}
        self.add_member(fake.bot_user_id, fake.bot_username, [self.bot_role_id], bot=True)
        self._announce = True

    # -- world building ------------------------------------------------------------------

    def add_role(
        self,
        role_id: int,
        name: str,
        position: int,
        permissions: int = 0,
        managed: bool = False,
    ) -> dict[str, Any]:
        role: dict[str, Any] = {
            "id": str(role_id),
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": str(permissions),
            "managed": managed,
            "mentionable": False,
            "flags": 0,
        }
        self.roles[role_id] = role
        self._event("GUILD_ROLE_CREATE", {"guild_id": str(self.id), "role": copy.deepcopy(role)})
        return role

    def add_member(
        self,
        user_id: int,
        username: str,
        roles: Iterable[int] = (),
        *,
        bot: bool = False,
        nick: str | None = None,
    ) -> dict[str, Any]:
        """Add a member silently (no gateway event; see :meth:`FakeDiscord.member_join`)."""
        user = self._fake.add_user(user_id, username, bot=bot)
        member: dict[str, Any] = {
            "user": user,
            "roles": [str(r) for r in roles],
            "nick": nick,
            "avatar": None,
            "banner": None,
            "joined_at": _now_iso(),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }
        self.members[user_id] = member
        return member

    def add_channel(
        self, channel_id: int, name: str, bot_can_send: bool = True, *, channel_type: int = 0
    ) -> dict[str, Any]:
        overwrites: list[dict[str, Any]] = []
        if not bot_can_send:
            overwrites.append(
                {
                    "id": str(self._fake.bot_user_id),
                    "type": 1,
                    "allow": "0",
                    "deny": str(SEND_MESSAGES),
                }
            )
        channel: dict[str, Any] = {
            "id": str(channel_id),
            "type": channel_type,
            "guild_id": str(self.id),
            "name": name,
            "position": len(self.channels),
            "permission_overwrites": overwrites,
            "topic": None,
            "nsfw": False,
            "parent_id": None,
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "flags": 0,
        }
        if channel_type == 2:
            channel.update(bitrate=64000, user_limit=0)
        self.channels[channel_id] = channel
        self._event("CHANNEL_CREATE", copy.deepcopy(channel))
        return channel

    def move_role(self, role_id: int, position: int) -> None:
        """An admin drags a role in Server Settings → Roles (GUILD_ROLE_UPDATE)."""
        role = self.roles[role_id]
        role["position"] = position
        self._event("GUILD_ROLE_UPDATE", {"guild_id": str(self.id), "role": copy.deepcopy(role)})

    def set_bot_permissions(self, permissions: int) -> None:
        """Change the permissions of the bot's managed role."""
        role = self.roles[self.bot_role_id]
        role["permissions"] = str(permissions)
        self._event("GUILD_ROLE_UPDATE", {"guild_id": str(self.id), "role": copy.deepcopy(role)})

    # -- queries ---------------------------------------------------------------------------

    def member_roles(self, user_id: int) -> set[int]:
        return {int(r) for r in self.members[user_id]["roles"]}

    def base_permissions(self, user_id: int) -> int:
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        perms = int(self.roles[self.id]["permissions"])
        member = self.members.get(user_id)
        if member is not None:
            for rid in member["roles"]:
                role = self.roles.get(int(rid))
                if role is not None:
                    perms |= int(role["permissions"])
        return ALL_PERMISSIONS if perms & ADMINISTRATOR else perms

    def channel_permissions(self, user_id: int, channel_id: int) -> int:
        perms = self.base_permissions(user_id)
        channel = self.channels.get(channel_id)
        if perms & ADMINISTRATOR or channel is None:
            return perms
        overwrites = channel["permission_overwrites"]

        def apply(current: int, matches: Callable[[dict[str, Any]], bool]) -> int:
            allow = deny = 0
            for ow in overwrites:
                if matches(ow):
                    allow |= int(ow["allow"])
                    deny |= int(ow["deny"])
            return (current & ~deny) | allow

        member = self.members.get(user_id)
        role_ids = set(member["roles"]) if member else set()
        perms = apply(perms, lambda ow: ow["type"] == 0 and int(ow["id"]) == self.id)
        perms = apply(perms, lambda ow: ow["type"] == 0 and ow["id"] in role_ids)
        return apply(perms, lambda ow: ow["type"] == 1 and int(ow["id"]) == user_id)

    def top_role_position(self, user_id: int) -> int:
        member = self.members.get(user_id)
        if member is None:
            return 0
        positions = [
            self.roles[int(r)]["position"] for r in member["roles"] if int(r) in self.roles
        ]
        return max(positions, default=0)

    # -- payloads --------------------------------------------------------------------------

    def _guild_object(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": copy.deepcopy(list(self.roles.values())),
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "vanity_url_code": None,
            "description": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
        }

    def _gateway_payload(self, *, all_members: bool) -> dict[str, Any]:
        payload = self._guild_object()
        if all_members:
            members = list(self.members.values())
        else:
            members = [self.members[self._fake.bot_user_id]]
        payload.update(
            joined_at=self.joined_at,
            large=len(self.members) > 250,
            unavailable=False,
            member_count=len(self.members),
            members=copy.deepcopy(members),
            channels=copy.deepcopy(list(self.channels.values())),
            threads=[],
            presences=[],
            voice_states=[],
            stage_instances=[],
            guild_scheduled_events=[],
            soundboard_sounds=[],
        )
        return payload

    def _event(self, event: str, data: dict[str, Any], intent: int | None = None) -> None:
        if self._announce and self.id in self._fake.guilds:
            self._fake._broadcast(self.id, event, data, intent)


class InteractionHandle:
    """What Discord saw in answer to one interaction the fake sent."""

    def __init__(
        self,
        fake: FakeDiscord,
        *,
        interaction_id: int,
        token: str,
        interaction_type: int,
        guild_id: int,
        channel_id: int,
        user_id: int,
        payload: dict[str, Any],
        source_message_id: int | None = None,
    ) -> None:
        self._fake = fake
        self.id = interaction_id
        self.token = token
        self.type = interaction_type
        self.guild_id = guild_id
        self.channel_id = channel_id
        self.user_id = user_id
        self.payload = payload  # the INTERACTION_CREATE ``d``
        self.source_message_id = source_message_id
        self.callback: dict[str, Any] | None = None
        self.callback_files: list[tuple[str, bytes]] = []
        self.original_message_id: int | None = None
        self.followups: list[dict[str, Any]] = []
        self.followup_messages: list[dict[str, Any]] = []
        self.edits: list[dict[str, Any]] = []
        self._followups_taken = 0

    def __repr__(self) -> str:
        return f"<InteractionHandle id={self.id} type={self.type} callback={self.callback!r}>"

    async def response(self, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        """The body of the interaction callback (``{"type": ..., "data": ...}``)."""
        return await self._fake._wait_until(
            lambda: self.callback, timeout, f"a response to interaction {self.id}"
        )

    async def final(self, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        """The current state of the interaction's original message.

        Waits for the callback; after a deferral (type 5/6) also waits for the first edit
        of ``@original`` or followup. Returns ``{}`` when there is no message (modal,
        autocomplete, or the message was deleted).
        """
        callback = await self.response(timeout)
        if callback.get("type") in (5, 6):
            await self._fake._wait_until(
                lambda: bool(self.edits or self.followups) or None,
                timeout,
                f"an edit or followup after the deferral of interaction {self.id}",
            )
        message = self.message
        return copy.deepcopy(message) if message is not None else {}

    @property
    def message(self) -> dict[str, Any] | None:
        """The live original message dict (or None)."""
        if self.original_message_id is None:
            return None
        return self._fake.messages.get(self.original_message_id)

    async def wait_followup(self, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        """Return the next followup body not yet returned by this method."""
        index = self._followups_taken
        body = await self._fake._wait_until(
            lambda: self.followups[index] if len(self.followups) > index else None,
            timeout,
            f"followup #{index + 1} of interaction {self.id}",
        )
        self._followups_taken = index + 1
        return body

    def ephemeral(self) -> bool:
        """Whether the initial response was ephemeral (flags & 64)."""
        if self.callback is None:
            raise RuntimeError("no response yet; await handle.response() first")
        data = self.callback.get("data") or {}
        return bool(int(data.get("flags") or 0) & FLAG_EPHEMERAL)


class _Ids:
    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def next(self) -> int:
        ms = int(time.time() * 1000) - _DISCORD_EPOCH_MS
        return (ms << 22) | (next(self._counter) & 0x3FFFFF)


_Handler = Callable[..., Awaitable[tuple[int, Any]]]


class FakeDiscord:
    """A loopback Discord (REST + gateway) for the real discord.py client."""

    def __init__(
        self,
        *,
        token: str = "fake-bot-token",
        application_id: int = 1_234_567_890_123_456_789,
        bot_user_id: int | None = None,
        bot_username: str = "FakeBot",
    ) -> None:
        self.token = token
        self.application_id = application_id
        self.bot_user_id = bot_user_id if bot_user_id is not None else application_id
        self.bot_username = bot_username
        self.intents_allowed = True
        self.app_flags = APP_FLAG_GATEWAY_GUILD_MEMBERS_LIMITED
        self.base_url = ""
        self.gateway_url = ""
        self.port = 0

        self.requests: list[RecordedRequest] = []
        self.errors: list[BaseException] = []
        self.gateway_received: list[dict[str, Any]] = []  # every frame the client sent
        self.gateway_connections: list[dict[str, str]] = []  # query of every ws connect
        self.ready_count = 0
        self.resume_count = 0

        self.users: dict[int, dict[str, Any]] = {}
        self.guilds: dict[int, FakeGuild] = {}
        self.dm_channels: dict[int, dict[str, Any]] = {}
        self.dm_blocked: set[int] = set()  # users whose DMs are closed to the bot
        self.messages: dict[int, dict[str, Any]] = {}
        self.deleted_message_ids: list[int] = []
        self.attachment_data: dict[int, bytes] = {}
        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: dict[int, list[dict[str, Any]]] = {}
        self.interactions: list[InteractionHandle] = []

        self._ids = _Ids()
        self._handles: dict[int, InteractionHandle] = {}
        self._sessions: dict[str, _Session] = {}
        self._conns: list[_GatewayConnection] = []
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._token_counter = itertools.count(1)
        self.add_user(self.bot_user_id, bot_username, bot=True)
        self._routes = self._build_routes()

    # ====================================================================================
    # lifecycle
    # ====================================================================================

    async def start(self) -> None:
        # Like Discord, accept uploads up to the attachment limit (aiohttp stops at 1 MiB).
        app = web.Application(client_max_size=2 * _ATTACHMENT_SIZE_LIMIT)
        app.router.add_get("/", self._gateway_handler)
        app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self._cdn)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest_handler)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{self.port}/api/v10"
        self.gateway_url = f"ws://127.0.0.1:{self.port}/"

    async def close(self) -> None:
        for conn in list(self._conns):
            conn.live = False
            with contextlib.suppress(Exception):
                await conn.ws.close(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @contextlib.contextmanager
    def patch_discord(self) -> Iterator[FakeDiscord]:
        """Point discord.py's REST base and default gateway at this fake; restore on exit."""
        if not self.base_url:
            raise RuntimeError("start() the fake before patching discord.py")
        route_cls = discord.http.Route
        ws_cls = discord.gateway.DiscordWebSocket
        old_base, old_gateway = route_cls.BASE, ws_cls.DEFAULT_GATEWAY
        route_cls.BASE = self.base_url
        ws_cls.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        try:
            yield self
        finally:
            route_cls.BASE = old_base
            ws_cls.DEFAULT_GATEWAY = old_gateway

    # ====================================================================================
    # world state
    # ====================================================================================

    def add_user(self, user_id: int, username: str, *, bot: bool = False) -> dict[str, Any]:
        user = self.users.get(user_id)
        if user is None:
            user = {
                "id": str(user_id),
                "username": username,
                "discriminator": "0",
                "global_name": None if bot else username,
                "avatar": None,
                "bot": bot,
                "public_flags": 0,
            }
            self.users[user_id] = user
        return user

    def add_guild(
        self,
        guild_id: int,
        name: str = "Fake Guild",
        owner_id: int = 1_111_111_111_111_111_111,
        *,
        everyone_permissions: int = DEFAULT_EVERYONE_PERMISSIONS,
    ) -> FakeGuild:
        """Add a guild the bot is in (with @everyone, the bot's managed role and the bot)."""
        guild = FakeGuild(self, guild_id, name, owner_id, everyone_permissions)
        self.guilds[guild_id] = guild
        for conn in self._live_conns(guild_id):
            assert conn.session is not None
            all_members = bool(conn.session.intents & INTENT_GUILD_PRESENCES)
            conn.send_dispatch("GUILD_CREATE", guild._gateway_payload(all_members=all_members))
        return guild

    def bot_user(self) -> dict[str, Any]:
        return copy.deepcopy(self.users[self.bot_user_id])

    def messages_in(self, channel_id: int) -> list[dict[str, Any]]:
        """All live messages in a channel (including interaction responses), oldest first."""
        return [m for m in self.messages.values() if int(m["channel_id"]) == channel_id]

    # ====================================================================================
    # waiting
    # ====================================================================================

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def _wait_until(
        self,
        predicate: Callable[[], Any],
        timeout: float,  # noqa: ASYNC109
        what: str,
    ) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if result is not None:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                recent = "\n  ".join(
                    f"{r.method} {r.path} -> {r.status}" for r in self.requests[-8:]
                )
                raise TimeoutError(
                    f"timed out after {timeout}s waiting for {what}; errors={self.errors!r}; "
                    f"recent requests:\n  {recent}"
                )
            event = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    async def wait_for_request(
        self,
        predicate: Callable[[RecordedRequest], bool],
        timeout: float = 5.0,  # noqa: ASYNC109
        *,
        since: int = 0,
    ) -> RecordedRequest:
        """First recorded request (index >= ``since``) matching ``predicate``; waits for it.

        Requests are recorded after the fake has handled them, so state is already updated.
        """

        def find() -> RecordedRequest | None:
            return next((r for r in self.requests[since:] if predicate(r)), None)

        return await self._wait_until(find, timeout, "a matching request")

    async def wait_ready(self, timeout: float = 10, *, count: int = 1) -> None:  # noqa: ASYNC109
        """Until READY and all GUILD_CREATEs were written for the ``count``-th IDENTIFY."""
        await self._wait_until(
            lambda: True if self.ready_count >= count else None, timeout, f"READY #{count}"
        )

    async def wait_resumed(self, timeout: float = 10, *, count: int = 1) -> None:  # noqa: ASYNC109
        """Until the ``count``-th successful RESUME was answered with RESUMED."""
        await self._wait_until(
            lambda: True if self.resume_count >= count else None, timeout, f"RESUMED #{count}"
        )

    # ====================================================================================
    # gateway
    # ====================================================================================

    def _live_conns(self, guild_id: int | None) -> list[_GatewayConnection]:
        return [c for c in self._conns if c.live and c.covers_guild(guild_id)]

    def _broadcast(
        self, guild_id: int | None, event: str, data: Any, intent: int | None = None
    ) -> list[asyncio.Future[bool]]:
        futures = []
        for conn in self._live_conns(guild_id):
            assert conn.session is not None
            if intent is None or conn.session.intents & intent:
                futures.append(conn.send_dispatch(event, copy.deepcopy(data)))
        return futures

    async def dispatch(
        self,
        event: str,
        data: Any,
        *,
        guild_id: int | None = None,
        intent: int | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> None:
        """Send a dispatch to the live session(s), waiting for one to exist and for delivery."""
        await self._wait_until(
            lambda: self._live_conns(guild_id) or None, timeout, "a live gateway session"
        )
        await asyncio.gather(*self._broadcast(guild_id, event, data, intent))

    async def drop_gateway(self, resumable: bool = True) -> None:
        """Close the live websocket(s) (code 4000) so the client reconnects.

        With ``resumable=False`` the session is invalidated: the client's RESUME gets
        INVALID_SESSION (op 9, d=false) and it identifies again.
        """
        for conn in [c for c in self._conns if c.live]:
            conn.live = False
            if conn.session is not None and not resumable:
                conn.session.resumable = False
            await conn.ws.close(code=4000, message=b"fake drop")

    async def _gateway_handler(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self.gateway_connections.append(dict(request.query))
        conn = _GatewayConnection(ws, zlib_stream=request.query.get("compress") == "zlib-stream")
        self._conns.append(conn)
        conn.send({"op": 10, "d": {"heartbeat_interval": _HEARTBEAT_INTERVAL_MS, "_trace": []}})
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                try:
                    payload = json.loads(msg.data)
                    self.gateway_received.append(payload)
                    self._notify()
                    await self._on_gateway_frame(conn, payload)
                except Exception as exc:
                    self.errors.append(exc)
        finally:
            await conn.stop()
            self._conns.remove(conn)
            self._notify()
        return ws

    async def _on_gateway_frame(self, conn: _GatewayConnection, payload: dict[str, Any]) -> None:
        op, d = payload.get("op"), payload.get("d")
        if op == 1:  # HEARTBEAT
            conn.send({"op": 11, "d": None})
        elif op == 2:  # IDENTIFY
            await self._on_identify(conn, d or {})
        elif op == 6:  # RESUME
            await self._on_resume(conn, d or {})
        elif op == 8:  # REQUEST_GUILD_MEMBERS
            self._on_request_members(conn, d or {})
        # op 3 (presence), op 4 (voice state) and others are recorded and ignored

    async def _on_identify(self, conn: _GatewayConnection, d: dict[str, Any]) -> None:
        if d.get("token") != self.token:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        intents = int(d.get("intents") or 0)
        if intents & PRIVILEGED_INTENTS and not self.intents_allowed:
            await conn.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        session = _Session(uuid.uuid4().hex, intents, d.get("shard"))
        self._sessions[session.session_id] = session
        conn.session = session
        guilds = [g for g in self.guilds.values() if conn.covers_guild(g.id)]
        ready: dict[str, Any] = {
            "v": 10,
            "user": {**self.bot_user(), "verified": True, "mfa_enabled": False, "flags": 0},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": self.app_flags},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "_trace": ["fake-gateway"],
        }
        if session.shard is not None:
            ready["shard"] = session.shard
        last = conn.send_dispatch("READY", ready)
        all_members = bool(intents & INTENT_GUILD_PRESENCES)
        for guild in guilds:
            last = conn.send_dispatch(
                "GUILD_CREATE", guild._gateway_payload(all_members=all_members)
            )
        conn.live = True
        if await last:
            self.ready_count += 1
        self._notify()

    async def _on_resume(self, conn: _GatewayConnection, d: dict[str, Any]) -> None:
        if d.get("token") != self.token:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        session = self._sessions.get(str(d.get("session_id")))
        if session is None or not session.resumable:
            conn.send({"op": 9, "d": False})
            return
        conn.session = session
        conn.live = True
        if await conn.send_dispatch("RESUMED", {"_trace": ["fake-gateway"]}):
            self.resume_count += 1
        self._notify()

    def _on_request_members(self, conn: _GatewayConnection, d: dict[str, Any]) -> None:
        if conn.session is None:
            return
        raw_ids = d.get("guild_id")
        guild_ids = raw_ids if isinstance(raw_ids, list) else [raw_ids]
        for raw in guild_ids:
            guild = self.guilds.get(int(raw))
            if guild is None:
                continue
            members = list(guild.members.values())
            not_found: list[str] = []
            user_ids = d.get("user_ids")
            if user_ids is not None:
                wanted = [int(u) for u in (user_ids if isinstance(user_ids, list) else [user_ids])]
                members = [guild.members[u] for u in wanted if u in guild.members]
                not_found = [str(u) for u in wanted if u not in guild.members]
            else:
                query = str(d.get("query") or "").lower()
                if query:
                    members = [
                        m
                        for m in members
                        if m["user"]["username"].lower().startswith(query)
                        or (m["nick"] or "").lower().startswith(query)
                    ]
                limit = int(d.get("limit") or 0)
                if limit:
                    members = members[:limit]
            chunk: dict[str, Any] = {
                "guild_id": str(guild.id),
                "members": copy.deepcopy(members),
                "chunk_index": 0,
                "chunk_count": 1,
            }
            if user_ids is not None:
                chunk["not_found"] = not_found
            if d.get("presences"):
                chunk["presences"] = []
            if d.get("nonce") is not None:
                chunk["nonce"] = d["nonce"]
            conn.send_dispatch("GUILD_MEMBERS_CHUNK", chunk)

    # ====================================================================================
    # driving the "Discord side"
    # ====================================================================================

    def _guild(self, guild_id: int) -> FakeGuild:
        guild = self.guilds.get(int(guild_id))
        if guild is None:
            raise _ApiError(404, 10004, "Unknown Guild")
        return guild

    def _find_command(self, guild_id: int, name: str) -> dict[str, Any]:
        for cmd in self.guild_commands.get(guild_id, []):
            if cmd["name"] == name and cmd.get("type", 1) == 1:
                return cmd
        for cmd in self.global_commands:
            if cmd["name"] == name and cmd.get("type", 1) == 1:
                return cmd
        raise LookupError(
            f"slash command {name!r} is not registered for guild {guild_id} or globally "
            "(did the bot sync its command tree?)"
        )

    def _interaction_member(
        self, guild: FakeGuild, user_id: int, channel_id: int, permissions: int | None
    ) -> dict[str, Any]:
        member = guild.members.get(user_id)
        if member is None:
            raise LookupError(f"user {user_id} is not a member of guild {guild.id}")
        if permissions == OMIT_PERMISSIONS:
            # Like a payload that carries no resolved permissions at all.
            return {**copy.deepcopy(member), "unusual_dm_activity_until": None}
        if permissions is None:
            permissions = guild.channel_permissions(user_id, channel_id)
        return {
            **copy.deepcopy(member),
            "permissions": str(permissions),
            "unusual_dm_activity_until": None,
        }

    def _default_channel(self, guild: FakeGuild) -> int:
        if not guild.channels:
            raise LookupError(f"guild {guild.id} has no channels; add_channel() first")
        return next(iter(guild.channels))

    def _base_interaction(
        self,
        interaction_type: int,
        guild: FakeGuild,
        user_id: int,
        channel_id: int,
        permissions: int | None,
        data: dict[str, Any],
        locale: str,
    ) -> tuple[int, str, dict[str, Any]]:
        interaction_id = self._ids.next()
        token = f"fake-interaction-{next(self._token_counter)}-{uuid.uuid4().hex}"
        channel = guild.channels.get(channel_id)
        if channel is None:
            raise LookupError(f"unknown channel {channel_id} in guild {guild.id}")
        payload: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": interaction_type,
            "data": data,
            "guild_id": str(guild.id),
            "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
            "channel_id": str(channel_id),
            "channel": {
                **copy.deepcopy(channel),
                "permissions": str(guild.channel_permissions(user_id, channel_id)),
            },
            "member": self._interaction_member(guild, user_id, channel_id, permissions),
            "token": token,
            "version": 1,
            "app_permissions": str(guild.channel_permissions(self.bot_user_id, channel_id)),
            "locale": locale,
            "guild_locale": "en-US",
            "entitlements": [],
            "entitlement_sku_ids": [],
            "authorizing_integration_owners": {"0": str(guild.id)},
            "context": 0,
            "attachment_size_limit": _ATTACHMENT_SIZE_LIMIT,
        }
        return interaction_id, token, payload

    async def _send_interaction(
        self,
        *,
        interaction_type: int,
        guild: FakeGuild,
        user_id: int,
        channel_id: int,
        permissions: int | None,
        data: dict[str, Any],
        locale: str,
        message: dict[str, Any] | None = None,
    ) -> InteractionHandle:
        interaction_id, token, payload = self._base_interaction(
            interaction_type, guild, user_id, channel_id, permissions, data, locale
        )
        if message is not None:
            payload["message"] = copy.deepcopy(message)
        handle = InteractionHandle(
            self,
            interaction_id=interaction_id,
            token=token,
            interaction_type=interaction_type,
            guild_id=guild.id,
            channel_id=channel_id,
            user_id=user_id,
            payload=payload,
            source_message_id=int(message["id"]) if message is not None else None,
        )
        self._handles[interaction_id] = handle
        self.interactions.append(handle)
        await self.dispatch("INTERACTION_CREATE", payload, guild_id=guild.id)
        return handle

    async def slash(
        self,
        guild_id: int,
        user_id: int,
        name: str,
        options: list[dict[str, Any]] | None = None,
        *,
        subcommand: Iterable[str] = (),
        permissions: int | None = None,
        channel_id: int | None = None,
        locale: str = "en-US",
        resolved: dict[str, Any] | None = None,
    ) -> InteractionHandle:
        """Invoke a registered slash command as ``user_id`` (APPLICATION_COMMAND interaction).

        ``options`` are leaf options like ``{"name": "role", "type": 8, "value": "123"}``;
        a missing ``type`` is taken from the registered command. ``subcommand`` is the path
        below the command, e.g. ``["group", "sub"]``. ``resolved`` is filled in from the
        world state for user/channel/role/mentionable options (extra entries merged in).
        """
        guild = self._guild(guild_id)
        command = self._find_command(guild_id, name)
        path = list(subcommand)
        leaves = self._typed_options(command, path, copy.deepcopy(options or []))
        channel_id = channel_id if channel_id is not None else self._default_channel(guild)
        resolved_data = self._resolve_options(guild, user_id, leaves)
        for key, values in (resolved or {}).items():
            resolved_data.setdefault(key, {}).update(values)

        nested: list[dict[str, Any]] = leaves
        for depth, sub in reversed(list(enumerate(path))):
            sub_type = 1 if depth == len(path) - 1 else 2
            nested = [{"name": sub, "type": sub_type, "options": nested}]
        data: dict[str, Any] = {"id": command["id"], "name": name, "type": 1}
        if command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        if nested:
            data["options"] = nested
        if resolved_data:
            data["resolved"] = resolved_data
        return await self._send_interaction(
            interaction_type=_APP_COMMAND,
            guild=guild,
            user_id=user_id,
            channel_id=channel_id,
            permissions=permissions,
            data=data,
            locale=locale,
        )

    @staticmethod
    def _typed_options(
        command: dict[str, Any], path: list[str], leaves: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        defs = command.get("options") or []
        for sub in path:
            match = next(
                (o for o in defs if o.get("name") == sub and o.get("type") in (1, 2)), None
            )
            if match is None:
                raise LookupError(f"/{command['name']} has no subcommand (group) {sub!r}")
            defs = match.get("options") or []
        types = {o["name"]: o["type"] for o in defs if "name" in o and "type" in o}
        for leaf in leaves:
            if "type" not in leaf:
                if leaf.get("name") not in types:
                    raise LookupError(f"unknown option {leaf.get('name')!r} for /{command['name']}")
                leaf["type"] = types[leaf["name"]]
            if leaf["type"] in (6, 7, 8, 9, 11):
                leaf["value"] = str(leaf["value"])
        return leaves

    def _resolve_options(
        self, guild: FakeGuild, user_id: int, leaves: list[dict[str, Any]]
    ) -> dict[str, Any]:
        resolved: dict[str, dict[str, Any]] = {}
        for leaf in leaves:
            kind, value = leaf["type"], leaf.get("value")
            if kind not in (6, 7, 8, 9):
                continue
            target = int(value)
            if kind in (6, 9) and target in self.users:
                resolved.setdefault("users", {})[str(target)] = copy.deepcopy(self.users[target])
                member = guild.members.get(target)
                if member is not None:
                    entry = {k: copy.deepcopy(v) for k, v in member.items() if k != "user"}
                    entry["permissions"] = str(guild.base_permissions(target))
                    resolved.setdefault("members", {})[str(target)] = entry
            elif kind in (8, 9) and target in guild.roles:
                resolved.setdefault("roles", {})[str(target)] = copy.deepcopy(guild.roles[target])
            elif kind == 7 and target in guild.channels:
                channel = copy.deepcopy(guild.channels[target])
                channel["permissions"] = str(guild.channel_permissions(user_id, target))
                resolved.setdefault("channels", {})[str(target)] = channel
            else:
                raise LookupError(f"option {leaf['name']!r}: nothing with id {target} to resolve")
        return resolved

    async def click(
        self,
        guild_id: int,
        user_id: int,
        message: dict[str, Any],
        custom_id: str,
        *,
        values: list[str] | None = None,
        permissions: int | None = None,
        locale: str = "en-US",
    ) -> InteractionHandle:
        """Use a component (button; select with ``values``) on a message the bot sent."""
        guild = self._guild(guild_id)
        current = self.messages.get(int(message["id"]), message)
        component = self._find_component(current.get("components") or [], custom_id)
        if component is None:
            raise LookupError(f"message {message['id']} has no component {custom_id!r}")
        if component.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
        if values is not None or component["type"] in (3, 5, 6, 7, 8):
            data["values"] = list(values or [])
        return await self._send_interaction(
            interaction_type=_COMPONENT,
            guild=guild,
            user_id=user_id,
            channel_id=int(current["channel_id"]),
            permissions=permissions,
            data=data,
            locale=locale,
            message=current,
        )

    @classmethod
    def _find_component(cls, components: list[dict[str, Any]], custom_id: str) -> dict | None:
        for comp in components:
            if comp.get("custom_id") == custom_id:
                return comp
            children = list(comp.get("components") or [])
            for key in ("accessory", "component"):
                if isinstance(comp.get(key), dict):
                    children.append(comp[key])
            found = cls._find_component(children, custom_id)
            if found is not None:
                return found
        return None

    async def submit_modal(
        self,
        guild_id: int,
        user_id: int,
        custom_id: str,
        values: dict[str, Any],
        *,
        channel_id: int | None = None,
        permissions: int | None = None,
        locale: str = "en-US",
    ) -> InteractionHandle:
        """Submit the modal the bot most recently showed with ``custom_id``.

        ``values`` maps input custom_ids to a string (text input) or a list (selects).
        The submitted components mirror the layout the bot sent (action rows or labels).
        """
        guild = self._guild(guild_id)
        opener = next(
            (
                h
                for h in reversed(self.interactions)
                if h.callback is not None
                and h.callback.get("type") == 9
                and (h.callback.get("data") or {}).get("custom_id") == custom_id
            ),
            None,
        )
        source_message: dict[str, Any] | None = None
        if opener is not None:
            modal = opener.callback["data"] if opener.callback else {}
            remaining = dict(values)
            components = [
                c for c in (self._modal_answer(x, remaining) for x in modal["components"]) if c
            ]
            if remaining:
                raise ValueError(f"modal {custom_id!r} has no inputs {sorted(remaining)}")
            channel_id = channel_id if channel_id is not None else opener.channel_id
            if opener.source_message_id is not None:
                source_message = self.messages.get(opener.source_message_id)
        else:
            components = [
                {"type": 1, "components": [{"type": 4, "custom_id": k, "value": v}]}
                for k, v in values.items()
            ]
        channel_id = channel_id if channel_id is not None else self._default_channel(guild)
        return await self._send_interaction(
            interaction_type=_MODAL_SUBMIT,
            guild=guild,
            user_id=user_id,
            channel_id=channel_id,
            permissions=permissions,
            data={"custom_id": custom_id, "components": components},
            locale=locale,
            message=source_message,
        )

    @classmethod
    def _modal_answer(cls, comp: dict[str, Any], values: dict[str, Any]) -> dict[str, Any] | None:
        kind = comp.get("type")
        if kind == 1:
            children = [c for c in (cls._modal_answer(x, values) for x in comp["components"]) if c]
            return {"type": 1, "id": comp.get("id"), "components": children}
        if kind == 18:
            inner = cls._modal_answer(comp["component"], values)
            return {"type": 18, "id": comp.get("id"), "component": inner} if inner else None
        custom_id = comp.get("custom_id")
        if custom_id is None:
            return {"type": kind, "id": comp.get("id")}
        answer: dict[str, Any] = {"type": kind, "id": comp.get("id"), "custom_id": custom_id}
        value = values.pop(custom_id, None)
        if kind == 4:
            if value is None and comp.get("required", True):
                raise ValueError(f"required text input {custom_id!r} needs a value")
            answer["value"] = "" if value is None else str(value)
        elif isinstance(value, list) or kind in (3, 5, 6, 7, 8, 19, 22):
            answer["values"] = list(value or [])
        else:
            answer["value"] = value
        return answer

    async def member_join(
        self, guild_id: int, user_id: int, username: str, *, roles: Iterable[int] = ()
    ) -> dict[str, Any]:
        """A user joins: update state and dispatch GUILD_MEMBER_ADD (members intent only)."""
        guild = self._guild(guild_id)
        member = guild.add_member(user_id, username, roles)
        await self.dispatch(
            "GUILD_MEMBER_ADD",
            {**member, "guild_id": str(guild_id)},
            guild_id=guild_id,
            intent=INTENT_GUILD_MEMBERS,
        )
        return member

    async def member_leave(self, guild_id: int, user_id: int) -> None:
        """A member leaves: update state and dispatch GUILD_MEMBER_REMOVE (members intent)."""
        guild = self._guild(guild_id)
        member = guild.members.pop(user_id)
        await self.dispatch(
            "GUILD_MEMBER_REMOVE",
            {"guild_id": str(guild_id), "user": member["user"]},
            guild_id=guild_id,
            intent=INTENT_GUILD_MEMBERS,
        )

    # ====================================================================================
    # REST plumbing
    # ====================================================================================

    def _build_routes(self) -> list[tuple[str, re.Pattern[str], _Handler, bool]]:
        snow = r"\d+"
        app = rf"/applications/(?P<app_id>{snow})"
        hook = rf"/webhooks/(?P<app_id>{snow})/(?P<token>[^/]+)"
        guild = rf"/guilds/(?P<guild_id>{snow})"
        member = rf"{guild}/members/(?P<user_id>{snow})"
        channel = rf"/channels/(?P<channel_id>{snow})"
        message = rf"{channel}/messages/(?P<message_id>{snow})"
        table: list[tuple[str, str, _Handler, bool]] = [
            ("GET", "/gateway", self._get_gateway, False),
            ("GET", "/gateway/bot", self._get_gateway_bot, True),
            ("GET", "/users/@me", self._get_me, True),
            ("GET", "/users/@me/guilds", self._get_my_guilds, True),
            ("POST", "/users/@me/channels", self._create_dm, True),
            ("GET", rf"/users/(?P<user_id>{snow})", self._get_user, True),
            ("GET", "/applications/@me", self._get_application, True),
            ("GET", "/oauth2/applications/@me", self._get_application, True),
            ("GET", rf"{app}/commands", self._get_global_commands, True),
            ("PUT", rf"{app}/commands", self._put_global_commands, True),
            ("GET", rf"{app}/guilds/(?P<guild_id>{snow})/commands", self._get_guild_cmds, True),
            ("PUT", rf"{app}/guilds/(?P<guild_id>{snow})/commands", self._put_guild_cmds, True),
            (
                "POST",
                rf"/interactions/(?P<interaction_id>{snow})/(?P<token>[^/]+)/callback",
                self._interaction_callback,
                False,
            ),
            ("POST", hook, self._webhook_execute, False),
            ("GET", rf"{hook}/messages/(?P<message_id>@original|{snow})", self._hook_get, False),
            ("PATCH", rf"{hook}/messages/(?P<message_id>@original|{snow})", self._hook_edit, False),
            ("DELETE", rf"{hook}/messages/(?P<message_id>@original|{snow})", self._hook_del, False),
            ("PUT", rf"{member}/roles/(?P<role_id>{snow})", self._add_member_role, True),
            ("DELETE", rf"{member}/roles/(?P<role_id>{snow})", self._remove_member_role, True),
            ("GET", member, self._get_member, True),
            ("PATCH", member, self._edit_member, True),
            ("GET", rf"{guild}/members", self._list_members, True),
            ("GET", rf"{guild}/roles", self._get_roles, True),
            ("GET", rf"{guild}/channels", self._get_channels, True),
            ("GET", guild, self._get_guild_rest, True),
            ("GET", channel, self._get_channel, True),
            ("POST", rf"{channel}/messages", self._create_message, True),
            ("GET", message, self._get_message, True),
            ("PATCH", message, self._edit_message, True),
            ("DELETE", message, self._delete_message, True),
        ]
        return [(m, re.compile(p), h, auth) for m, p, h, auth in table]

    async def _rest_handler(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        headers: CIMultiDict[str] = CIMultiDict(request.headers)
        if "X-Audit-Log-Reason" in headers:
            headers["X-Audit-Log-Reason"] = unquote(headers["X-Audit-Log-Reason"])
        record = RecordedRequest(
            method=request.method,
            path=path,
            query=dict(request.query),
            json=None,
            files=[],
            headers=headers,
        )
        try:
            await self._read_body(request, record)
            status, body = await self._route(record)
        except _ApiError as exc:
            status, body = exc.status, exc.body
        except Exception as exc:  # a bug in the fake or a malformed request: never 5xx
            self.errors.append(exc)
            status, body = 400, {"message": f"fake discord error: {exc!r}", "code": 50035}
        record.status, record.response = status, body
        self.requests.append(record)
        self._notify()
        if status == 204 or body is None:
            return web.Response(status=status)
        return web.Response(
            status=status,
            body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )

    @staticmethod
    async def _read_body(request: web.Request, record: RecordedRequest) -> None:
        if not request.can_read_body:
            return
        content_type = request.content_type
        if content_type.startswith("multipart/"):
            reader = await request.multipart()
            files: list[tuple[int, str, bytes]] = []
            async for part in reader:
                name = getattr(part, "name", None) or ""
                data = await part.read()  # type: ignore[union-attr]
                if name == "payload_json":
                    record.json = json.loads(data)
                else:
                    index = re.fullmatch(r"files\[(\d+)\]", name)
                    position = int(index.group(1)) if index else len(files)
                    filename = getattr(part, "filename", None) or name
                    files.append((position, filename, bytes(data)))
            record.files = [(fn, data) for _, fn, data in sorted(files, key=lambda f: f[0])]
        else:
            raw = await request.read()
            if raw:
                record.json = json.loads(raw)

    async def _route(self, record: RecordedRequest) -> tuple[int, Any]:
        path_matched = False
        for method, pattern, handler, auth in self._routes:
            match = pattern.fullmatch(record.path)
            if match is None:
                continue
            path_matched = True
            if method != record.method:
                continue
            if auth and record.headers.get("Authorization") != f"Bot {self.token}":
                raise _ApiError(401, 0, "401: Unauthorized")
            return await handler(record, **match.groupdict())
        if path_matched:
            raise _ApiError(405, 0, "405: Method Not Allowed")
        raise _ApiError(404, 0, "404: Not Found")

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        data = self.attachment_data.get(int(request.match_info["attachment_id"]))
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="application/octet-stream")

    # ====================================================================================
    # REST: identity, gateway, application, commands
    # ====================================================================================

    async def _get_gateway(self, record: RecordedRequest) -> tuple[int, Any]:
        return 200, {"url": self.gateway_url}

    async def _get_gateway_bot(self, record: RecordedRequest) -> tuple[int, Any]:
        limit = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
        return 200, {"url": self.gateway_url, "shards": 1, "session_start_limit": limit}

    async def _get_me(self, record: RecordedRequest) -> tuple[int, Any]:
        me = {**self.bot_user(), "verified": True, "mfa_enabled": False, "flags": 0}
        return 200, {**me, "email": None, "locale": "en-US", "premium_type": 0}

    async def _get_my_guilds(self, record: RecordedRequest) -> tuple[int, Any]:
        """Partial guilds of the bot, by id, `after`-paginated, with its base permissions."""
        limit = max(1, min(200, int(record.query.get("limit", 200))))
        after = int(record.query.get("after", 0))
        ids = sorted(gid for gid in self.guilds if gid > after)[:limit]
        return 200, [
            {
                "id": str(gid),
                "name": self.guilds[gid].name,
                "icon": None,
                "banner": None,
                "owner": self.guilds[gid].owner_id == self.bot_user_id,
                "permissions": str(self.guilds[gid].base_permissions(self.bot_user_id)),
                "features": [],
            }
            for gid in ids
        ]

    async def _get_user(self, record: RecordedRequest, user_id: str) -> tuple[int, Any]:
        user = self.users.get(int(user_id))
        if user is None:
            raise _ApiError(404, 10013, "Unknown User")
        return 200, copy.deepcopy(user)

    async def _create_dm(self, record: RecordedRequest) -> tuple[int, Any]:
        recipient_id = int((record.json or {}).get("recipient_id", 0))
        if recipient_id not in self.users:
            raise _ApiError(400, 50035, "Invalid Form Body")
        for channel in self.dm_channels.values():
            if int(channel["recipients"][0]["id"]) == recipient_id:
                return 200, copy.deepcopy(channel)
        channel_id = self._ids.next()
        channel = {
            "id": str(channel_id),
            "type": 1,
            "last_message_id": None,
            "flags": 0,
            "recipients": [copy.deepcopy(self.users[recipient_id])],
        }
        self.dm_channels[channel_id] = channel
        return 200, copy.deepcopy(channel)

    async def _get_application(self, record: RecordedRequest) -> tuple[int, Any]:
        owner = {
            "id": "1",
            "username": "owner",
            "discriminator": "0",
            "global_name": "owner",
            "avatar": None,
        }
        return 200, {
            "id": str(self.application_id),
            "name": self.bot_username,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "owner": owner,
            "team": None,
            "flags": self.app_flags,
            "bot": self.bot_user(),
            "interactions_endpoint_url": None,
            "redirect_uris": [],
            "tags": [],
            "approximate_guild_count": len(self.guilds),
        }

    def _check_app(self, app_id: str) -> None:
        if int(app_id) != self.application_id:
            raise _ApiError(403, 50001, "Missing Access")

    def _store_commands(
        self, payload: Any, existing: list[dict[str, Any]], guild_id: int | None
    ) -> list[dict[str, Any]]:
        if not isinstance(payload, list):
            raise _form_error("_root", "LIST_TYPE_CONVERT", "Must be a list.")
        by_key = {(c["name"], c.get("type", 1)): c for c in existing}
        stored = []
        for raw in payload:
            cmd = copy.deepcopy(raw)
            kind = cmd.get("type", 1)
            previous = by_key.get((cmd.get("name"), kind))
            cmd["id"] = previous["id"] if previous else str(self._ids.next())
            cmd["application_id"] = str(self.application_id)
            cmd["version"] = str(self._ids.next())
            cmd["type"] = kind
            cmd.setdefault("description", "")
            cmd.setdefault("default_member_permissions", None)
            cmd.setdefault("nsfw", False)
            if guild_id is not None:
                cmd["guild_id"] = str(guild_id)
            stored.append(cmd)
        return stored

    async def _get_global_commands(self, record: RecordedRequest, app_id: str) -> tuple[int, Any]:
        self._check_app(app_id)
        return 200, copy.deepcopy(self.global_commands)

    async def _put_global_commands(self, record: RecordedRequest, app_id: str) -> tuple[int, Any]:
        self._check_app(app_id)
        self.global_commands = self._store_commands(record.json, self.global_commands, None)
        return 200, copy.deepcopy(self.global_commands)

    async def _get_guild_cmds(
        self, record: RecordedRequest, app_id: str, guild_id: str
    ) -> tuple[int, Any]:
        self._check_app(app_id)
        if int(guild_id) not in self.guilds:
            raise _ApiError(403, 50001, "Missing Access")
        return 200, copy.deepcopy(self.guild_commands.get(int(guild_id), []))

    async def _put_guild_cmds(
        self, record: RecordedRequest, app_id: str, guild_id: str
    ) -> tuple[int, Any]:
        self._check_app(app_id)
        gid = int(guild_id)
        if gid not in self.guilds:
            raise _ApiError(403, 50001, "Missing Access")
        existing = self.guild_commands.get(gid, [])
        self.guild_commands[gid] = self._store_commands(record.json, existing, gid)
        return 200, copy.deepcopy(self.guild_commands[gid])

    # ====================================================================================
    # REST: messages (shared helpers)
    # ====================================================================================

    @staticmethod
    def _validate_message(
        body: dict[str, Any], files: list[tuple[str, bytes]], *, new: bool
    ) -> None:
        content = body.get("content")
        if content is not None and len(str(content)) > 2000:
            raise _form_error("content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length.")
        embeds = body.get("embeds") or []
        if len(embeds) > 10:
            raise _form_error("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
        total = 0
        limits = {"title": 256, "description": 4096}
        for i, embed in enumerate(embeds):
            for key, limit in limits.items():
                if len(embed.get(key) or "") > limit:
                    raise _form_error(f"embeds.{i}.{key}", "BASE_TYPE_MAX_LENGTH", "Too long.")
            fields = embed.get("fields") or []
            if len(fields) > 25:
                raise _form_error(f"embeds.{i}.fields", "BASE_TYPE_MAX_LENGTH", "Too many.")
            for j, fld in enumerate(fields):
                if not fld.get("name") or not fld.get("value"):
                    raise _form_error(f"embeds.{i}.fields.{j}", "BASE_TYPE_REQUIRED", "Required.")
                if len(fld["name"]) > 256 or len(fld["value"]) > 1024:
                    raise _form_error(f"embeds.{i}.fields.{j}", "BASE_TYPE_MAX_LENGTH", "Too long.")
            total += sum(len(embed.get(k) or "") for k in limits)
            total += sum(len(f["name"]) + len(f["value"]) for f in fields)
            total += len((embed.get("footer") or {}).get("text") or "")
            total += len((embed.get("author") or {}).get("name") or "")
        if total > 6000:
            raise _form_error(
                "embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000"
            )
        if new and not (
            content
            or embeds
            or body.get("components")
            or files
            or body.get("sticker_ids")
            or body.get("poll")
        ):
            raise _ApiError(400, 50006, "Cannot send an empty message")

    def _new_attachment(
        self, channel_id: int, filename: str, data: bytes, description: str | None
    ) -> dict[str, Any]:
        attachment_id = self._ids.next()
        self.attachment_data[attachment_id] = data
        url = f"http://127.0.0.1:{self.port}/attachments/{channel_id}/{attachment_id}/{filename}"
        attachment: dict[str, Any] = {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": mimetypes.guess_type(filename)[0] or "application/octet-stream",
        }
        if description:
            attachment["description"] = description
        return attachment

    def _build_attachments(
        self,
        spec: list[dict[str, Any]] | None,
        files: list[tuple[str, bytes]],
        existing: list[dict[str, Any]],
        channel_id: int,
    ) -> list[dict[str, Any]]:
        if spec is None:
            result = list(existing)
            result += [self._new_attachment(channel_id, fn, data, None) for fn, data in files]
            return result
        old = {str(a["id"]): a for a in existing}
        result = []
        for item in spec:
            key = str(item.get("id"))
            if key in old:
                result.append(old[key])
                continue
            if not key.isdigit() or int(key) >= len(files):
                raise _form_error(
                    "attachments", "ATTACHMENT_NOT_FOUND", f"Unknown attachment {key}"
                )
            filename, data = files[int(key)]
            filename = item.get("filename") or filename
            result.append(self._new_attachment(channel_id, filename, data, item.get("description")))
        return result

    def _apply_body(
        self,
        msg: dict[str, Any],
        body: dict[str, Any],
        files: list[tuple[str, bytes]],
        *,
        new: bool,
    ) -> None:
        if "content" in body:
            msg["content"] = "" if body["content"] is None else str(body["content"])
        if "embeds" in body:
            embeds = copy.deepcopy(body["embeds"] or [])
            for embed in embeds:
                embed.setdefault("type", "rich")
            msg["embeds"] = embeds
        if "components" in body:
            msg["components"] = copy.deepcopy(body["components"] or [])
        for key in ("tts", "poll", "message_reference", "nonce"):
            if key in body and body[key] is not None:
                msg[key] = copy.deepcopy(body[key])
        if "attachments" in body or files:
            msg["attachments"] = self._build_attachments(
                body.get("attachments"), files, msg["attachments"], int(msg["channel_id"])
            )
        flags = body.get("flags")
        if new:
            msg["flags"] = int(flags or 0) & ~FLAG_LOADING
        else:
            keep = msg["flags"] & FLAG_EPHEMERAL
            incoming = msg["flags"] if flags is None else int(flags)
            msg["flags"] = keep | (incoming & ~(FLAG_EPHEMERAL | FLAG_LOADING))
            msg["edited_timestamp"] = _now_iso()

    def _new_message(
        self,
        *,
        channel_id: int,
        guild_id: int | None,
        body: dict[str, Any],
        files: list[tuple[str, bytes]],
        message_type: int = 0,
        handle: InteractionHandle | None = None,
    ) -> dict[str, Any]:
        message_id = self._ids.next()
        msg: dict[str, Any] = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "author": self.bot_user(),
            "content": "",
            "embeds": [],
            "components": [],
            "attachments": [],
            "flags": 0,
            "type": message_type,
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "pinned": False,
        }
        if guild_id is not None:
            msg["guild_id"] = str(guild_id)
        if handle is not None:
            msg["webhook_id"] = str(self.application_id)
            msg["application_id"] = str(self.application_id)
            metadata: dict[str, Any] = {
                "id": str(handle.id),
                "type": handle.type,
                "user": copy.deepcopy(self.users[handle.user_id]),
                "authorizing_integration_owners": {"0": str(handle.guild_id)},
            }
            if handle.type == _APP_COMMAND:
                metadata["name"] = handle.payload["data"]["name"]
                metadata["command_type"] = 1
            if handle.source_message_id is not None:
                metadata["interacted_message_id"] = str(handle.source_message_id)
            msg["interaction_metadata"] = metadata
        self._apply_body(msg, body, files, new=True)
        self.messages[message_id] = msg
        return msg

    # ====================================================================================
    # REST: interactions and webhooks
    # ====================================================================================

    async def _interaction_callback(
        self, record: RecordedRequest, interaction_id: str, token: str
    ) -> tuple[int, Any]:
        handle = self._handles.get(int(interaction_id))
        if handle is None or handle.token != token:
            raise _ApiError(404, 10062, "Unknown interaction")
        if handle.callback is not None:
            raise _ApiError(400, 40060, "Interaction has already been acknowledged.")
        body = record.json or {}
        kind = body.get("type")
        data = body.get("data") or {}
        message: dict[str, Any] | None = None
        if kind == 1 and handle.type == _PING:
            pass
        elif kind in (4, 5) and handle.type != _AUTOCOMPLETE:
            if kind == 4:
                self._validate_message(data, record.files, new=True)
                content_body, files = data, record.files
            else:
                content_body, files = {"flags": int(data.get("flags") or 0)}, []
            message = self._new_message(
                channel_id=handle.channel_id,
                guild_id=handle.guild_id,
                body=content_body,
                files=files,
                message_type=20 if handle.type == _APP_COMMAND else 0,
                handle=handle,
            )
            if kind == 5:
                message["flags"] |= FLAG_LOADING
            handle.original_message_id = int(message["id"])
        elif kind in (6, 7) and handle.source_message_id is not None:
            message = self.messages.get(handle.source_message_id)
            if message is None:
                raise _ApiError(404, 10008, "Unknown Message")
            if kind == 7:
                self._validate_message(data, record.files, new=False)
                self._apply_body(message, data, record.files, new=False)
            handle.original_message_id = int(message["id"])
        elif kind == 8 and handle.type == _AUTOCOMPLETE:
            pass
        elif kind == 9 and handle.type in (_APP_COMMAND, _COMPONENT):
            if not data.get("custom_id") or not data.get("title") or not data.get("components"):
                raise _form_error("data", "BASE_TYPE_REQUIRED", "custom_id/title/components")
        else:
            raise _form_error("type", "INTERACTION_RESPONSE_TYPE_INVALID", f"Bad type {kind}")
        handle.callback = copy.deepcopy(body)
        handle.callback_files = list(record.files)
        self._notify()
        if record.query.get("with_response", "").lower() not in ("1", "true"):
            return 204, None
        interaction: dict[str, Any] = {"id": str(handle.id), "type": handle.type}
        response: dict[str, Any] = {"interaction": interaction}
        if message is not None:
            interaction.update(
                response_message_id=message["id"],
                response_message_loading=kind == 5,
                response_message_ephemeral=bool(message["flags"] & FLAG_EPHEMERAL),
            )
            if kind in (4, 5, 7):
                response["resource"] = {"type": kind, "message": copy.deepcopy(message)}
        return 200, response

    def _webhook_handle(self, app_id: str, token: str) -> InteractionHandle:
        if int(app_id) == self.application_id:
            for handle in self._handles.values():
                if handle.token == token and handle.callback is not None:
                    return handle
        raise _ApiError(404, 10015, "Unknown Webhook")

    def _handle_message(self, handle: InteractionHandle, message_id: str) -> dict[str, Any]:
        if message_id == "@original":
            msg_id = handle.original_message_id
        else:
            msg_id = int(message_id)
            own = {int(m["id"]) for m in handle.followup_messages}
            if handle.original_message_id is not None:
                own.add(handle.original_message_id)
            if msg_id not in own:
                raise _ApiError(404, 10008, "Unknown Message")
        message = self.messages.get(msg_id) if msg_id is not None else None
        if message is None:
            raise _ApiError(404, 10008, "Unknown Message")
        return message

    async def _webhook_execute(
        self, record: RecordedRequest, app_id: str, token: str
    ) -> tuple[int, Any]:
        handle = self._webhook_handle(app_id, token)
        body = record.json or {}
        self._validate_message(body, record.files, new=True)
        original = handle.message
        if (
            original is not None
            and original["flags"] & FLAG_LOADING
            and handle.callback is not None
            and handle.callback.get("type") == 5
        ):
            # Discord: the first followup after a deferral replaces the "thinking" message.
            self._apply_body(original, {**body, "flags": None}, record.files, new=False)
            original["edited_timestamp"] = None
            message = original
        else:
            message = self._new_message(
                channel_id=handle.channel_id,
                guild_id=handle.guild_id,
                body=body,
                files=record.files,
                handle=handle,
            )
        handle.followups.append(copy.deepcopy(body))
        handle.followup_messages.append(message)
        self._notify()
        if record.query.get("wait", "").lower() in ("1", "true"):
            return 200, copy.deepcopy(message)
        return 204, None

    async def _hook_get(
        self, record: RecordedRequest, app_id: str, token: str, message_id: str
    ) -> tuple[int, Any]:
        handle = self._webhook_handle(app_id, token)
        return 200, copy.deepcopy(self._handle_message(handle, message_id))

    async def _hook_edit(
        self, record: RecordedRequest, app_id: str, token: str, message_id: str
    ) -> tuple[int, Any]:
        handle = self._webhook_handle(app_id, token)
        message = self._handle_message(handle, message_id)
        body = record.json or {}
        self._validate_message(body, record.files, new=False)
        self._apply_body(message, body, record.files, new=False)
        handle.edits.append(copy.deepcopy(body))
        self._notify()
        return 200, copy.deepcopy(message)

    async def _hook_del(
        self, record: RecordedRequest, app_id: str, token: str, message_id: str
    ) -> tuple[int, Any]:
        handle = self._webhook_handle(app_id, token)
        message = self._handle_message(handle, message_id)
        self._delete(int(message["id"]))
        return 204, None

    def _delete(self, message_id: int) -> None:
        self.messages.pop(message_id, None)
        self.deleted_message_ids.append(message_id)
        self._notify()

    # ====================================================================================
    # REST: guilds, members, roles
    # ====================================================================================

    def _member_of(self, guild: FakeGuild, user_id: str) -> dict[str, Any]:
        member = guild.members.get(int(user_id))
        if member is None:
            raise _ApiError(404, 10007, "Unknown Member")
        return member

    def _check_manage_role(self, guild: FakeGuild, role_id: int) -> None:
        role = guild.roles.get(role_id)
        if role is None:
            raise _ApiError(404, 10011, "Unknown Role")
        if self.bot_user_id == guild.owner_id:
            return
        if not guild.base_permissions(self.bot_user_id) & (MANAGE_ROLES | ADMINISTRATOR):
            raise _missing_permissions()
        if role["managed"] or role_id == guild.id:
            raise _missing_permissions()
        if role["position"] >= guild.top_role_position(self.bot_user_id):
            raise _missing_permissions()

    def _member_updated(self, guild: FakeGuild, member: dict[str, Any]) -> None:
        self._broadcast(
            guild.id,
            "GUILD_MEMBER_UPDATE",
            {**member, "guild_id": str(guild.id)},
            INTENT_GUILD_MEMBERS,
        )

    async def _add_member_role(
        self, record: RecordedRequest, guild_id: str, user_id: str, role_id: str
    ) -> tuple[int, Any]:
        guild = self._guild(int(guild_id))
        member = self._member_of(guild, user_id)
        self._check_manage_role(guild, int(role_id))
        if role_id not in member["roles"]:
            member["roles"].append(role_id)
            self._member_updated(guild, member)
        return 204, None

    async def _remove_member_role(
        self, record: RecordedRequest, guild_id: str, user_id: str, role_id: str
    ) -> tuple[int, Any]:
        guild = self._guild(int(guild_id))
        member = self._member_of(guild, user_id)
        self._check_manage_role(guild, int(role_id))
        if role_id in member["roles"]:
            member["roles"].remove(role_id)
            self._member_updated(guild, member)
        return 204, None

    async def _get_member(
        self, record: RecordedRequest, guild_id: str, user_id: str
    ) -> tuple[int, Any]:
        guild = self._guild(int(guild_id))
        return 200, copy.deepcopy(self._member_of(guild, user_id))

    async def _edit_member(
        self, record: RecordedRequest, guild_id: str, user_id: str
    ) -> tuple[int, Any]:
        guild = self._guild(int(guild_id))
        member = self._member_of(guild, user_id)
        body = record.json or {}
        if "roles" in body:
            wanted = [str(r) for r in body["roles"] or []]
            for role_id in set(wanted) ^ set(member["roles"]):
                self._check_manage_role(guild, int(role_id))
            member["roles"] = wanted
        if "nick" in body:
            if not guild.base_permissions(self.bot_user_id) & MANAGE_NICKNAMES:
                raise _missing_permissions()
            member["nick"] = body["nick"] or None
        self._member_updated(guild, member)
        return 200, copy.deepcopy(member)

    async def _list_members(self, record: RecordedRequest, guild_id: str) -> tuple[int, Any]:
        guild = self._guild(int(guild_id))
        if not self.intents_allowed:
            raise _ApiError(403, 50001, "Missing Access")
        limit = max(1, min(1000, int(record.query.get("limit", 1))))
        after = int(record.query.get("after", 0))
        ids = sorted(uid for uid in guild.members if uid > after)[:limit]
        return 200, [copy.deepcopy(guild.members[uid]) for uid in ids]

    async def _get_roles(self, record: RecordedRequest, guild_id: str) -> tuple[int, Any]:
        return 200, copy.deepcopy(list(self._guild(int(guild_id)).roles.values()))

    async def _get_channels(self, record: RecordedRequest, guild_id: str) -> tuple[int, Any]:
        return 200, copy.deepcopy(list(self._guild(int(guild_id)).channels.values()))

    async def _get_guild_rest(self, record: RecordedRequest, guild_id: str) -> tuple[int, Any]:
        guild = self._guild(int(guild_id))
        payload = guild._guild_object()
        if record.query.get("with_counts", "").lower() in ("1", "true"):
            payload["approximate_member_count"] = len(guild.members)
            payload["approximate_presence_count"] = 0
        return 200, payload

    # ====================================================================================
    # REST: channels and channel messages
    # ====================================================================================

    def _channel(self, channel_id: int) -> tuple[dict[str, Any], FakeGuild | None]:
        for guild in self.guilds.values():
            if channel_id in guild.channels:
                return guild.channels[channel_id], guild
        if channel_id in self.dm_channels:
            return self.dm_channels[channel_id], None
        raise _ApiError(404, 10003, "Unknown Channel")

    async def _get_channel(self, record: RecordedRequest, channel_id: str) -> tuple[int, Any]:
        channel, _ = self._channel(int(channel_id))
        return 200, copy.deepcopy(channel)

    def _channel_message(self, channel_id: str, message_id: str) -> dict[str, Any]:
        self._channel(int(channel_id))
        message = self.messages.get(int(message_id))
        if message is None or message["channel_id"] != channel_id:
            raise _ApiError(404, 10008, "Unknown Message")
        return message

    async def _create_message(self, record: RecordedRequest, channel_id: str) -> tuple[int, Any]:
        cid = int(channel_id)
        channel, guild = self._channel(cid)
        body = record.json or {}
        if guild is not None:
            perms = guild.channel_permissions(self.bot_user_id, cid)
            needed = VIEW_CHANNEL | SEND_MESSAGES | (ATTACH_FILES if record.files else 0)
            if perms & needed != needed:
                raise _missing_permissions()
        elif int(channel["recipients"][0]["id"]) in self.dm_blocked:
            raise _ApiError(403, 50007, "Cannot send messages to this user")
        self._validate_message(body, record.files, new=True)
        message = self._new_message(
            channel_id=cid,
            guild_id=guild.id if guild else None,
            body=body,
            files=record.files,
        )
        channel["last_message_id"] = message["id"]
        intent = INTENT_GUILD_MESSAGES if guild else INTENT_DIRECT_MESSAGES
        self._broadcast(guild.id if guild else None, "MESSAGE_CREATE", message, intent)
        return 200, copy.deepcopy(message)

    async def _get_message(
        self, record: RecordedRequest, channel_id: str, message_id: str
    ) -> tuple[int, Any]:
        return 200, copy.deepcopy(self._channel_message(channel_id, message_id))

    async def _edit_message(
        self, record: RecordedRequest, channel_id: str, message_id: str
    ) -> tuple[int, Any]:
        message = self._channel_message(channel_id, message_id)
        if int(message["author"]["id"]) != self.bot_user_id or "webhook_id" in message:
            raise _ApiError(403, 50005, "Cannot edit a message authored by another user")
        body = record.json or {}
        self._validate_message(body, record.files, new=False)
        self._apply_body(message, body, record.files, new=False)
        self._notify()
        return 200, copy.deepcopy(message)

    async def _delete_message(
        self, record: RecordedRequest, channel_id: str, message_id: str
    ) -> tuple[int, Any]:
        message = self._channel_message(channel_id, message_id)
        self._delete(int(message["id"]))
        return 204, None
