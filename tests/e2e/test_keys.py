"""/keys admin commands end to end."""

from __future__ import annotations

import pytest

from bot.keyparse import fingerprint
from tests.e2e.conftest import (
    ADMIN,
    ALICE,
    BOB,
    BUYER_A,
    BUYER_B,
    GAME_A,
    GAME_B,
    GENERAL,
    GUILD,
    HIGH_ROLE,
    KEY,
    MANAGED_ROLE,
    OTHER_ADMIN,
    OTHER_BUYER,
    OTHER_GUILD,
)
from tests.fakes.discord_fake import OMIT_PERMISSIONS

KEY_B = "Bq9TzqK3n1pZ0c7YfL2mRkX8sWvH4dJe"
MANAGE_GUILD = 1 << 5


def embed(final):
    return final["embeds"][0]


def body(final) -> str:
    e = embed(final)
    parts = [e.get("title", ""), e.get("description", "")]
    parts += [f["name"] + " " + f["value"] for f in e.get("fields", [])]
    return "\n".join(parts)


async def revoke(world, **options):
    """/keys revoke, confirmed with its Revoke button when it asks."""
    _, final = await world.keys(ADMIN, "revoke", **options)
    button = next(
        (c for row in final["components"] for c in row["components"] if c["label"] == "Revoke"),
        None,
    )
    if button is None:
        return final
    click = await world.discord.click(GUILD, ADMIN, final, button["custom_id"])
    return await click.final()


async def test_commands_registered_with_admin_default_permission(world, bot):
    names = {c["name"]: c for c in world.discord.global_commands}
    assert {"redeem", "keys"} <= set(names)
    keys = names["keys"]
    assert int(keys["default_member_permissions"]) == MANAGE_GUILD
    subs = {o["name"]: o for o in keys["options"]}
    assert {"game", "lookup", "revoke"} <= set(subs)
    assert {o["name"] for o in subs["game"]["options"]} >= {"add", "remove", "list"}
    (key_opt,) = names["redeem"]["options"]
    assert key_opt["name"] == "key" and key_opt["required"] and key_opt["type"] == 3


async def test_commands_synced_to_the_configured_guild(world):
    async with world.running(discord_guild_id=GUILD):
        assert {c["name"] for c in world.discord.guild_commands[GUILD]} >= {"redeem", "keys"}
        puts = [r for r in world.discord.requests if r.method == "PUT" and "commands" in r.path]
        assert any(r.path.endswith(f"/guilds/{GUILD}/commands") for r in puts)
        # No global copy is left to show each command twice in that server.
        assert world.discord.global_commands == []


async def test_game_add_list_remove(world, bot):
    _, final = await world.keys(ADMIN, "game", "add", game_id=GAME_A, role=str(BUYER_A))
    assert embed(final)["title"] == "Game linked"
    assert "X-Moon" in body(final) and "Warning" not in body(final)
    _, final = await world.keys(ADMIN, "game", "list")
    assert "X-Moon" in body(final) and f"<@&{BUYER_A}>" in body(final)
    _, final = await world.keys(ADMIN, "game", "remove", game_id=GAME_A)
    assert embed(final)["title"] == "Game unlinked"
    assert await bot.store.game_roles(GUILD) == []
    _, final = await world.keys(ADMIN, "game", "remove", game_id=GAME_A)
    assert embed(final)["title"] == "Not linked"


async def test_game_add_warns_on_unknown_game(world, bot):
    _, final = await world.keys(ADMIN, "game", "add", game_id=777, role=str(BUYER_A))
    assert "777" in body(final) and "my-games" in body(final)
    assert [g.game_id for g in await bot.store.game_roles(GUILD)] == [777]


@pytest.mark.parametrize(
    ("role", "words"),
    [
        (GUILD, "@everyone"),
        (MANAGED_ROLE, "managed"),
        (HIGH_ROLE, "above my highest role"),
    ],
)
async def test_game_add_refuses_unusable_roles(world, bot, role, words):
    _, final = await world.keys(ADMIN, "game", "add", game_id=GAME_A, role=str(role))
    assert embed(final)["title"] == "That didn't work"
    assert words in body(final)
    assert await bot.store.game_roles(GUILD) == []


async def test_lookup_by_member_and_by_key(linked):
    world = linked
    world.itch.add_download_key(GAME_A, KEY, owner={"id": 1994, "username": "amos"})
    await world.redeem(ALICE, KEY)
    handle, final = await world.keys(ADMIN, "lookup", member=str(ALICE))
    assert handle.ephemeral()
    text = body(final)
    assert "X-Moon" in text and f"<@&{BUYER_A}>" in text and "amos (1994)" in text
    assert fingerprint(KEY) in text and KEY not in text
    _, final = await world.keys(ADMIN, "lookup", key=f"https://leafo.itch.io/x-moon/download/{KEY}")
    assert f"<@{ALICE}>" in body(final)
    _, final = await world.keys(ADMIN, "lookup", member=str(BOB))
    assert embed(final)["title"] == "No redemptions found"
    _, final = await world.keys(ADMIN, "lookup", key="no spaces allowed")
    assert embed(final)["title"] == "That didn't work"


