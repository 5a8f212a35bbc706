"""Roles stay true over time: re-checks, rejoining members, downtime, reconnects, stops."""

from __future__ import annotations

import asyncio

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
)

KEYS = {
    ALICE: "AliceKey0000000000000000000000aa",
    BOB: "BobKey00000000000000000000000bbb",
    CAROL: "CarolKey000000000000000000000ccc",
}


BUSY = "Re-checking with itch.io…"


async def recheck(world, **options):
    handle, _ = await world.keys(ADMIN, "recheck", **options)
    return handle, await world.settled(handle, BUSY)


def title(final) -> str:
    return final["embeds"][0]["title"]


def description(final) -> str:
    return final["embeds"][0].get("description", "")


async def redeem_all(world, games=None):
    games = games or {ALICE: GAME_A, BOB: GAME_A, CAROL: GAME_B}
    for member, game in games.items():
        world.itch.add_download_key(game, KEYS[member])
        _, final = await world.redeem(member, KEYS[member])
        assert title(final) == "Key redeemed"


async def recheck_audit(world):
    entries = await world.bot.store.audit_entries(GUILD, 200)
    return [(e.member_id, e.outcome, e.detail) for e in entries if e.action == "recheck"]


async def test_recheck_revokes_only_the_refunded_key(linked):
    world = linked
    await redeem_all(world)
    world.itch.revoke_download_key(KEYS[BOB])  # refunded on itch.io
    # Transient faults on another game are retried and change nothing.
    world.itch.inject("500", "hang", path_contains=f"game/{GAME_B}/")
    handle, final = await recheck(world)
    assert handle.ephemeral()
    assert title(final) == "Re-check finished"
    assert "Checked **3** of 3" in description(final)
    assert "revoked **1**" in description(final) and "failed **0**" in description(final)
    assert BUYER_A in world.guild.member_roles(ALICE)
    assert BUYER_A not in world.guild.member_roles(BOB)
    assert BUYER_B in world.guild.member_roles(CAROL)
    (delete,) = world.role_requests("DELETE")
    assert delete.path.endswith(f"/members/{BOB}/roles/{BUYER_A}") and "refund" in delete.reason
    assert await recheck_audit(world) == [(BOB, "revoked", "invalid download key")]
    (bob,) = await world.bot.store.redemptions_by_member(GUILD, BOB)
    assert bob.status == "revoked"
    # The re-check asked about the key itself, at low priority, with the sealed key.
    keys_asked = {r.query.get("download_key") for r in world.itch_key_requests()}
    assert set(KEYS.values()) <= keys_asked


async def test_errors_never_remove_a_role(linked):
    world = linked
    await redeem_all(world)
    world.itch.revoke_download_key(KEYS[BOB])
    world.itch.inject(*(["500", "429", "html", "hang"] * 3), path_contains=f"game/{GAME_B}/")
    _, final = await recheck(world)
    assert "revoked **1**" in description(final) and "failed **1**" in description(final)
    assert BUYER_B in world.guild.member_roles(CAROL)  # itch.io never answered about it
    assert BUYER_A not in world.guild.member_roles(BOB)
    (carol,) = await world.bot.store.redemptions_by_member(GUILD, CAROL)
    assert carol.status == "active"


async def test_outage_changes_nothing(linked):
    world = linked
    await redeem_all(world)
    world.itch.always_fail = "html"
    _, final = await recheck(world)
    assert title(final) == "Re-check stopped"
    world.itch.always_fail = None
    assert world.role_requests("DELETE") == []
    assert all(r.status == "active" for r in await world.bot.store.recent_redemptions(GUILD, 10))


