"""Shared fixtures: the loopback itch.io fake, a store on a temporary file."""

from __future__ import annotations

import aiohttp
import pytest

from bot.itch import ItchClient
from bot.service import RoleResult
from bot.store import Store
from tests.fakes.itch_fake import FakeItch


@pytest.fixture
async def itch():
    fake = FakeItch()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def store(tmp_path):
    s = await Store.open(tmp_path / "bot.db")
    yield s
    await s.close()


class RecordingRoles:
    """The service's door to Discord, recording every role change asked of it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int, int, str]] = []
        self.result = RoleResult.OK

    @property
    def changes(self) -> list[tuple[str, int, int, int]]:
        """The calls without their audit-log reasons."""
        return [call[:4] for call in self.calls]

    async def add_role(self, guild_id, member_id, role_id, reason):
        self.calls.append(("add", guild_id, member_id, role_id, reason))
        return self.result

    async def remove_role(self, guild_id, member_id, role_id, reason):
        self.calls.append(("remove", guild_id, member_id, role_id, reason))
        return self.result


class RecordingEvents:
    def __init__(self) -> None:
        self.events = []

    async def publish(self, event):
        self.events.append(event)


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def roles():
    return RecordingRoles()


@pytest.fixture
def events():
    return RecordingEvents()


def fast_itch_client(session: aiohttp.ClientSession, itch: FakeItch) -> ItchClient:
    """The real client against the itch fake, with timeouts and retries short for tests."""
    return ItchClient(
        session,
        itch.api_key,
        base_url=itch.base_url,
        rate_limit=100,
        burst=20,
        timeout=0.5,
        max_attempts=2,
        backoff_base=0.01,
        backoff_max=0.02,
        deadline=2,
    )
