"""/redeem end to end: what Discord and itch.io saw, and what was stored."""

from __future__ import annotations

import logging

import pytest

from bot.keyparse import key_hash
from tests.e2e.conftest import (
    ADMIN,
    ALICE,
    BOB,
    BUYER_A,
    BUYER_B,
    CAROL,
    GAME_A,
    GAME_B,
    GUILD,
    KEY,
    OTHER_BUYER,
    OTHER_GUILD,
)

KEY_B = "Bq9TzqK3n1pZ0c7YfL2mRkX8sWvH4dJe"


def title(final) -> str:
    return final["embeds"][0]["title"]


def text(final) -> str:
    e = final["embeds"][0]
    return " ".join([e.get("title", ""), e.get("description", "")])


async def audit(world, guild=GUILD):
    """The redeem attempts in the audit table, oldest first."""
    entries = reversed(await world.bot.store.audit_entries(guild, 100))
    return [(e.member_id, e.outcome) for e in entries if e.action == "redeem"]


async def test_redeem_defers_records_then_gives_role(linked, caplog):
    caplog.set_level(logging.DEBUG)
    # As in production (LOG_LEVEL=DEBUG): libraries that log payloads stay at INFO.
    caplog.set_level(logging.INFO, logger="discord")
    caplog.set_level(logging.INFO, logger="aiosqlite")
    world = linked
    world.itch.add_download_key(GAME_A, KEY, owner={"id": 1994, "username": "amos"}, key_id=124)
    handle, final = await world.redeem(ALICE, KEY)
    callback = await handle.response()
    assert callback["type"] == 5  # deferred at once ("thinking")
    assert handle.ephemeral()
    assert title(final) == "Key redeemed"
    assert f"<@&{BUYER_A}>" in text(final)
    assert BUYER_A in world.guild.member_roles(ALICE)
    (put,) = world.role_requests("PUT")
    assert put.path == f"/guilds/{GUILD}/members/{ALICE}/roles/{BUYER_A}"
    assert put.reason == "Redeemed an itch.io download key"
    rows = await world.bot.store.redemptions_by_member(GUILD, ALICE)
    assert [(r.game_id, r.key_id, r.key_hash, r.itch_user_id, r.role_applied) for r in rows] == [
        (GAME_A, 124, key_hash(KEY), 1994, True)
    ]
    # itch.io was asked about both games, with the API key only in the Authorization header.
    reqs = world.itch_key_requests()
    assert sorted(r.path for r in reqs) == [
        f"/api/1/key/game/{GAME_A}/download_keys",
        f"/api/1/key/game/{GAME_B}/download_keys",
    ]
    assert all(r.authorization == f"Bearer {world.itch.api_key}" for r in reqs)
    assert await audit(world) == [(ALICE, "redeemed")]
    # Secrets stay out of Discord and the logs.
    assert all(KEY not in str(r.json) for r in world.discord.requests)
    assert KEY not in caplog.text
    assert world.itch.api_key not in caplog.text
    assert world.discord.token not in caplog.text


async def test_download_url_is_reduced_to_its_key(linked):
    world = linked
    world.itch.add_download_key(GAME_B, KEY)
    _, final = await world.redeem(ALICE, f"https://leafo.itch.io/y-sun/download/{KEY}")
    assert title(final) == "Key redeemed"
    assert BUYER_B in world.guild.member_roles(ALICE)
    # The game page is known from my-games, so only that game was asked.
    (req,) = world.itch_key_requests()
    assert req.path == f"/api/1/key/game/{GAME_B}/download_keys"
    assert req.query == {"download_key": KEY}


async def test_same_member_again_reapplies_role_without_itch(linked):
    world = linked
    world.itch.add_download_key(GAME_A, KEY)
    await world.redeem(ALICE, KEY)
    world.guild.members[ALICE]["roles"].clear()  # someone took the role away by hand
    before = len(world.itch.requests)
    _, final = await world.redeem(ALICE, KEY)
    assert title(final) == "Already redeemed"
    assert BUYER_A in world.guild.member_roles(ALICE)
    assert len(world.itch.requests) == before
    assert len(world.role_requests("PUT")) == 2
    assert len(await world.bot.store.redemptions_by_member(GUILD, ALICE)) == 1


async def test_same_key_other_member_refused(linked):
    world = linked
    world.itch.add_download_key(GAME_A, KEY)
    await world.redeem(ALICE, KEY)
    before = len(world.itch.requests)
    _, final = await world.redeem(BOB, KEY)
    assert title(final) == "Key already used"
    assert BUYER_A not in world.guild.member_roles(BOB)
    assert len(world.itch.requests) == before
    assert await world.bot.store.redemptions_by_member(GUILD, BOB) == []
    assert len(world.role_requests("PUT")) == 1
    assert await audit(world) == [(ALICE, "redeemed"), (BOB, "key_taken")]