async def test_revoke_deletes_links_and_removes_roles(linked):
    world = linked
    world.itch.add_download_key(GAME_A, KEY)
    world.itch.add_download_key(GAME_B, KEY_B)
    await world.redeem(ALICE, KEY)
    await world.redeem(ALICE, KEY_B)
    assert {BUYER_A, BUYER_B} <= world.guild.member_roles(ALICE)
    final = await revoke(world, member=str(ALICE), game_id=GAME_A)
    assert embed(final)["title"] == "Revoked"
    assert BUYER_A not in world.guild.member_roles(ALICE)
    assert BUYER_B in world.guild.member_roles(ALICE)
    (delete,) = world.role_requests("DELETE")
    assert delete.path == f"/guilds/{GUILD}/members/{ALICE}/roles/{BUYER_A}" and delete.reason
    assert [r.game_id for r in await world.bot.store.redemptions_by_member(GUILD, ALICE)] == [
        GAME_B
    ]
    final = await revoke(world, member=str(ALICE))
    assert BUYER_B not in world.guild.member_roles(ALICE)
    assert await world.bot.store.redemptions_by_member(GUILD, ALICE) == []
    final = await revoke(world, member=str(ALICE))
    assert embed(final)["title"] == "Nothing to revoke"


@pytest.mark.parametrize(
    ("path", "options"),
    [
        (("game", "add"), {"game_id": GAME_B, "role": str(BUYER_B)}),
        (("game", "remove"), {"game_id": GAME_A}),
        (("game", "list"), {}),
        (("lookup",), {"member": str(ALICE)}),
        (("revoke",), {"member": str(ALICE)}),
        (("audit",), {}),
        (("audit",), {"member": str(ALICE), "outcome": "redeemed", "limit": 5}),
        (("stats",), {}),
        (("export",), {}),
        (("export",), {"audit": True}),
        (("log-channel",), {"channel": str(GENERAL)}),
        (("log-channel",), {}),
    ],
)
async def test_non_admin_refused_at_run_time(linked, path, options):
    world = linked
    world.itch.add_download_key(GAME_A, KEY)
    await world.redeem(ALICE, KEY)
    before_requests = len(world.discord.requests)
    # Discord's default permission is only a default: the bot checks again itself.
    handle, final = await world.keys(BOB, *path, **options)
    assert handle.ephemeral()
    assert "Manage Server" in body(final)
    assert [g.game_id for g in await world.bot.store.game_roles(GUILD)] == [GAME_A, GAME_B]
    assert len(await world.bot.store.redemptions_by_member(GUILD, ALICE)) == 1
    assert BUYER_A in world.guild.member_roles(ALICE)
    new = world.discord.requests[before_requests:]
    assert not [r for r in new if "/roles/" in r.path]
    # No log channel set, no post, no file, no buttons.
    assert await world.bot.store.log_channel(GUILD) is None
    assert not [r for r in new if r.files or r.path.startswith("/channels/")]
    assert not final.get("components")


async def test_admin_of_another_guild_sees_nothing_here(linked):
    world = linked
    world.itch.add_download_key(GAME_A, KEY)
    await world.redeem(ALICE, KEY)
    _, final = await world.keys(OTHER_ADMIN, "lookup", member=str(ALICE), guild=OTHER_GUILD)
    assert embed(final)["title"] == "No redemptions found"
    _, final = await world.keys(OTHER_ADMIN, "lookup", key=KEY, guild=OTHER_GUILD)
    assert embed(final)["title"] == "No redemptions found"
    _, final = await world.keys(OTHER_ADMIN, "game", "list", guild=OTHER_GUILD)
    assert embed(final)["title"] == "No games linked"
    _, final = await world.keys(OTHER_ADMIN, "revoke", member=str(ALICE), guild=OTHER_GUILD)
    assert embed(final)["title"] == "Nothing to revoke"
    assert BUYER_A in world.guild.member_roles(ALICE)
    assert len(await world.bot.store.redemptions_by_member(GUILD, ALICE)) == 1
    assert OTHER_BUYER not in world.other_guild.member_roles(ALICE)


async def test_admin_check_without_resolved_permissions_uses_roles(linked):
    # A payload without the member's resolved permissions falls back to their roles.
    world = linked
    handle = await world.discord.slash(
        GUILD, ADMIN, "keys", subcommand=["game", "list"], permissions=OMIT_PERMISSIONS
    )
    assert embed(await handle.final())["title"] == "Linked games"
    handle = await world.discord.slash(
        GUILD, BOB, "keys", subcommand=["game", "list"], permissions=OMIT_PERMISSIONS
    )
    assert "Manage Server" in body(await handle.final())
