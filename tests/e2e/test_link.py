"""/link and /unlink end to end: the real bot, its OAuth web server on a loopback port, the
Discord fake and the itch.io fake. The browser's part (reading the URL fragment and POSTing it)
is played by the test with the fragment's values."""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from bot.events import ItchAccountTaken
from bot.settings import Secret
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
    KEY,
)

CLIENT_ID = "itch-client-1"
PUBLIC = "https://links.example.test"
SECRET = "state-secret-for-tests-0123456789abcdef"
TOKEN = "amos-oauth-token-0123456789"
AMOS = {"id": 1994, "username": "amos"}

WEB = {
    "itch_oauth_client_id": CLIENT_ID,
    "oauth_public_url": PUBLIC,
    "oauth_listen_host": "127.0.0.1",
    "oauth_listen_port": 0,  # the bound port is bot.oauth.port
    "oauth_state_secret": Secret(SECRET),
}
OUT_OF_BAND = {"itch_oauth_client_id": CLIENT_ID}


async def add_games(world):
    for game_id, role in ((GAME_A, BUYER_A), (GAME_B, BUYER_B)):
        _, final = await world.keys(ADMIN, "game", "add", game_id=game_id, role=str(role))
        assert final["embeds"][0]["title"] == "Game linked", final


@pytest.fixture
async def web(world):
    async with world.running(**WEB):
        await add_games(world)
        world.itch.add_user_token(TOKEN, AMOS)
        yield world


@pytest.fixture
async def oob(world):
    async with world.running(**OUT_OF_BAND):
        await add_games(world)
        world.itch.add_user_token(TOKEN, AMOS)
        yield world


def embed(message) -> dict:
    return message["embeds"][0]


def text(message) -> str:
    e = embed(message)
    parts = [e.get("title", ""), e.get("description", "")]
    parts += [f["name"] + "\n" + f["value"] for f in e.get("fields", [])]
    return "\n".join(parts)


def buttons(message) -> list[dict]:
    return [c for row in message.get("components") or [] for c in row["components"]]


async def start_link(world, member):
    """/link in the web mode: the handle, the itch.io URL of its button, and the state in it."""
    handle = await world.slash(member, "link")
    message = await handle.final()
    assert handle.ephemeral()
    (button,) = buttons(message)
    query = parse_qs(urlsplit(button["url"]).query)
    return handle, button["url"], query["state"][0]


async def browser(world, state, token=TOKEN):
    """What the callback page's script does with `#access_token=...&state=...`."""
    base = f"http://127.0.0.1:{world.bot.oauth.port}"
    async with aiohttp.ClientSession(base_url=base) as http:
        async with http.get("/oauth/callback") as page:
            assert page.status == 200 and page.headers["Cache-Control"] == "no-store"
            assert f'data-token-url="{PUBLIC}/oauth/token"' in await page.text()
        async with http.post("/oauth/token", json={"access_token": token, "state": state}) as resp:
            return resp.status, await resp.json()


async def edited(world, handle, count=1) -> dict:
    """The /link answer after the bot edited it `count` times (from the web page's outcome)."""
    await world.discord._wait_until(
        lambda: len(handle.edits) >= count or None, 5, "the /link answer to be edited"
    )
    return handle.message


async def test_link_through_the_callback_page(web, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="discord")
    caplog.set_level(logging.INFO, logger="aiosqlite")
    world = web
    world.itch.add_download_key(GAME_A, owner=AMOS, key_id=124)

    handle, url, state = await start_link(world, ALICE)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "itch.io", "/user/oauth")
    query = parse_qs(parts.query)
    assert query == {
        "client_id": [CLIENT_ID],
        "scope": ["profile:me"],
        "response_type": ["token"],
        "redirect_uri": [f"{PUBLIC}/oauth/callback"],
        "state": [state],
    }
    assert embed(handle.message)["title"] == "Link your itch.io account"

    status, page = await browser(world, state)
    assert (status, page["ok"], page["title"]) == (200, True, "itch.io account linked")
    assert "X-Moon" in page["message"] and "Y-Sun" in page["message"]

    # Discord: the role, and the member's /link answer now shows the result, button gone.
    assert BUYER_A in world.guild.member_roles(ALICE)
    assert BUYER_B not in world.guild.member_roles(ALICE)
    (put,) = world.role_requests("PUT")
    assert put.reason == "Linked itch.io account owns the game"
    message = await edited(world, handle)
    assert embed(message)["title"] == "itch.io account linked"
    assert "X-Moon" in text(message) and "Not found on this account" in text(message)
    assert buttons(message) == []

    # itch.io: `me` with the member's token, the games with the bot's key and the user id.
    (me,) = [r for r in world.itch.requests if r.path.endswith("/me")]
    assert (me.path, me.authorization) == ("/api/1/key/me", f"Bearer {TOKEN}")
    keys = world.itch_key_requests()
    assert sorted((r.path, r.query["user_id"]) for r in keys) == [
        (f"/api/1/key/game/{GAME_A}/download_keys", "1994"),
        (f"/api/1/key/game/{GAME_B}/download_keys", "1994"),
    ]
    assert all(r.authorization == f"Bearer {world.itch.api_key}" for r in keys)

    store = world.bot.store
    assert (await store.itch_link(GUILD, ALICE)).itch_user_id == 1994
    (row,) = await store.redemptions_by_member(GUILD, ALICE)
    assert (row.by_account, row.game_id, row.key_id, row.role_applied) == (True, GAME_A, 124, True)

    # The token went to itch.io only: not to Discord, not to the logs, not to the database.
    assert all(TOKEN not in str(r.json) for r in world.discord.requests)
    assert TOKEN not in caplog.text and SECRET not in caplog.text
    for f in world.db_path.parent.iterdir():
        if f.name.startswith(world.db_path.name):
            assert TOKEN.encode() not in f.read_bytes()


