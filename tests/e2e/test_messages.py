"""A walk through the replies a member and an admin can get, end to end.

Each reply must be an embed written for a person (a title, a sentence, no code identifiers or
Python values), and every reply that isn't plain good news must say what to do next. The tables
below are the script: what happened, the title the person sees, and the words that tell them
what to do (None when there is nothing left to do; for a warning about something the bot already
dealt with, the words that say so). The log channel's posts are held to the same rules.
"""

from __future__ import annotations

import re

from bot import events
from bot.service import Outcome, RedeemResult
from cogs.panel import KEY_INPUT_ID, REDEEM_BUTTON_ID, REDEEM_MODAL_ID
from cogs.replies import redeem_embed
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
    HIGH_ROLE,
    KEY,
    LOCKED,
    MANAGED_ROLE,
    OTHER_ADMIN,
    OTHER_GUILD,
)
from tests.fakes.discord_fake import (
    BOT_ROLE_PERMISSIONS,
    MANAGE_ROLES,
    SEND_MESSAGES,
    VIEW_CHANNEL,
)

KEY_B = "Bq9TzqK3n1pZ0c7YfL2mRkX8sWvH4dJe"
KEY_C = "Cq9TzqK3n1pZ0c7YfL2mRkX8sWvH4dJe"
UNKNOWN_KEY = "Zz9TzqK3n1pZ0c7YfL2mRkX8sWvH4dJe"
TOKEN = "amos-oauth-token-0123456789"
AMOS = {"id": 1994, "username": "amos"}
OUT_OF_BAND = {"itch_oauth_client_id": "itch-client-1"}
BUSY = "Re-checking with itch.io…"

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

MAPPING_AND_REVOKE_REPLIES = {
    "unlink a game nobody redeemed": ("Game unlinked", None),
    "unlink a game that isn't linked": ("Not linked", None),
    "unlink a game with buyers": ("Game unlinked", "remove it from them below"),
    "buyers' roles removed": ("Roles updated", None),
    "revoke asks first": ("Revoke 2 redemption(s)?", "press these buttons"),
    "revoke cancelled": ("Cancelled", None),
    "revoked": ("Revoked", None),
    "nothing to revoke": ("Nothing to revoke", None),
}

ADMIN_VIEW_REPLIES = {
    "nothing to re-check": ("Nothing to re-check", None),
    "re-check under way": (BUSY, None),
    "re-check finished": ("Re-check finished", None),
    "re-check stopped by an outage": ("Re-check stopped", "then run `/keys recheck` again"),
    "audit page": ("Audit trail", None),
    "audit, nothing matches": ("Audit trail", None),
    "stats": ("Statistics", None),
    "export ready": ("Export ready", None),
}

LOG_CHANNEL_REPLIES = {
    "channel the bot can't post in": ("That didn't work", "Give me View Channel, Send Messages"),
    "turned off when there was none": ("No log channel", None),
    "log channel set": ("Log channel set", None),
    "log channel turned off": ("Log channel turned off", None),
}

# The log channel's own posts, by the event that made them (and the channel's first post).
LOG_POSTS = {
    "first post": ("itch.io key log", None),
    "Redeemed": ("Key redeemed", None),
    "KeyShared": ("Key already claimed: possible sharing", "`/keys audit member:` shows"),
    "CooldownReached": ("Cool-down reached", "`/keys audit` shows what they tried"),
    "RoleFailed": ("Role could not be added", "Move my role above it"),
    "RecheckHalted": ("Re-check stopped: nothing more removed", "then run `/keys recheck`"),
    "KeyRevokedByRecheck": ("Refund or revoked key", "was taken away"),  # dealt with
    "KeyRevokedByRecheck, role kept": ("Refund or revoked key", "take it away by hand"),
    "Revoked": ("Redemption revoked", None),
}

LINK_REPLIES = {
    "linking not set up": ("Linking isn't set up", "Use `/redeem`"),
    "link asks to log in": ("Link your itch.io account", "Press **Log in with itch.io**"),
    "pasted something else": ("That didn't work", "run `/link` again"),
    "account linked": ("itch.io account linked", None),
    "account linked to another member": ("That didn't work", "contact the server admins"),
    "nothing to unlink": ("Nothing to unlink", None),
    "account unlinked": ("itch.io account unlinked", None),
}

LINK_POSTS = {
    "first post": ("itch.io key log", None),
    "AccountLinked": ("itch.io account linked", None),
    "ItchAccountTaken": (
        "itch.io account already linked: possible sharing",
        "`/keys audit member:` shows",
    ),
    "Revoked, by /unlink": ("Redemption revoked", None),
}

# Questions: the buttons that answer them, in order.
BUTTONS = {
    "unlink a game with buyers": ["Remove the role from 2 buyer(s)", "Keep their roles"],
    "revoke asks first": ["Revoke", "Cancel"],
    "link asks to log in": ["1. Log in with itch.io", "2. Paste the token"],
}

