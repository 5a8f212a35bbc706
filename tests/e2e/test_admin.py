"""Admins' views end to end: audit pages, stats, CSV export, log channel, revoke confirmation."""

from __future__ import annotations

import csv
import gzip
import io
import logging
import re
import time
from dataclasses import dataclass

import pytest

from bot.admin import AUDIT_OUTCOME_FILTERS
from bot.events import Event
from bot.keyparse import fingerprint
from tests.admin_bulk import add_audit, add_redemptions
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
    OTHER_ADMIN,
    OTHER_GUILD,
)
from tests.fakes.discord_fake import (
    BOT_ROLE_PERMISSIONS,
    EMBED_LINKS,
    MANAGE_ROLES,
    SEND_MESSAGES,
)

KEY_B = "Bq9TzqK3n1pZ0c7YfL2mRkX8sWvH4dJe"
KEY_C = "Zz8YyXx7WwVv6UuTt5SsRr4QqPp3Oo2N"
OTHER_GENERAL = OTHER_GUILD + 1
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def text(message: dict) -> str:
    parts = []
    for e in message.get("embeds", []):
        parts += [e.get("title", ""), e.get("description", "")]
        parts += [f["name"] + " " + f["value"] for f in e.get("fields", [])]
        parts.append((e.get("footer") or {}).get("text", ""))
    return "\n".join(parts)


def title(message: dict) -> str:
    return message["embeds"][0]["title"]


def buttons(message: dict) -> dict[str, dict]:
    return {
        c["label"]: c
        for row in message.get("components", [])
        for c in row.get("components", [])
        if c.get("type") == 2
    }


async def press(world, user, message, label, guild=GUILD):
    return await world.discord.click(guild, user, message, buttons(message)[label]["custom_id"])


def attachments(world, handle) -> list[tuple[str, bytes]]:
    found = []
    for msg in handle.followup_messages:
        for a in msg["attachments"]:
            found.append((a["filename"], world.discord.attachment_data[int(a["id"])]))
    return found


def read_csv(name: str, data: bytes) -> list[dict[str, str]]:
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


class LogWatch:
    """The bot's posts to one channel (not interaction replies), in order, waited for."""

    def __init__(self, world, channel=GENERAL):
        self.world = world
        self.path = f"/channels/{channel}/messages"
        self.since = len(world.discord.requests)

    async def next(self):
        request = await self.world.discord.wait_for_request(
            lambda r: r.method == "POST" and r.path == self.path, since=self.since
        )
        self.since = self.world.discord.requests.index(request) + 1
        return request

    async def next_embed(self) -> dict:
        request = await self.next()
        assert request.status == 200, request.response
        return request.json["embeds"][0]


# -- commands and choices -----------------------------------------------------------------


async def test_admin_commands_registered_with_explicit_outcome_choices(world, bot):
    keys = next(c for c in world.discord.global_commands if c["name"] == "keys")
    subs = {o["name"]: o for o in keys["options"]}
    assert {"audit", "stats", "export", "log-channel", "lookup", "revoke"} <= set(subs)
    audit_opts = {o["name"]: o for o in subs["audit"]["options"]}
    assert set(audit_opts) == {"member", "game_id", "outcome", "limit"}
    assert not any(o.get("required") for o in audit_opts.values())
    choices = [c["value"] for c in audit_opts["outcome"]["choices"]]
    assert choices == list(AUDIT_OUTCOME_FILTERS)
    assert {"redeemed", "key_taken", "cooldown", "revoked", "game_add", "admin"} <= set(choices)
    (channel_opt,) = subs["log-channel"]["options"]
    assert channel_opt["name"] == "channel" and not channel_opt.get("required")
    (audit_flag,) = subs["export"]["options"]
    assert audit_flag["name"] == "audit" and audit_flag["type"] == 5


# -- audit ----------------------------------------------------------------------------------