async def test_circuit_stops_when_most_keys_are_refused(linked):
    world = linked
    members = {ALICE: GAME_A, BOB: GAME_A, CAROL: GAME_B}
    await redeem_all(world, members)
    extra = {}
    for i in range(3):
        member = 700 + i
        world.guild.add_member(member, f"m{i}")
        KEYS[member] = f"ExtraKey{i}".ljust(32, "x")
        extra[member] = GAME_A
    await redeem_all(world, extra)
    for member in (BOB, CAROL, *extra):
        world.itch.revoke_download_key(KEYS[member])
    _, final = await recheck(world)
    assert title(final) == "Re-check stopped"
    assert "removed nothing" in description(final)
    assert world.role_requests("DELETE") == []
    assert BUYER_A in world.guild.member_roles(BOB)
    assert await recheck_audit(world) == []


async def test_revoked_api_key_stops_the_run_at_once(linked):
    world = linked
    await redeem_all(world)
    world.itch.revoke_api_key(world.itch.api_key)
    _, final = await recheck(world)
    assert title(final) == "Re-check stopped"
    assert "API key" in description(final)
    assert world.role_requests("DELETE") == []


async def test_recheck_one_member(linked):
    world = linked
    await redeem_all(world)
    world.itch.revoke_download_key(KEYS[BOB])
    before = len(world.itch_key_requests())
    _, final = await recheck(world, member=str(ALICE))
    assert "Checked **1** of 1" in description(final)
    assert len(world.itch_key_requests()) == before + 1
    assert BUYER_A in world.guild.member_roles(BOB)


async def test_scheduled_recheck(world):
    async with world.running(recheck_interval_hours=0.0004):  # about 1.4 s
        for game, role in ((GAME_A, BUYER_A), (GAME_B, BUYER_B)):
            await world.keys(ADMIN, "game", "add", game_id=game, role=str(role))
        await redeem_all(world)
        world.itch.revoke_download_key(KEYS[BOB])
        await world.discord.wait_for_request(
            lambda r: r.method == "DELETE" and r.path.endswith(f"/members/{BOB}/roles/{BUYER_A}"),
            timeout=15,
        )
        assert BUYER_A in world.guild.member_roles(ALICE)
        assert BUYER_B in world.guild.member_roles(CAROL)


async def test_member_who_rejoins_gets_roles_back_without_itch(linked):
    world = linked
    await redeem_all(world)
    await world.discord.member_leave(GUILD, ALICE)
    assert len(await world.bot.store.redemptions_by_member(GUILD, ALICE)) == 1  # kept
    before = len(world.itch.requests)
    await world.discord.member_join(GUILD, ALICE, "alice")
    await world.discord.wait_for_request(
        lambda r: r.method == "PUT" and r.path.endswith(f"/members/{ALICE}/roles/{BUYER_A}"),
        since=len(world.discord.requests) - 1,
    )
    assert BUYER_A in world.guild.member_roles(ALICE)
    assert len(world.itch.requests) == before


async def test_roles_restored_after_downtime(world):
    async with world.running():
        for game, role in ((GAME_A, BUYER_A), (GAME_B, BUYER_B)):
            await world.keys(ADMIN, "game", "add", game_id=game, role=str(role))
        await redeem_all(world)
    # While the bot was down, someone removed roles by hand.
    world.guild.members[ALICE]["roles"].clear()
    world.guild.members[CAROL]["roles"].clear()
    before = len(world.itch.requests)
    mark = len(world.discord.requests)
    async with world.running():
        for member, role in ((ALICE, BUYER_A), (CAROL, BUYER_B)):
            await world.discord.wait_for_request(
                lambda r, m=member, ro=role: (
                    r.method == "PUT" and r.path.endswith(f"/members/{m}/roles/{ro}")
                ),
                timeout=10,
                since=mark,
            )
        assert BUYER_A in world.guild.member_roles(ALICE)
        assert BUYER_B in world.guild.member_roles(CAROL)
        assert len(world.itch.requests) == before


