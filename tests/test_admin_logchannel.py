"""Log channel messages and the event fan-out, without Discord."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.events import Event, FanOut, KeyShared, Redeemed, Revoked
from bot.store import GameRole
from cogs.logchannel import render, renders

GAMES = {3: GameRole(1, 3, 501, "X-Moon", None, datetime(2025, 1, 1, tzinfo=UTC))}


def test_known_events_have_their_message():
    shared = render(KeyShared(1, 11, 12, 3, "abcdef123456"), GAMES)
    assert shared.title.startswith("Key already claimed")
    assert "<@11>" in shared.description and "<@12>" in shared.description
    assert "X-Moon" in shared.description and "abcdef123456" in shared.description
    revoked = render(Revoked(1, 11, 9, (3, 4), (501,), "revoked by an admin"), GAMES)
    assert "X-Moon" in revoked.description and "game 4" in revoked.description
    assert "<@9>" in revoked.description and "<@&501>" in revoked.description
    assert revoked.timestamp is not None


@dataclass(frozen=True)
class AccountLinkRefused(Event):
    holder_id: int
    role_id: int
    reason: str
    game_ids: tuple[int, ...] = ()


def test_unknown_events_are_posted_generically():
    embed = render(AccountLinkRefused(1, 11, 12, 501, "already linked", (3, 4)), GAMES)
    assert embed.title == "Account link refused"
    lines = embed.description.splitlines()
    assert lines == [
        "Member: <@11>",
        "Holder id: <@12>",
        "Role id: <@&501>",
        "Reason: already linked",
        "Game ids: 3, 4",
    ]


@dataclass(frozen=True)
class HaltedRun(Event):
    checked: int


def test_events_not_about_a_member_have_no_mention():
    embed = render(HaltedRun(1, 0, 40), GAMES)
    assert embed.description == "Checked: 40"


@dataclass(frozen=True)
class RedeemedByAccount(Redeemed):
    pass


def test_a_renderer_serves_subclasses_and_new_ones_register_with_a_decorator():
    assert render(RedeemedByAccount(1, 11, 3, 501, "fp"), GAMES).title == "Key redeemed"

    @dataclass(frozen=True)
    class Custom(Event):
        pass

    @renders(Custom)
    def _custom(event, games):
        import discord

        return discord.Embed(title=f"custom {event.member_id}")

    assert render(Custom(1, 5), GAMES).title == "custom 5"


class Broken:
    async def publish(self, event):
        raise RuntimeError("boom")


class Recording:
    def __init__(self):
        self.events = []

    async def publish(self, event):
        self.events.append(event)


async def test_fan_out_survives_a_broken_sink(caplog):
    fan = FanOut()
    broken, recording = Broken(), Recording()
    fan.subscribe(broken)
    fan.subscribe(recording)
    event = Redeemed(1, 11, 3, 501, "fp")
    with caplog.at_level(logging.ERROR):
        await fan.publish(event)
    assert recording.events == [event] and "Could not publish Redeemed" in caplog.text
    fan.unsubscribe(recording)
    fan.unsubscribe(recording)  # twice is harmless
    await fan.publish(event)
    assert recording.events == [event]