async def test_itch_refuses(linked):
    world = linked
    _, final = await world.redeem(ALICE, "Z" * 32)
    assert title(final) == "Key not recognised"
    assert "download" in text(final)  # says what to do next
    assert world.role_requests() == []
    assert await world.bot.store.redemptions_by_member(GUILD, ALICE) == []
    assert await audit(world) == [(ALICE, "invalid_key")]


@pytest.mark.parametrize("fault", ["500", "html", "hang", "429"])
async def test_itch_unavailable_nothing_recorded(linked, fault):
    world = linked
    world.itch.add_download_key(GAME_A, KEY)
    world.itch.always_fail = fault
    handle, final = await world.redeem(ALICE, KEY)
    assert title(final) == "itch.io is unavailable"
    assert handle.ephemeral()
    assert world.role_requests() == []
    assert await world.bot.store.redemptions_by_member(GUILD, ALICE) == []
    assert await audit(world) == [(ALICE, "unavailable")]
    # Once itch.io is back, the same key works.
    world.itch.always_fail = None
    _, final = await world.redeem(ALICE, KEY)
    assert title(final) == "Key redeemed"


async def test_role_that_cannot_be_added_keeps_the_redemption(linked):
    world = linked
    world.guild.roles[BUYER_A]["position"] = 50  # moved above the bot by hand, after linking
    world.itch.add_download_key(GAME_A, KEY)
    _, final = await world.redeem(ALICE, KEY)
    assert title(final) == "Key recorded, role pending"
    assert "admins" in text(final)
    assert BUYER_A not in world.guild.member_roles(ALICE)
    (row,) = await world.bot.store.redemptions_by_member(GUILD, ALICE)
    assert not row.role_applied
    assert await audit(world) == [(ALICE, "role_failed")]


@pytest.mark.parametrize(
    "bad",
    [
        " ",
        "x" * 201,
        "abc def",
        "not/a/key",
        "key_with_underscores",
        "https://evil.example.com/game/download/YWKse5jeAeuZ8w3a5qO2b2PId1sChw2B9b637w6z",
        "<script>alert(1)</script>",
    ],
)
async def test_malformed_input_costs_no_itch_request(linked, bad):
    world = linked
    _, final = await world.redeem(ALICE, bad)
    assert title(final) == "That isn't a download key"
    assert world.itch.requests[-1].path.endswith("my-games")  # only the admin's game checks
    assert world.itch_key_requests() == []
    assert await audit(world) == [(ALICE, "malformed")]


async def test_cooldown_after_five_refusals_admins_not_locked_out(linked):
    world = linked
    world.itch.add_download_key(GAME_A, KEY)
    for _ in range(5):
        _, final = await world.redeem(CAROL, "Z" * 32)
        assert title(final) == "Key not recognised"
    asked = len(world.itch_key_requests())
    _, final = await world.redeem(CAROL, KEY)
    assert title(final) == "Slow down a little"
    assert len(world.itch_key_requests()) == asked
    assert BUYER_A not in world.guild.member_roles(CAROL)
    # Other members are unaffected, and an admin's own commands and redemptions still work.
    for _ in range(6):
        await world.redeem(ADMIN, "Q" * 32)
    _, final = await world.keys(ADMIN, "game", "list")
    assert title(final) == "Linked games"
    _, final = await world.redeem(BOB, KEY)
    assert title(final) == "Key redeemed"
    outcomes = [o for m, o in await audit(world) if m == CAROL]
    assert outcomes == ["invalid_key"] * 5 + ["cooldown"]


async def test_no_games_linked(world, bot):
    _, final = await world.redeem(ALICE, KEY)
    assert title(final) == "No games set up yet"
    assert world.itch.requests == []


async def test_guilds_are_separate(linked):
    world = linked
    world.itch.add_download_key(GAME_A, KEY)
    await world.redeem(ALICE, KEY)
    # The other server has no game linked: the same member's key does nothing there.
    _, final = await world.redeem(ALICE, KEY, guild=OTHER_GUILD)
    assert title(final) == "No games set up yet"
    assert OTHER_BUYER not in world.other_guild.member_roles(ALICE)


async def test_redeem_in_dm_is_refused(linked):
    # /redeem is a guild-only command: Discord hides it in DMs (dm_permission false).
    world = linked
    (cmd,) = [c for c in world.discord.global_commands if c["name"] == "redeem"]
    assert cmd.get("dm_permission") is False or cmd.get("contexts") == [0]
