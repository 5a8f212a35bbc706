"""What happened, for whoever watches (the admins' log channel): plain data, no Discord."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    guild_id: int
    member_id: int


@dataclass(frozen=True)
class Redeemed(Event):
    game_id: int
    role_id: int
    fingerprint: str


@dataclass(frozen=True)
class KeyShared(Event):
    """A key bound to `holder_id` was tried by `member_id`: a sign of key sharing."""

    holder_id: int
    game_id: int | None
    fingerprint: str


@dataclass(frozen=True)
class RoleFailed(Event):
    game_id: int
    role_id: int


@dataclass(frozen=True)
class CooldownReached(Event):
    pass


@dataclass(frozen=True)
class Revoked(Event):
    actor_id: int | None
    game_ids: tuple[int, ...]
    role_ids: tuple[int, ...]
    reason: str


class EventSink(Protocol):
    async def publish(self, event: Event) -> None: ...


class NullSink:
    async def publish(self, event: Event) -> None:
        return None


class FanOut:
    """The Bot's one sink: hands every event to whoever subscribed (e.g. the log channel)."""

    def __init__(self) -> None:
        self._sinks: list[EventSink] = []

    def subscribe(self, sink: EventSink) -> None:
        self._sinks.append(sink)

    def unsubscribe(self, sink: EventSink) -> None:
        if sink in self._sinks:
            self._sinks.remove(sink)

    async def publish(self, event: Event) -> None:
        for sink in list(self._sinks):
            await publish_safely(sink, event)


async def publish_safely(sink: EventSink, event: Event) -> None:
    """A failure to tell the admins must never break what the member is doing."""
    try:
        await sink.publish(event)
    except Exception:
        log.exception("Could not publish %s", type(event).__name__)


@dataclass(frozen=True)
class KeyRevokedByRecheck(Event):
    """itch.io now refuses a recorded key (refund, revoked key): the binding was revoked."""

    game_id: int
    role_id: int
    fingerprint: str
    role_removed: bool
    reason: str


@dataclass(frozen=True)
class RecheckHalted(Event):
    """A re-check run stopped itself: too many checks failed or were refused, or the API key
    was rejected. Nothing more was removed. `member_id` is 0 (not about one member)."""

    checked: int
    refused: int
    failed: int
    reason: str


@dataclass(frozen=True)
class ItchAccountTaken(Event):
    """`member_id` proved an itch.io account already linked to `holder_id`: refused."""

    holder_id: int
    itch_user_id: int
    itch_username: str | None


@dataclass(frozen=True)
class AccountLinked(Event):
    """`member_id` linked an itch.io account; `game_ids` are the games newly found by it."""

    itch_user_id: int
    itch_username: str | None
    game_ids: tuple[int, ...]