SECRETS = (KEY, KEY_B, KEY_C, TOKEN)
CODE = re.compile(r"`[^`]*`")
IDENTIFIER = re.compile(r"\b[a-z]+_[a-z0-9_]+\b")
NOT_FOR_PEOPLE = ("Outcome", "Traceback", "Error", "<bot.", "<cogs.", "{'", "\\n")
# "None." or "None: ..." as a sentence is English; anywhere else it is a Python value.
WORD_NONE = re.compile(r"(^|[.!?]\s+)None(?=[.:])")
GOOD_NEWS = {0x2ECC71, 0x5865F2}  # green, blurple


def for_a_person(embed: dict) -> str:
    title, description = embed.get("title", ""), embed.get("description", "")
    fields = [part for f in embed.get("fields", []) for part in (f["name"], f["value"])]
    footer = (embed.get("footer") or {}).get("text", "")
    assert title and (description or fields), embed
    assert embed.get("color") is not None, embed
    parts = [title, description, *fields, footer]
    text = " ".join(parts)
    prose = CODE.sub("", text)  # commands in backticks may name their options
    assert not [m for m in NOT_FOR_PEOPLE if m in prose], text
    assert not [p for p in parts if "None" in WORD_NONE.sub("", p)], text
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
        assert not [s for s in SECRETS if s in text], (what, text)


def button_labels(message: dict) -> list[str]:
    return [c["label"] for row in message.get("components") or [] for c in row["components"]]


class LogPosts:
    """The bot's own posts to the log channel, in order, waited for one by one."""

    def __init__(self, world, channel=GENERAL):
        self.world = world
        self.path = f"/channels/{channel}/messages"
        self.since = len(world.discord.requests)

    async def next(self) -> dict:
        request = await self.world.discord.wait_for_request(
            lambda r: r.method == "POST" and r.path == self.path, since=self.since
        )
        self.since = self.world.discord.requests.index(request) + 1
        assert request.status == 200, request.response
        return request.json["embeds"][0]


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


async def test_every_game_remove_and_revoke_reply(linked):
    world = linked
    for game_id, key in ((GAME_A, KEY), (GAME_B, KEY_B), (GAME_A, KEY_C)):
        world.itch.add_download_key(game_id, key)
    await world.redeem(ALICE, KEY)
    await world.redeem(ALICE, KEY_B)
    await world.redeem(BOB, KEY_C)
    seen: dict[str, dict] = {}
    questions: dict[str, dict] = {}

    async def keys(what, *path, **options):
        handle, final = await world.keys(ADMIN, *path, **options)
        assert handle.ephemeral()
        seen[what] = final["embeds"][0]
        if what in BUTTONS:
            questions[what] = final
        return final

    async def press(what, message, label):
        seen[what] = (await (await world.press(ADMIN, message, label)).final())["embeds"][0]

    question = await keys("revoke asks first", "revoke", member=str(ALICE))
    await press("revoke cancelled", question, "Cancel")
    _, question = await world.keys(ADMIN, "revoke", member=str(ALICE), game_id=GAME_B)
    await press("revoked", question, "Revoke")
    await keys("nothing to revoke", "revoke", member=str(CAROL))

    question = await keys("unlink a game with buyers", "game", "remove", game_id=GAME_A)
    await press("buyers' roles removed", question, "Remove the role from 2 buyer(s)")
    await keys("unlink a game nobody redeemed", "game", "remove", game_id=GAME_B)
    await keys("unlink a game that isn't linked", "game", "remove", game_id=777)

    check_replies(seen, MAPPING_AND_REVOKE_REPLIES)
    for what, message in questions.items():
        assert button_labels(message) == BUTTONS[what], what


async def test_every_recheck_audit_stats_and_export_reply(linked):
    world = linked
    seen: dict[str, dict] = {}

    async def keys(what, *path, **options):
        handle, final = await world.keys(ADMIN, *path, **options)
        assert handle.ephemeral()
        seen[what] = final["embeds"][0]
        return handle

    async def recheck(what):
        handle, _ = await world.keys(ADMIN, "recheck")
        assert handle.ephemeral()
        seen[what] = (await world.settled(handle, BUSY))["embeds"][0]
        return handle

    await recheck("nothing to re-check")
    for member, game_id, key in (
        (ALICE, GAME_A, KEY),
        (BOB, GAME_B, KEY_B),
        (CAROL, GAME_A, KEY_C),
    ):
        world.itch.add_download_key(game_id, key)
        await world.redeem(member, key)
    handle = await recheck("re-check finished")
    seen["re-check under way"] = next(
        e["embeds"][0] for e in handle.edits if e["embeds"][0]["title"] == BUSY
    )
    world.itch.always_fail = "html"
    await recheck("re-check stopped by an outage")
    world.itch.always_fail = None
    await keys("audit page", "audit")
    await keys("audit, nothing matches", "audit", member=str(OTHER_ADMIN))
    await keys("stats", "stats")
    await keys("export ready", "export")

    check_replies(seen, ADMIN_VIEW_REPLIES)