async def test_audit_pages_newest_first_and_only_the_admin_turns_them(linked):
    world = linked
    add_audit(world.db_path, GUILD, 25, outcome="invalid_key", first_member=CAROL)
    world.itch.add_download_key(GAME_A, KEY)
    await world.redeem(ALICE, KEY)
    await world.redeem(BOB, KEY)  # newest: a key claimed by another member

    handle, page1 = await world.keys(ADMIN, "audit")
    assert handle.ephemeral()
    # 2 games linked + 25 attempts + Alice's redemption + Bob's refusal.
    assert "Page 1 of 3 · 1-10 of 29" in text(page1)
    first_line = page1["embeds"][0]["description"].splitlines()[0]
    assert f"<@{BOB}>" in first_line and "claimed by another member" in first_line
    assert f"held by <@{ALICE}>" in first_line and fingerprint(KEY) in first_line
    assert KEY not in text(page1)
    assert buttons(page1)["Previous"].get("disabled") and not buttons(page1)["Next"].get("disabled")

    seen = re.findall(r"bulk (\d+)", text(page1))
    click = await press(world, ADMIN, page1, "Next")
    page2 = await click.final()
    assert "Page 2 of 3 · 11-20 of 29" in text(page2)
    seen += re.findall(r"bulk (\d+)", text(page2))

    # Another member presses: refused, privately, and the page does not move.
    intruder = await press(world, BOB, page2, "Next")
    refusal = await intruder.response()
    assert intruder.ephemeral() and "belong to the admin who ran" in text(refusal["data"])
    assert "Page 2 of 3" in text(handle.message)

    page3 = await (await press(world, ADMIN, page2, "Next")).final()
    assert "Page 3 of 3 · 21-29 of 29" in text(page3)
    assert buttons(page3)["Next"].get("disabled")
    seen += re.findall(r"bulk (\d+)", text(page3))
    # Every generated entry exactly once, newest first.
    assert seen == [str(i) for i in range(24, -1, -1)]

    back = await (await press(world, ADMIN, page3, "Previous")).final()
    assert "Page 2 of 3" in text(back) and re.findall(r"bulk (\d+)", text(back))[0] == "16"


async def test_audit_filters(linked):
    world = linked
    world.itch.add_download_key(GAME_A, KEY)
    world.itch.add_download_key(GAME_B, KEY_B)
    await world.redeem(ALICE, KEY)
    await world.redeem(ALICE, KEY_B)
    await world.redeem(BOB, KEY)
    await world.redeem(BOB, "not a key at all")

    def lines(message):
        return message["embeds"][0]["description"].splitlines()

    _, final = await world.keys(ADMIN, "audit", member=str(BOB))
    assert len(lines(final)) == 2 and all(f"<@{BOB}>" in ln for ln in lines(final))
    assert not final["components"]  # one page: no buttons

    _, final = await world.keys(ADMIN, "audit", game_id=GAME_B)
    assert [("Game linked" in ln, "Redeemed" in ln) for ln in lines(final)] == [
        (False, True),
        (True, False),
    ]

    _, final = await world.keys(ADMIN, "audit", outcome="refused")
    assert len(lines(final)) == 2 and "Any refusal" in text(final)
    _, final = await world.keys(ADMIN, "audit", outcome="malformed", member=str(BOB))
    assert len(lines(final)) == 1 and "not a key" in lines(final)[0]
    _, final = await world.keys(ADMIN, "audit", outcome="game_add")
    assert len(lines(final)) == 2 and f"role <@&{BUYER_A}>" in text(final)
    _, final = await world.keys(ADMIN, "audit", limit=3)
    assert len(lines(final)) == 3 and "1-3 of 3" in text(final)
    assert "not a key" in lines(final)[0]  # newest first

    _, final = await world.keys(ADMIN, "audit", outcome="revoked")
    assert "No attempts or admin actions match" in text(final)


async def test_audit_buttons_stop_working_after_the_timeout(linked):
    world = linked
    world.bot.get_cog("Keys").pages_timeout = 0.2
    add_audit(world.db_path, GUILD, 15)
    handle, final = await world.keys(ADMIN, "audit")
    assert not buttons(final)["Next"].get("disabled")

    def disabled_edit(r):
        if r.method != "PATCH" or not r.path.endswith("/messages/@original"):
            return False
        rows = (r.json or {}).get("components") or []
        found = [c for row in rows for c in row["components"]]
        return bool(found) and all(c.get("disabled") for c in found)

    await world.discord.wait_for_request(disabled_edit)
    assert all(b.get("disabled") for b in buttons(handle.message).values())
    with pytest.raises(ValueError, match="disabled"):
        await press(world, ADMIN, handle.message, "Next")


