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


async def publish_safely(sink: EventSink, event: Event) -> None:
    """A failure to tell the admins must never break what the member is doing."""
    try:
        await sink.publish(event)
    except Exception:
        log.exception("Could not publish %s", type(event).__name__)
