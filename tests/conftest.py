"""Shared fixtures: the loopback itch.io fake, a store on a temporary file."""

from __future__ import annotations

import pytest

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