# -- stats ----------------------------------------------------------------------------------


def table(field_value: str) -> dict[str, list[int]]:
    rows = re.findall(
        r"^(buyers|redemptions|refused)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)$", field_value, re.M
    )
    return {name: [int(n.replace(",", "")) for n in nums] for name, *nums in rows}


def fields(message: dict) -> dict[str, str]:
    return {f["name"]: f["value"] for f in message["embeds"][0]["fields"]}


async def test_stats_per_game_pending_roles_and_missing_records(linked):
    world = linked
    world.itch.add_download_key(GAME_A, KEY)
    world.itch.add_download_key(GAME_B, KEY_B)
    await world.redeem(ALICE, KEY)
    await world.redeem(BOB, KEY)  # refused: claimed by Alice
    await world.redeem(CAROL, KEY_C)  # refused: no game knows it
    world.guild.set_bot_permissions(BOT_ROLE_PERMISSIONS & ~MANAGE_ROLES)
    await world.redeem(BOB, KEY_B)  # recorded, role pending
    # Carol got a buyer role by hand, without any record.
    world.guild.members[CAROL]["roles"].append(str(BUYER_A))

    handle, final = await world.keys(ADMIN, "stats")
    assert handle.ephemeral()
    by_name = fields(final)
    assert table(by_name[f"X-Moon ({GAME_A})"]) == {
        "buyers": [1, 1, 1],
        "redemptions": [1, 1, 1],
        "refused": [1, 1, 1],
    }
    assert table(by_name[f"Y-Sun ({GAME_B})"]) == {
        "buyers": [1, 1, 1],
        "redemptions": [1, 1, 1],
        "refused": [0, 0, 0],
    }
    assert "1 today · 1 this week · 1 in all" in by_name["Refused, no game matched"]
    assert by_name["Roles pending"].startswith("1 redemption(s)")
    missing = by_name["Members with a buyer role but no record"]
    assert f"<@{CAROL}> (<@&{BUYER_A}>)" in missing and f"<@{ALICE}>" not in missing


async def test_stats_with_every_record_in_place(linked):
    world = linked
    world.itch.add_download_key(GAME_A, KEY)
    await world.redeem(ALICE, KEY)
    _, final = await world.keys(ADMIN, "stats")
    assert fields(final)["Members with a buyer role but no record"].startswith("None")
    assert fields(final)["Roles pending"] == "None."


# -- export ---------------------------------------------------------------------------------


async def test_export_redemptions_csv(linked):
    world = linked
    world.itch.add_download_key(GAME_A, KEY, owner={"id": 1994, "username": "amos"}, key_id=124)
    world.itch.add_download_key(GAME_B, KEY_B)
    await world.redeem(ALICE, KEY)
    await world.redeem(BOB, KEY_B)

    handle, final = await world.keys(ADMIN, "export")
    assert handle.ephemeral() and title(final) == "Export ready"
    assert "**2** redemptions" in text(final) and "compressed" not in text(final)
    ((name, data),) = attachments(world, handle)
    assert name.startswith(f"redemptions-{GUILD}-") and name.endswith(".csv")
    assert KEY.encode() not in data and KEY_B.encode() not in data
    rows = read_csv(name, data)
    assert [(r["member_id"], r["game_id"], r["game_title"], r["role_id"]) for r in rows] == [
        (str(ALICE), str(GAME_A), "X-Moon", str(BUYER_A)),
        (str(BOB), str(GAME_B), "Y-Sun", str(BUYER_B)),
    ]
    alice = rows[0]
    assert alice["key_fingerprint"] == fingerprint(KEY)
    assert (alice["itch_user_id"], alice["itch_username"], alice["key_id"]) == (
        "1994",
        "amos",
        "124",
    )
    assert alice["role_applied"] == "1" and alice["status"] == "active"
    assert all(ISO_UTC.fullmatch(r["redeemed_at"]) for r in rows)
    assert rows[1]["itch_user_id"] == "" and rows[1]["itch_username"] == ""


