"""A walk through the replies a member and an admin can get, end to end.

Each reply must be an embed written for a person (a title, a sentence, no code identifiers or
Python values), and every reply that isn't plain good news must say what to do next. The tables
below are the script: what happened, the title the person sees, and the words that tell them
what to do (None when there is nothing left to do).
"""

from __future__ import annotations

import re

from bot.service import Outcome, RedeemResult
from cogs.panel import KEY_INPUT_ID, REDEEM_BUTTON_ID, REDEEM_MODAL_ID
from cogs.replies import redeem_embed
from tests.e2e.conftest import (
    ADMIN,
    ALICE,
    BOB,
    BUYER_A,
    CAROL,
    GAME_A,
    GAME_B,
    GENERAL,
    GUILD,
    HIGH_ROLE,
    KEY,
    LOCKED,
    MANAGED_ROLE,
    OTHER_ADMIN,
    OTHER_GUILD,
)
from tests.fakes.discord_fake import BOT_ROLE_PERMISSIONS, SEND_MESSAGES, VIEW_CHANNEL

KEY_B = "Bq9TzqK3n1pZ0c7YfL2mRkX8sWvH4dJe"
KEY_C = "Cq9TzqK3n1pZ0c7YfL2mRkX8sWvH4dJe"
UNKNOWN_KEY = "Zz9TzqK3n1pZ0c7YfL2mRkX8sWvH4dJe"

MEMBER_REPLIES = {
    "redeemed": ("Key redeemed", None),
    "same key again": ("Already redeemed", None),
    "Discord refused the role": ("Key recorded, role pending", "tell the server admins"),
    "another member's key": ("Key already used", "contact the server admins"),
    "unknown key": ("Key not recognised", "paste the whole download URL"),
    "not a key": ("That isn't a download key", "Paste the key"),
    "itch.io down": ("itch.io is unavailable", "try again in a few minutes"),
    "itch.io refuses the server's set-up": ("The server's setup needs a fix", "tell the server"),
    "no games linked": ("No games set up yet", "ask the server admins"),
    "too many failures": ("Slow down a little", "wait a few minutes"),
    "admin command": ("That didn't work", "Ask a server admin"),
}

ADMIN_REPLIES = {
    "game linked": ("Game linked", None),
    "game id unknown to itch.io": ("Game linked", "link it again with the right id"),
    "@everyone as buyer role": ("That didn't work", "Pick or create a role for buyers"),
    "managed role": ("That didn't work", "Pick another role"),
    "role above the bot": ("That didn't work", "Move my role above it"),
    "no games linked": ("No games linked", "Link one with"),
    "games listed": ("Linked games", None),
    "lookup found": ("1 redemption(s)", None),
    "lookup found nothing": ("No redemptions found", "paste the whole key"),
    "lookup of a non-key": ("That didn't work", "try again"),
    "panel posted": ("Panel posted", None),
    "panel refused": ("That didn't work", "Give me View Channel, Send Messages and Embed Links"),
}

CODE = re.compile(r"`[^`]*`")
IDENTIFIER = re.compile(r"\b[a-z]+_[a-z0-9_]+\b")
NOT_FOR_PEOPLE = ("None", "Outcome", "Traceback", "Error", "<bot.", "<cogs.", "{'", "\\n")
GOOD_NEWS = {0x2ECC71, 0x5865F2}  # green, blurple


def for_a_person(embed: dict) -> str:
    title, description = embed.get("title", ""), embed.get("description", "")
    fields = [f"{f['name']} {f['value']}" for f in embed.get("fields", [])]
    assert title and (description or fields), embed
    assert embed.get("color") is not None, embed
    text = " ".join([title, description, *fields])
    prose = CODE.sub("", text)  # commands in backticks may name their options
    assert not [m for m in NOT_FOR_PEOPLE if m in prose], text
    assert not IDENTIFIER.search(prose), text
    return text


def check_replies(seen: dict[str, dict], script: dict[str, tuple[str, str | None]]) -> None:
    assert seen.keys() == script.keys()
    for what, embed in seen.items():
        title, next_step = script[what]
        text = for_a_person(embed)
        assert embed["title"] == title, (what, embed)
        if next_step is None:
            assert embed["color"] in GOOD_NEWS, (what, embed)
        else:
            assert next_step in text, (what, text)
        assert KEY not in text