def test_every_event_has_its_log_post_in_the_script():
    published = {
        name
        for name, kind in vars(events).items()
        if isinstance(kind, type) and issubclass(kind, events.Event) and kind is not events.Event
    }
    scripted = {what.split(",")[0] for what in [*LOG_POSTS, *LINK_POSTS]}
    assert published <= scripted  # a new event type needs its post in the script


async def test_every_log_channel_reply_and_post(linked):
    world = linked
    seen: dict[str, dict] = {}
    posted: dict[str, dict] = {}
    log = LogPosts(world)

    async def keys(what, *path, **options):
        handle, final = await world.keys(ADMIN, *path, **options)
        assert handle.ephemeral()
        seen[what] = final["embeds"][0]

    async def recheck():
        handle, _ = await world.keys(ADMIN, "recheck")
        await world.settled(handle, BUSY)

    await keys("channel the bot can't post in", "log-channel", channel=str(LOCKED))
    await keys("turned off when there was none", "log-channel")
    await keys("log channel set", "log-channel", channel=str(GENERAL))
    posted["first post"] = await log.next()

    for game_id, key in ((GAME_A, KEY), (GAME_B, KEY_B), (GAME_A, KEY_C)):
        world.itch.add_download_key(game_id, key)
    await world.redeem(ALICE, KEY)
    posted["Redeemed"] = await log.next()
    await world.redeem(BOB, KEY)
    posted["KeyShared"] = await log.next()
    for _ in range(5):
        await world.redeem(BOB, "nope")
    posted["CooldownReached"] = await log.next()
    world.guild.set_bot_permissions(BOT_ROLE_PERMISSIONS & ~MANAGE_ROLES)
    await world.redeem(CAROL, KEY_B)
    posted["RoleFailed"] = await log.next()
    world.guild.set_bot_permissions(BOT_ROLE_PERMISSIONS)
    await world.redeem(CAROL, KEY_C)
    await log.next()  # Carol's redemption

    world.itch.always_fail = "html"
    await recheck()
    posted["RecheckHalted"] = await log.next()
    world.itch.always_fail = None
    world.itch.revoke_download_key(KEY)
    await recheck()
    posted["KeyRevokedByRecheck"] = await log.next()
    # Kept: hard to bring about (another redemption gives the role, or Discord refused).
    kept = events.KeyRevokedByRecheck(
        GUILD, CAROL, GAME_B, BUYER_B, "0123456789ab", False, "invalid download key"
    )
    await world.bot.events.publish(kept)
    posted["KeyRevokedByRecheck, role kept"] = await log.next()
    _, question = await world.keys(ADMIN, "revoke", member=str(CAROL))
    await (await world.press(ADMIN, question, "Revoke")).final()
    posted["Revoked"] = await log.next()

    await keys("log channel turned off", "log-channel")

    check_replies(seen, LOG_CHANNEL_REPLIES)
    check_replies(posted, LOG_POSTS)


async def test_every_link_reply(world):
    seen: dict[str, dict] = {}
    async with world.running():
        handle = await world.slash(ALICE, "link")
        seen["linking not set up"] = (await handle.final())["embeds"][0]
        assert handle.ephemeral()

    async with world.running(**OUT_OF_BAND):
        for game_id, role in ((GAME_A, BUYER_A), (GAME_B, BUYER_B)):
            await world.keys(ADMIN, "game", "add", game_id=game_id, role=str(role))
        world.itch.add_user_token(TOKEN, AMOS)
        world.itch.add_download_key(GAME_A, owner=AMOS)
        log = LogPosts(world)
        await world.keys(ADMIN, "log-channel", channel=str(GENERAL))
        posted = {"first post": await log.next()}

        async def paste(what, member, pasted):
            handle = await world.slash(member, "link")
            question = await handle.final()
            assert handle.ephemeral()
            seen["link asks to log in"] = question["embeds"][0]
            assert button_labels(question) == BUTTONS["link asks to log in"]
            dialog = await (await world.press(member, question, "2. Paste the token")).response()
            assert dialog["type"] == 9
            (row,) = dialog["data"]["components"]
            (field,) = row["components"]
            assert dialog["data"]["title"] == "Link your itch.io account"
            assert field["label"] == "The token itch.io showed you" and field["placeholder"]
            submitted = await world.discord.submit_modal(
                GUILD, member, dialog["data"]["custom_id"], {field["custom_id"]: pasted}
            )
            seen[what] = (await submitted.final())["embeds"][0]
            assert submitted.ephemeral()

        async def unlink(what, member):
            handle = await world.slash(member, "unlink")
            seen[what] = (await handle.final())["embeds"][0]
            assert handle.ephemeral()

        await paste("pasted something else", ALICE, "my password")
        await paste("account linked", ALICE, TOKEN)
        posted["AccountLinked"] = await log.next()
        await paste("account linked to another member", BOB, TOKEN)
        posted["ItchAccountTaken"] = await log.next()
        await unlink("nothing to unlink", BOB)
        await unlink("account unlinked", ALICE)
        posted["Revoked, by /unlink"] = await log.next()

    check_replies(seen, LINK_REPLIES)
    check_replies(posted, LINK_POSTS)