async def test_export_audit_trail_csv(linked):
    world = linked
    world.itch.add_download_key(GAME_A, KEY)
    await world.redeem(ALICE, KEY)
    await world.redeem(BOB, KEY)
    handle, final = await world.keys(ADMIN, "export", audit=True)
    assert "**4** audit entries" in text(final)
    ((name, data),) = attachments(world, handle)
    assert name.startswith(f"audit-{GUILD}-") and KEY.encode() not in data
    rows = read_csv(name, data)
    assert [(r["action"], r["outcome"], r["member_id"]) for r in rows] == [
        ("game_add", "ok", str(ADMIN)),
        ("game_add", "ok", str(ADMIN)),
        ("redeem", "redeemed", str(ALICE)),
        ("redeem", "key_taken", str(BOB)),
    ]
    assert rows[0]["actor_id"] == str(ADMIN) and rows[2]["actor_id"] == ""
    assert rows[3]["key_fingerprint"] == fingerprint(KEY)
    assert rows[3]["detail"] == f"held by {ALICE}"
    assert all(ISO_UTC.fullmatch(r["at"]) for r in rows)


# -- log channel ----------------------------------------------------------------------------


async def test_log_channel_refuses_a_channel_the_bot_cannot_post_to(linked):
    world = linked
    handle, final = await world.keys(ADMIN, "log-channel", channel=str(LOCKED))
    assert handle.ephemeral() and title(final) == "That didn't work"
    assert "Send Messages" in text(final) and "Nothing changed" in text(final)
    assert await world.bot.store.log_channel(GUILD) is None
    assert not [r for r in world.discord.requests if r.path == f"/channels/{LOCKED}/messages"]


async def test_log_channel_needs_embed_links(world):
    no_embeds = world.guild.add_channel(402, "no-embeds")
    no_embeds["permission_overwrites"].append(
        {"id": str(world.discord.bot_user_id), "type": 1, "allow": "0", "deny": str(EMBED_LINKS)}
    )
    async with world.running() as bot:
        _, final = await world.keys(ADMIN, "log-channel", channel="402")
        assert title(final) == "That didn't work" and "**Embed Links**" in text(final)
        assert "**Send Messages**" not in text(final)
        assert await bot.store.log_channel(GUILD) is None


async def test_log_channel_posts_short_embeds(linked):
    world = linked
    log = LogWatch(world)
    _, final = await world.keys(ADMIN, "log-channel", channel=str(GENERAL))
    assert title(final) == "Log channel set" and f"<#{GENERAL}>" in text(final)
    assert await world.bot.store.log_channel(GUILD) == GENERAL
    hello = await log.next_embed()
    assert f"<@{ADMIN}>" in hello["description"]

    world.itch.add_download_key(GAME_A, KEY)
    await world.redeem(ALICE, KEY)
    post = await log.next_embed()
    assert post["title"] == "Key redeemed"
    assert f"<@{ALICE}>" in post["description"] and f"<@&{BUYER_A}>" in post["description"]
    assert "X-Moon" in post["description"] and fingerprint(KEY) in post["description"]

    # Key sharing: both members named, the key only by fingerprint.
    await world.redeem(BOB, KEY)
    post = await log.next_embed()
    assert post["title"].startswith("Key already claimed")
    assert f"<@{BOB}>" in post["description"] and f"<@{ALICE}>" in post["description"]
    assert fingerprint(KEY) in post["description"]

    for _ in range(4):
        await world.redeem(BOB, "nope")
    _, reply = await world.redeem(BOB, "nope")
    assert title(reply) == "Slow down a little"
    post = await log.next_embed()
    assert post["title"] == "Cool-down reached" and f"<@{BOB}>" in post["description"]

    world.guild.set_bot_permissions(BOT_ROLE_PERMISSIONS & ~MANAGE_ROLES)
    world.itch.add_download_key(GAME_B, KEY_B)
    await world.redeem(CAROL, KEY_B)
    post = await log.next_embed()
    assert post["title"] == "Role could not be added" and f"<@&{BUYER_B}>" in post["description"]
    world.guild.set_bot_permissions(BOT_ROLE_PERMISSIONS)

    _, final = await world.keys(ADMIN, "revoke", member=str(ALICE))
    await (await press(world, ADMIN, final, "Revoke")).final()
    post = await log.next_embed()
    assert post["title"] == "Redemption revoked"
    assert f"<@{ALICE}>" in post["description"] and f"<@{ADMIN}>" in post["description"]

    every = [r for r in world.discord.requests if r.path == f"/channels/{GENERAL}/messages"]
    assert all(KEY not in str(r.json) and KEY_B not in str(r.json) for r in every)
    # Mentions inform, they never ping.
    assert all(r.json["allowed_mentions"]["parse"] == [] for r in every)