async def test_reconcile_after_gateway_reconnect(linked):
    world = linked
    await redeem_all(world)
    world.guild.members[ALICE]["roles"].clear()  # changed while the gateway was away
    mark = len(world.discord.requests)
    await world.discord.drop_gateway(resumable=True)
    await world.discord.wait_resumed()
    await world.discord.wait_for_request(
        lambda r: r.method == "PUT" and r.path.endswith(f"/members/{ALICE}/roles/{BUYER_A}"),
        since=mark,
        timeout=10,
    )
    assert BUYER_A in world.guild.member_roles(ALICE)


async def test_pending_role_applied_once_hierarchy_is_fixed(linked):
    world = linked
    world.guild.move_role(BUYER_A, 50)  # above the bot
    world.itch.add_download_key(GAME_A, KEYS[ALICE])
    _, final = await world.redeem(ALICE, KEYS[ALICE])
    assert title(final) == "Key recorded, role pending"
    assert len(await world.bot.store.pending_roles(GUILD)) == 1
    world.guild.move_role(BUYER_A, 1)  # the admin fixes it
    await world.discord.wait_for_request(
        lambda r: (
            r.method == "PUT"
            and r.status == 204
            and r.path.endswith(f"/members/{ALICE}/roles/{BUYER_A}")
        ),
        timeout=10,
    )
    assert BUYER_A in world.guild.member_roles(ALICE)
    for _ in range(50):
        if not await world.bot.store.pending_roles(GUILD):
            break
        await asyncio.sleep(0.02)
    assert await world.bot.store.pending_roles(GUILD) == []


async def test_game_add_offers_the_new_role_to_existing_buyers(linked):
    world = linked
    await redeem_all(world, {ALICE: GAME_A})
    _, final = await world.keys(ADMIN, "game", "add", game_id=GAME_A, role=str(BUYER_B))
    fields = {f["name"]: f["value"] for f in final["embeds"][0].get("fields", [])}
    assert "1 member(s) already redeemed" in fields["Existing buyers"]
    assert BUYER_B not in world.guild.member_roles(ALICE)  # nothing happens before the press
    press = await world.press(ADMIN, final, "Give the role to 1 buyer(s)")
    done = await press.final()
    assert done["embeds"][0]["title"] == "Roles updated"
    await world.discord.wait_for_request(
        lambda r: r.method == "PUT" and r.path.endswith(f"/members/{ALICE}/roles/{BUYER_B}")
    )
    assert BUYER_B in world.guild.member_roles(ALICE)
    (row,) = await world.bot.store.redemptions_by_member(GUILD, ALICE)
    assert row.role_id == BUYER_B and row.role_applied


async def test_game_remove_asks_before_taking_roles(linked):
    world = linked
    await redeem_all(world, {ALICE: GAME_A, BOB: GAME_A})
    _, final = await world.keys(ADMIN, "game", "remove", game_id=GAME_A)
    assert final["embeds"][0]["title"] == "Game unlinked"
    assert "2 member(s)" in description(final)
    # Someone else cannot press the admin's button.
    other = await world.press(BOB, final, "Remove the role from 2 buyer(s)")
    assert (await other.response())["data"]["flags"] & 64
    assert BUYER_A in world.guild.member_roles(BOB)
    press = await world.press(ADMIN, final, "Remove the role from 2 buyer(s)")
    done = await press.final()
    assert "Removed the role from 2 buyer(s)" in done["embeds"][0]["description"]
    for member in (ALICE, BOB):
        await world.discord.wait_for_request(
            lambda r, m=member: (
                r.method == "DELETE" and r.path.endswith(f"/members/{m}/roles/{BUYER_A}")
            )
        )
    assert BUYER_A not in world.guild.member_roles(ALICE)
    assert BUYER_A not in world.guild.member_roles(BOB)


async def test_game_remove_keep_roles(linked):
    world = linked
    await redeem_all(world, {ALICE: GAME_A})
    _, final = await world.keys(ADMIN, "game", "remove", game_id=GAME_A)
    press = await world.press(ADMIN, final, "Keep their roles")
    await press.response()
    assert BUYER_A in world.guild.member_roles(ALICE)
    assert world.role_requests("DELETE") == []
