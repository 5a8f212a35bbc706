"""The redeem panel end to end: /keys panel posts it, its button opens a dialog, the dialog's
answer is /redeem's; and all of it keeps working across a restart of the bot."""

from __future__ import annotations

from cogs.panel import KEY_INPUT_ID, LINK_BUTTON_ID, REDEEM_BUTTON_ID, REDEEM_MODAL_ID
from tests.e2e.conftest import (
    ADMIN,
    ALICE,
    BOB,
    BUYER_A,
    BUYER_B,
    CAROL,
    GAME_A,
    GAME_B,
    GENERAL,
    GUILD,
    KEY,
    LOCKED,
)

KEY_B = "Bq9TzqK3n1pZ0c7YfL2mRkX8sWvH4dJe"


def embed(final) -> dict:
    return final["embeds"][0]


async def post_panel(world, channel=GENERAL) -> dict:
    """Post the panel as an admin; the panel message as Discord holds it."""
    handle, final = await world.keys(ADMIN, "panel", channel=str(channel))
    assert handle.ephemeral()
    assert embed(final)["title"] == "Panel posted", final
    (panel,) = [
        m
        for m in world.discord.messages_in(channel)
        if m.get("components") and not m.get("interaction_metadata")
    ]
    assert f"<#{channel}>" in embed(final)["description"]
    assert panel["id"] in embed(final)["description"]  # the jump link
    return panel


async def open_dialog(world, panel, user_id):
    handle = await world.discord.click(GUILD, user_id, panel, REDEEM_BUTTON_ID)
    return await handle.response()


async def submit(world, user_id, text) -> tuple:
    handle = await world.discord.submit_modal(GUILD, user_id, REDEEM_MODAL_ID, {KEY_INPUT_ID: text})
    final = await handle.final()
    callback = await handle.response()
    assert callback["type"] == 5  # deferred at once
    assert handle.ephemeral()  # only the member sees the answer
    return handle, final


async def test_panel_message_and_dialog(linked):
    world = linked
    panel = await post_panel(world)
    assert panel["author"]["id"] == str(world.discord.bot_user_id)
    assert embed(panel)["title"] == "Bought one of our games on itch.io?"
    ((button,),) = [row["components"] for row in panel["components"]]
    assert (button["custom_id"], button["label"]) == (REDEEM_BUTTON_ID, "Redeem your key")

    dialog = await open_dialog(world, panel, ALICE)
    assert dialog["type"] == 9  # a modal
    assert dialog["data"]["custom_id"] == REDEEM_MODAL_ID
    (label,) = dialog["data"]["components"]
    assert label["label"] == "Download key or download URL"
    assert label["component"]["custom_id"] == KEY_INPUT_ID
    assert label["component"]["max_length"] == 200


async def test_dialog_redeems_exactly_like_the_command(linked):
    world = linked
    world.itch.add_download_key(GAME_A, KEY)
    panel = await post_panel(world)
    await open_dialog(world, panel, ALICE)
    _, final = await submit(world, ALICE, KEY)
    assert embed(final)["title"] == "Key redeemed"
    assert BUYER_A in world.guild.member_roles(ALICE)
    (row,) = await world.bot.store.redemptions_by_member(GUILD, ALICE)
    assert row.game_id == GAME_A

    # Each answer is the one /redeem gives in the same state.
    cases = ((ALICE, KEY), (BOB, KEY), (CAROL, "no such key"), (CAROL, "A" * 30))
    for user_id, text in cases:
        await open_dialog(world, panel, user_id)
        _, from_panel = await submit(world, user_id, text)
        _, from_command = await world.redeem(user_id, text)
        assert from_panel["embeds"] == from_command["embeds"]
    titles = [
        a.outcome
        for a in reversed(await world.bot.store.audit_entries(GUILD, 20))
        if a.action == "redeem"
    ]
    assert titles == [
        "redeemed",
        *["already_redeemed"] * 2,
        *["key_taken"] * 2,
        *["malformed"] * 2,
        *["invalid_key"] * 2,
    ]


async def test_panel_refused_where_the_bot_cannot_post(linked):
    world = linked
    _, final = await world.keys(ADMIN, "panel", channel=str(LOCKED))
    assert embed(final)["title"] == "That didn't work"
    assert f"I can't post in <#{LOCKED}>" in embed(final)["description"]
    assert world.discord.messages_in(LOCKED) == []


async def test_panel_is_for_admins(linked):
    world = linked
    _, final = await world.keys(ALICE, "panel", channel=str(GENERAL))
    assert "for server admins" in embed(final)["description"]
    assert [m for m in world.discord.messages_in(GENERAL) if m.get("components")] == []


async def test_button_and_dialog_work_after_a_restart(world):
    world.itch.add_download_key(GAME_A, KEY)
    world.itch.add_download_key(GAME_B, KEY_B)
    async with world.running():
        for game_id, role in ((GAME_A, BUYER_A), (GAME_B, BUYER_B)):
            await world.keys(ADMIN, "game", "add", game_id=game_id, role=str(role))
        panel = await post_panel(world)
        # Alice opens the dialog, and the bot restarts while she is typing.
        await open_dialog(world, panel, ALICE)

    async with world.running():
        # The old message's button, clicked after the restart, still opens the dialog.
        dialog = await open_dialog(world, panel, BOB)
        assert dialog["data"]["custom_id"] == REDEEM_MODAL_ID
        _, final = await submit(world, BOB, KEY_B)
        assert embed(final)["title"] == "Key redeemed"
        assert BUYER_B in world.guild.member_roles(BOB)
        # Alice's dialog, opened before the restart, still gets its answer.
        _, final = await submit(world, ALICE, KEY)
        assert embed(final)["title"] == "Key redeemed"
        assert BUYER_A in world.guild.member_roles(ALICE)
    assert world.discord.errors == []


async def test_link_button_when_linking_is_set_up(world):
    async with world.running(itch_oauth_client_id="itch-client-id"):
        panel = await post_panel(world)
        buttons = [b for row in panel["components"] for b in row["components"]]
        assert [b["label"] for b in buttons] == ["Redeem your key", "Link itch.io account"]
        assert "Link itch.io account" in embed(panel)["description"]
        handle = await world.discord.click(GUILD, ALICE, panel, LINK_BUTTON_ID)
        answer = await handle.response()
        assert handle.ephemeral()
        # Exactly /link's answer: log in on itch.io, then paste the token.
        labels = [b["label"] for row in answer["data"]["components"] for b in row["components"]]
        assert labels == ["1. Log in with itch.io", "2. Paste the token"]
        assert any(
            "itch.io/user/oauth" in b.get("url", "")
            for row in answer["data"]["components"]
            for b in row["components"]
        )