async def test_log_channel_off(linked):
    world = linked
    await world.keys(ADMIN, "log-channel", channel=str(GENERAL))
    _, final = await world.keys(ADMIN, "log-channel")
    assert title(final) == "Log channel turned off"
    assert await world.bot.store.log_channel(GUILD) is None
    log = LogWatch(world)
    world.itch.add_download_key(GAME_A, KEY)
    await world.redeem(ALICE, KEY)  # not posted
    _, final = await world.keys(ADMIN, "log-channel")
    assert title(final) == "No log channel"
    await world.keys(ADMIN, "log-channel", channel=str(GENERAL))
    assert (await log.next_embed())["title"] == "itch.io key log"
    await world.redeem(BOB, KEY)
    # Posts go out in order: had Alice's redemption been posted, it would come first.
    assert (await log.next_embed())["title"].startswith("Key already claimed")


@pytest.mark.parametrize("breakage", ["channel deleted", "send denied"])
async def test_a_failing_log_channel_never_breaks_a_redemption(linked, caplog, breakage):
    world = linked
    await world.keys(ADMIN, "log-channel", channel=str(GENERAL))
    log = LogWatch(world)
    if breakage == "channel deleted":
        del world.guild.channels[GENERAL]
    else:
        world.guild.channels[GENERAL]["permission_overwrites"].append(
            {
                "id": str(world.discord.bot_user_id),
                "type": 1,
                "allow": "0",
                "deny": str(SEND_MESSAGES),
            }
        )
    world.itch.add_download_key(GAME_A, KEY)
    world.itch.add_download_key(GAME_B, KEY_B)
    with caplog.at_level(logging.WARNING, logger="cogs.logchannel"):
        _, final = await world.redeem(ALICE, KEY, guild=GUILD)
        assert title(final) == "Key redeemed" and BUYER_A in world.guild.member_roles(ALICE)
        failed = await log.next()
        assert failed.status in (403, 404)
        _, final = await world.redeem(ALICE, KEY_B)  # and the next one too
        assert title(final) == "Key redeemed"
        await log.next()
    assert "could not post Redeemed to log channel" in caplog.text
    assert len(await world.bot.store.redemptions_by_member(GUILD, ALICE)) == 2


@dataclass(frozen=True)
class AccountLinkRefused(Event):
    holder_id: int
    reason: str


async def test_events_without_a_renderer_are_still_posted(linked):
    world = linked
    await world.keys(ADMIN, "log-channel", channel=str(GENERAL))
    log = LogWatch(world)
    await world.bot.events.publish(AccountLinkRefused(GUILD, ALICE, BOB, "linked to another"))
    post = await log.next_embed()
    assert post["title"] == "Account link refused"
    assert post["description"].splitlines() == [
        f"Member: <@{ALICE}>",
        f"Holder id: <@{BOB}>",
        "Reason: linked to another",
    ]


# -- revoke asks first ----------------------------------------------------------------------


async def redeem_both(world):
    world.itch.add_download_key(GAME_A, KEY)
    world.itch.add_download_key(GAME_B, KEY_B)
    await world.redeem(ALICE, KEY)
    await world.redeem(ALICE, KEY_B)