async def test_every_member_reply(linked):
    world = linked
    world.itch.add_download_key(GAME_A, KEY)
    world.itch.add_download_key(GAME_B, KEY_B)
    world.itch.add_download_key(GAME_A, KEY_C)
    seen: dict[str, dict] = {}

    async def redeem(what, user_id, text, guild=GUILD):
        handle, final = await world.redeem(user_id, text, guild=guild)
        assert handle.ephemeral()
        seen[what] = final["embeds"][0]

    await redeem("redeemed", ALICE, KEY)
    await redeem("same key again", ALICE, KEY)
    await redeem("another member's key", BOB, KEY)
    await redeem("unknown key", BOB, UNKNOWN_KEY)
    await redeem("no games linked", ALICE, KEY, guild=OTHER_GUILD)
    world.guild.set_bot_permissions(SEND_MESSAGES | VIEW_CHANNEL)
    await redeem("Discord refused the role", BOB, KEY_B)
    world.guild.set_bot_permissions(BOT_ROLE_PERMISSIONS)
    world.itch.always_fail = "503"
    await redeem("itch.io down", ALICE, KEY_C)
    world.itch.always_fail = None
    for _ in range(5):
        await redeem("not a key", CAROL, "my key is in my e-mail")
    await redeem("too many failures", CAROL, KEY_C)
    _, final = await world.keys(ALICE, "game", "list")
    seen["admin command"] = final["embeds"][0]
    await world.keys(ADMIN, "game", "add", game_id=777, role=str(BUYER_A))
    await redeem("itch.io refuses the server's set-up", ALICE, UNKNOWN_KEY)

    check_replies(seen, MEMBER_REPLIES)
    # A new Outcome needs its line in the script above.
    every_outcome = {redeem_embed(RedeemResult(o)).title for o in Outcome}
    assert every_outcome <= {title for title, _ in MEMBER_REPLIES.values()}

    # The panel's button opens a dialog that says what to paste; its answer is /redeem's.
    await world.keys(ADMIN, "panel", channel=str(GENERAL))
    panel = next(m for m in world.discord.messages_in(GENERAL) if m.get("components"))
    for_a_person(panel["embeds"][0])
    click = await world.discord.click(GUILD, BOB, panel, REDEEM_BUTTON_ID)
    dialog = (await click.response())["data"]
    (label,) = dialog["components"]
    assert dialog["title"] == "Redeem your itch.io key"
    assert label["label"] == "Download key or download URL" and label["description"]
    assert label["component"]["placeholder"].startswith("https://")
    handle = await world.discord.submit_modal(GUILD, BOB, REDEEM_MODAL_ID, {KEY_INPUT_ID: KEY})
    assert (await handle.final())["embeds"][0] == seen["another member's key"]


async def test_every_admin_reply(linked):
    world = linked
    world.itch.add_download_key(GAME_A, KEY)
    await world.redeem(ALICE, KEY)
    seen: dict[str, dict] = {}

    async def keys(what, *path, guild=GUILD, user=ADMIN, **options):
        handle, final = await world.keys(user, *path, guild=guild, **options)
        assert handle.ephemeral()
        seen[what] = final["embeds"][0]

    await keys("game linked", "game", "add", game_id=GAME_A, role=str(BUYER_A))
    await keys("game id unknown to itch.io", "game", "add", game_id=777, role=str(BUYER_A))
    await keys("@everyone as buyer role", "game", "add", game_id=GAME_A, role=str(GUILD))
    await keys("managed role", "game", "add", game_id=GAME_A, role=str(MANAGED_ROLE))
    await keys("role above the bot", "game", "add", game_id=GAME_A, role=str(HIGH_ROLE))
    await keys("games listed", "game", "list")
    await keys("no games linked", "game", "list", guild=OTHER_GUILD, user=OTHER_ADMIN)
    await keys("lookup found", "lookup", member=str(ALICE))
    await keys("lookup found nothing", "lookup", key=UNKNOWN_KEY)
    await keys("lookup of a non-key", "lookup", key="not a key")
    await keys("panel posted", "panel", channel=str(GENERAL))
    await keys("panel refused", "panel", channel=str(LOCKED))

    check_replies(seen, ADMIN_REPLIES)