async def test_forged_expired_and_replayed_states_change_nothing(world):
    async with world.running(**WEB) as bot:
        await add_games(world)
        world.itch.add_user_token(TOKEN, AMOS)
        world.itch.add_download_key(GAME_A, owner=AMOS)
        handle, _, state = await start_link(world, ALICE)
        guild, member, exp, nonce, sig = state.split(".")

        forged = f"{guild}.{BOB}.{exp}.{nonce}.{sig}"  # Bob tries to use Alice's link
        status, page = await browser(world, forged)
        assert (status, page["title"]) == (403, "This link isn't valid")
        foreign = f"{guild}.{member}.{exp}.{nonce}.{'A' * 43}"
        assert (await browser(world, foreign))[0] == 403

        expired, _ = bot.oauth.signer.issue(GUILD, ALICE, now=time.time() - 601)
        status, page = await browser(world, expired)
        assert (status, page["title"]) == (410, "This link has expired")

        assert world.itch.count("/me") == 0 and handle.edits == []
        assert await bot.store.itch_link(GUILD, ALICE) is None
        assert await bot.store.itch_link(GUILD, BOB) is None

        assert (await browser(world, state))[0] == 200
        status, page = await browser(world, state)
        assert (status, page["title"]) == (409, "This link was already used")
        assert world.itch.count("/me") == 1 and len(handle.edits) == 1
        port = bot.oauth.port
    # The web server stopped with the bot.
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(f"http://127.0.0.1:{port}/oauth/callback")


async def test_itch_unavailable_tells_page_and_member_records_nothing(web):
    world = web
    world.itch.add_download_key(GAME_A, owner=AMOS)
    handle, _, state = await start_link(world, ALICE)
    world.itch.inject(*["503"] * 3, path_contains="/me")
    status, page = await browser(world, state)
    assert (status, page["title"], page["retry"]) == (503, "itch.io is unavailable", True)
    message = await edited(world, handle)
    assert embed(message)["title"] == "itch.io is unavailable"
    assert len(buttons(message)) == 1  # the login button stays: the link still works
    assert await world.bot.store.itch_link(GUILD, ALICE) is None
    assert await world.bot.store.redemptions_by_member(GUILD, ALICE) == []
    assert world.role_requests() == []

    status, page = await browser(world, state)  # the page's "Try again"
    assert status == 200 and page["ok"]
    assert embed(await edited(world, handle, 2))["title"] == "itch.io account linked"
    assert BUYER_A in world.guild.member_roles(ALICE)


async def test_out_of_band_token_pasted_in_a_modal(oob):
    world = oob
    world.itch.add_download_key(GAME_A, owner=AMOS)
    world.itch.add_download_key(GAME_B, owner=AMOS)
    handle = await world.slash(ALICE, "link")
    message = await handle.final()
    assert handle.ephemeral()
    login, paste = buttons(message)
    query = parse_qs(urlsplit(login["url"]).query)
    assert query["redirect_uri"] == ["urn:ietf:wg:oauth:2.0:oob"] and "state" not in query
    assert query["client_id"] == [CLIENT_ID] and query["response_type"] == ["token"]

    click = await world.discord.click(GUILD, ALICE, message, paste["custom_id"])
    modal = await click.response()
    assert modal["type"] == 9  # a modal
    submitted = await world.discord.submit_modal(
        GUILD, ALICE, modal["data"]["custom_id"], {"token": f"  {TOKEN}\n"}
    )
    result = await submitted.final()
    assert submitted.ephemeral()
    assert embed(result)["title"] == "itch.io account linked"
    assert {BUYER_A, BUYER_B} <= world.guild.member_roles(ALICE)
    assert all(TOKEN not in str(r.json) for r in world.discord.requests)

    # Something that is not a token never reaches itch.io.
    before = len(world.itch.requests)
    click = await world.discord.click(GUILD, BOB, message, paste["custom_id"])
    modal = await click.response()
    submitted = await world.discord.submit_modal(
        GUILD, BOB, modal["data"]["custom_id"], {"token": "not a token"}
    )
    assert embed(await submitted.final())["title"] == "That didn't work"
    assert len(world.itch.requests) == before