async def nothing_revoked(world):
    assert len(await world.bot.store.redemptions_by_member(GUILD, ALICE)) == 2
    assert {BUYER_A, BUYER_B} <= world.guild.member_roles(ALICE)
    assert not world.role_requests("DELETE")


async def test_revoke_names_what_will_happen_then_acts_on_confirm(linked):
    world = linked
    await redeem_both(world)
    handle, final = await world.keys(ADMIN, "revoke", member=str(ALICE))
    assert handle.ephemeral() and title(final) == "Revoke 2 redemption(s)?"
    body = text(final)
    assert "X-Moon" in body and "Y-Sun" in body and f"<@{ALICE}>" in body
    assert f"<@&{BUYER_A}>" in body and f"<@&{BUYER_B}>" in body
    assert fingerprint(KEY) in body and KEY not in body
    assert set(buttons(final)) == {"Revoke", "Cancel"}
    await nothing_revoked(world)

    intruder = await press(world, BOB, final, "Revoke")
    await intruder.response()
    assert intruder.ephemeral()
    await nothing_revoked(world)
    # The admin who asked, no longer allowed (Manage Server taken away meanwhile).
    demoted = await world.discord.click(
        GUILD, ADMIN, final, buttons(final)["Revoke"]["custom_id"], permissions=0
    )
    refusal = await demoted.response()
    assert demoted.ephemeral() and "Manage Server" in text(refusal["data"])
    await nothing_revoked(world)

    done = await (await press(world, ADMIN, final, "Revoke")).final()
    assert title(done) == "Revoked" and not done["components"]
    assert await world.bot.store.redemptions_by_member(GUILD, ALICE) == []
    assert not {BUYER_A, BUYER_B} & world.guild.member_roles(ALICE)


async def test_revoke_cancel_changes_nothing(linked):
    world = linked
    await redeem_both(world)
    _, final = await world.keys(ADMIN, "revoke", member=str(ALICE), game_id=GAME_A)
    assert title(final) == "Revoke 1 redemption(s)?" and "Y-Sun" not in text(final)
    done = await (await press(world, ADMIN, final, "Cancel")).final()
    assert title(done) == "Cancelled" and not done["components"]
    await nothing_revoked(world)


async def test_revoke_confirmation_expires(linked):
    world = linked
    world.bot.get_cog("Keys").confirm_timeout = 0.2
    await redeem_both(world)
    handle, _ = await world.keys(ADMIN, "revoke", member=str(ALICE))
    await world.discord.wait_for_request(lambda r: r.method == "PATCH" and "expired" in str(r.json))
    assert title(handle.message) == "Revocation expired"
    with pytest.raises(ValueError, match="disabled"):
        await press(world, ADMIN, handle.message, "Revoke")
    await nothing_revoked(world)


async def test_revoke_asks_again_when_things_changed(linked):
    world = linked
    world.itch.add_download_key(GAME_A, KEY)
    world.itch.add_download_key(GAME_B, KEY_B)
    await world.redeem(ALICE, KEY)
    _, final = await world.keys(ADMIN, "revoke", member=str(ALICE))
    assert title(final) == "Revoke 1 redemption(s)?"
    await world.redeem(ALICE, KEY_B)  # redeemed while the admin was reading
    again = await (await press(world, ADMIN, final, "Revoke")).final()
    assert title(again) == "Revoke 2 redemption(s)?" and "changed since you asked" in text(again)
    await nothing_revoked(world)
    done = await (await press(world, ADMIN, again, "Revoke")).final()
    assert title(done) == "Revoked"
    assert await world.bot.store.redemptions_by_member(GUILD, ALICE) == []


# -- one guild's admins never see another's data ----------------------------------------------


async def test_admin_views_are_per_guild(linked):
    world = linked
    await world.keys(ADMIN, "log-channel", channel=str(GENERAL))
    _, final = await world.keys(
        OTHER_ADMIN, "log-channel", channel=str(OTHER_GENERAL), guild=OTHER_GUILD
    )
    assert title(final) == "Log channel set"
    here, there = LogWatch(world), LogWatch(world, OTHER_GENERAL)
    world.itch.add_download_key(GAME_A, KEY)
    await world.redeem(ALICE, KEY)
    assert (await here.next_embed())["title"] == "Key redeemed"

    _, final = await world.keys(OTHER_ADMIN, "audit", member=str(ALICE), guild=OTHER_GUILD)
    assert "No attempts or admin actions match" in text(final)
    _, final = await world.keys(OTHER_ADMIN, "audit", guild=OTHER_GUILD)
    assert f"<@{ALICE}>" not in text(final) and "Log channel changed" in text(final)
    _, final = await world.keys(OTHER_ADMIN, "stats", guild=OTHER_GUILD)
    assert "X-Moon" not in text(final) and "No games linked" in text(final)
    handle, final = await world.keys(OTHER_ADMIN, "export", guild=OTHER_GUILD)
    ((name, data),) = attachments(world, handle)
    assert read_csv(name, data) == [] and str(GUILD) not in name
    handle, _ = await world.keys(OTHER_ADMIN, "export", audit=True, guild=OTHER_GUILD)
    ((name, data),) = attachments(world, handle)
    assert [r["action"] for r in read_csv(name, data)] == ["log_channel"]

    # Turning the other guild's log channel off leaves this one alone.
    await world.keys(OTHER_ADMIN, "log-channel", guild=OTHER_GUILD)
    assert await world.bot.store.log_channel(GUILD) == GENERAL
    await world.redeem(BOB, KEY)
    assert (await here.next_embed())["title"].startswith("Key already claimed")
    assert [r for r in world.discord.requests[there.since :] if r.path == there.path] == []


# -- large guilds ---------------------------------------------------------------------------


async def patient(world, *path):
    """/keys on a large store: on a loaded machine it may take longer than the usual 5 s."""
    handle = await world.slash(ADMIN, "keys", [], subcommand=list(path))
    return handle, await handle.final(timeout=30)


async def test_large_guild_export_stats_and_audit(linked):
    world = linked
    started = time.perf_counter()
    add_redemptions(world.db_path, GUILD, 100_000, games={GAME_A: BUYER_A, GAME_B: BUYER_B})
    add_audit(world.db_path, GUILD, 100_000, outcome="invalid_key")
    generated = time.perf_counter()

    handle, final = await patient(world, "export")
    exported = time.perf_counter()
    assert "**100,000** redemptions" in text(final) and "gzip-compressed" in text(final)
    files = attachments(world, handle)
    assert all(name.endswith(".csv.gz") and len(data) <= 8 * 1024 * 1024 for name, data in files)
    rows = [
        row
        for _, data in files
        for row in csv.reader(io.StringIO(gzip.decompress(data).decode()))
        if row[0] != "redemption_id"
    ]
    assert len(rows) == 100_000
    assert [int(r[0]) for r in rows] == sorted(int(r[0]) for r in rows)
    assert {r[3] for r in rows} == {str(GAME_A), str(GAME_B)}
    assert len({r[11] for r in rows}) == 100_000  # fingerprints
    parsed = time.perf_counter()

    _, final = await patient(world, "stats")
    stats_done = time.perf_counter()
    a = table(fields(final)[f"X-Moon ({GAME_A})"])
    b = table(fields(final)[f"Y-Sun ({GAME_B})"])
    assert a["redemptions"][2] + b["redemptions"][2] == 100_000
    assert a["buyers"][2] == 50_000 and b["buyers"][2] == 50_000
    assert "100,000 in all" in fields(final)["Refused, no game matched"]

    handle, final = await patient(world, "audit")
    assert "Page 1 of 10,001 · 1-10 of 100,002" in text(final)
    page2 = await (await press(world, ADMIN, final, "Next")).final(timeout=30)
    assert "11-20 of 100,002" in text(page2)
    done = time.perf_counter()
    print(
        f"\n100k: generate {generated - started:.2f}s, export {exported - generated:.2f}s "
        f"({sum(len(d) for _, d in files):,} bytes in {len(files)} file(s)), "
        f"parse {parsed - exported:.2f}s, stats {stats_done - parsed:.2f}s, "
        f"audit {done - stats_done:.2f}s"
    )