async def test_second_member_with_the_same_account_refused_and_admins_told(oob):
    world = oob
    world.itch.add_download_key(GAME_A, owner=AMOS)
    _, final = await world.keys(ADMIN, "log-channel", channel=str(GENERAL))
    assert final["embeds"][0]["title"] == "Log channel set"
    seen = []

    class Recorder:
        async def publish(self, event):
            seen.append(event)

    world.bot.events.subscribe(Recorder())

    async def link(member, token=TOKEN):
        handle = await world.slash(member, "link")
        (_, paste) = buttons(await handle.final())
        click = await world.discord.click(GUILD, member, await handle.final(), paste["custom_id"])
        modal = await click.response()
        submitted = await world.discord.submit_modal(
            GUILD, member, modal["data"]["custom_id"], {"token": token}
        )
        return await submitted.final()

    assert embed(await link(ALICE))["title"] == "itch.io account linked"
    refused = await link(BOB)
    assert embed(refused)["title"] == "That didn't work"
    assert "linked to another member" in text(refused)
    assert BUYER_A not in world.guild.member_roles(BOB)
    assert await world.bot.store.redemptions_by_member(GUILD, BOB) == []
    assert ItchAccountTaken(GUILD, BOB, ALICE, 1994, "amos") in seen

    def posted():
        found = [
            m
            for m in world.discord.messages_in(GENERAL)
            if f"<@{BOB}>" in str(m.get("embeds")) and f"<@{ALICE}>" in str(m.get("embeds"))
        ]
        return found or None

    await world.discord._wait_until(posted, 5, "the log channel to be told")


async def test_link_again_after_a_new_purchase_gives_the_new_role(web):
    world = web
    world.itch.add_download_key(GAME_A, owner=AMOS)
    _, _, state = await start_link(world, ALICE)
    await browser(world, state)
    assert BUYER_B not in world.guild.member_roles(ALICE)

    world.itch.add_download_key(GAME_B, owner=AMOS)  # bought later
    handle, _, state = await start_link(world, ALICE)
    assert "linked as **amos** already" in text(handle.message)
    status, _ = await browser(world, state)
    assert status == 200
    assert {BUYER_A, BUYER_B} <= world.guild.member_roles(ALICE)
    message = await edited(world, handle)
    assert "Y-Sun" in text(message) and "X-Moon" in text(message)
    rows = await world.bot.store.redemptions_by_member(GUILD, ALICE)
    assert sorted(r.game_id for r in rows) == [GAME_A, GAME_B]


async def test_unlink_keeps_the_roles_a_redeemed_key_gives(oob):
    world = oob
    world.itch.add_download_key(GAME_A, KEY, owner=AMOS)
    world.itch.add_download_key(GAME_B, owner=AMOS)
    handle = await world.slash(ALICE, "link")
    (_, paste) = buttons(await handle.final())
    click = await world.discord.click(GUILD, ALICE, await handle.final(), paste["custom_id"])
    modal = await click.response()
    await (
        await world.discord.submit_modal(GUILD, ALICE, modal["data"]["custom_id"], {"token": TOKEN})
    ).final()
    _, final = await world.redeem(ALICE, KEY)
    assert final["embeds"][0]["title"] == "Key redeemed"

    # Admins see both ways, by member and by key (the key's purchase was found by account too).
    _, final = await world.keys(ADMIN, "lookup", member=str(ALICE))
    assert text(final).count("by linked itch.io account amos (1994)") == 2
    assert text(final).count("itch.io: amos (1994) · key `") == 1
    _, final = await world.keys(ADMIN, "lookup", key=KEY)
    assert embed(final)["title"] == "2 redemption(s)"
    assert "by linked itch.io account" in text(final) and "· key `" in text(final)

    unlink = await world.slash(ALICE, "unlink")
    final = await unlink.final()
    assert unlink.ephemeral()
    assert embed(final)["title"] == "itch.io account unlinked"
    assert f"<@&{BUYER_B}>" in text(final)
    assert BUYER_A in world.guild.member_roles(ALICE)  # the key still gives it
    assert BUYER_B not in world.guild.member_roles(ALICE)
    (delete,) = world.role_requests("DELETE")
    assert delete.path.endswith(f"/roles/{BUYER_B}")
    rows = await world.bot.store.redemptions_by_member(GUILD, ALICE)
    assert [(r.game_id, r.by_account) for r in rows] == [(GAME_A, False)]
    assert await world.bot.store.itch_link(GUILD, ALICE) is None

    again = await (await world.slash(ALICE, "unlink")).final()
    assert embed(again)["title"] == "Nothing to unlink"


async def test_link_says_plainly_when_it_is_not_set_up(world, bot):
    names = {c["name"] for c in world.discord.global_commands}
    assert {"link", "unlink"} <= names
    handle = await world.slash(ALICE, "link")
    message = await handle.final()
    assert handle.ephemeral()
    assert embed(message)["title"] == "Linking isn't set up"
    assert "/redeem" in embed(message)["description"]
    assert bot.oauth is None
