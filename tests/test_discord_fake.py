"""Prove the loopback Discord fake against the real, unpatched discord.py client."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import discord
import pytest
from discord.ext import commands

from tests.fakes.discord_fake import BOT_ROLE_PERMISSIONS, MANAGE_ROLES, FakeDiscord, FakeGuild

GUILD_ID = 900_000_000_000_000_001
OWNER_ID = 900_000_000_000_000_002
MEMBER_ID = 900_000_000_000_000_003
OTHER_MEMBER_ID = 900_000_000_000_000_004
NEWCOMER_ID = 900_000_000_000_000_005
ROLE_ID = 900_000_000_000_000_010  # position 5: below the bot's role (10)
HIGH_ROLE_ID = 900_000_000_000_000_011  # position 20: above the bot's role
AUTO_ROLE_ID = 900_000_000_000_000_012
CHANNEL_ID = 900_000_000_000_000_020
LOCKED_CHANNEL_ID = 900_000_000_000_000_021


# ---------------------------------------------------------------------------------------
# the bot under test (defined here, not imported from the project)
# ---------------------------------------------------------------------------------------


class PanelView(discord.ui.View):
    @discord.ui.button(label="Press", custom_id="panel:press", style=discord.ButtonStyle.primary)
    async def press(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.edit_message(
            content=f"pressed by {interaction.user.id}", view=None
        )


class FeedbackModal(discord.ui.Modal, title="Feedback"):
    text = discord.ui.TextInput(label="Your feedback", custom_id="feedback:text")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"thanks: {self.text.value}", ephemeral=True)


def make_bot() -> commands.Bot:
    intents = discord.Intents.default()
    intents.members = True
    bot = commands.Bot(
        command_prefix=commands.when_mentioned,
        intents=intents,
        help_command=None,
        guild_ready_timeout=0.05,  # discord.py waits this long after the last GUILD_CREATE
    )
    guild = discord.Object(GUILD_ID)

    @bot.tree.command(name="ping", description="Ping", guild=guild)
    async def ping(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await interaction.followup.send(embed=discord.Embed(title="Pong", description="ok"))

    @bot.tree.command(name="grant", description="Give yourself a role", guild=guild)
    async def grant(interaction: discord.Interaction, role: discord.Role) -> None:
        assert isinstance(interaction.user, discord.Member)
        try:
            await interaction.user.add_roles(role, reason="self-serve grant")
        except discord.Forbidden:
            await interaction.response.send_message("forbidden", ephemeral=True)
            return
        await interaction.response.send_message(f"granted {role.name}", ephemeral=True)

    @bot.tree.command(name="panel", description="Show a panel", guild=guild)
    async def panel(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("panel", view=PanelView())

    @bot.tree.command(name="feedback", description="Send feedback", guild=guild)
    async def feedback(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(FeedbackModal())

    @bot.tree.command(name="post", description="Post a file here", guild=guild)
    async def post(interaction: discord.Interaction) -> None:
        assert isinstance(interaction.channel, discord.TextChannel)
        try:
            await interaction.channel.send("hello", file=discord.File(io.BytesIO(b"xyz"), "a.txt"))
        except discord.Forbidden:
            await interaction.response.send_message("cannot post", ephemeral=True)
            return
        await interaction.response.send_message("posted", ephemeral=True)

    @bot.event
    async def on_member_join(member: discord.Member) -> None:
        await member.add_roles(discord.Object(AUTO_ROLE_ID), reason="auto role")

    async def setup_hook() -> None:
        await bot.tree.sync(guild=guild)

    async def before_identify_hook(shard_id: int | None, *, initial: bool = False) -> None:
        """discord.py sleeps 5 s here before every re-IDENTIFY; not needed against the fake."""

    bot.setup_hook = setup_hook  # type: ignore[method-assign]
    bot.before_identify_hook = before_identify_hook  # type: ignore[method-assign]
    return bot


# ---------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------


def build_world(fake: FakeDiscord) -> FakeGuild:
    guild = fake.add_guild(GUILD_ID, "Test Guild", owner_id=OWNER_ID)
    guild.add_role(ROLE_ID, "Supporter", 5)
    guild.add_role(HIGH_ROLE_ID, "Staff", 20, permissions=MANAGE_ROLES)
    guild.add_role(AUTO_ROLE_ID, "Newcomer", 3)
    guild.add_member(OWNER_ID, "owner")
    guild.add_member(MEMBER_ID, "alice")
    guild.add_member(OTHER_MEMBER_ID, "bob", [HIGH_ROLE_ID])
    guild.add_channel(CHANNEL_ID, "general")
    guild.add_channel(LOCKED_CHANNEL_ID, "announcements", bot_can_send=False)
    return guild


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    fake = FakeDiscord()
    await fake.start()
    build_world(fake)
    try:
        with fake.patch_discord():
            yield fake
    finally:
        await fake.close()
    assert not fake.errors, fake.errors


@pytest.fixture
async def bot(fake: FakeDiscord) -> AsyncIterator[commands.Bot]:
    bot = make_bot()
    task = asyncio.create_task(bot.start(fake.token))
    try:
        await fake.wait_ready()
        await asyncio.wait_for(bot.wait_until_ready(), 5)
        yield bot
    finally:
        await bot.close()
        await asyncio.wait_for(task, 5)


# ---------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------


async def test_login_sync_and_ready(fake: FakeDiscord, bot: commands.Bot) -> None:
    paths = [(r.method, r.path) for r in fake.requests]
    assert ("GET", "/users/@me") in paths
    assert ("GET", "/oauth2/applications/@me") in paths
    assert ("PUT", f"/applications/{fake.application_id}/guilds/{GUILD_ID}/commands") in paths
    names = {c["name"] for c in fake.guild_commands[GUILD_ID]}
    assert names == {"ping", "grant", "panel", "feedback", "post"}
    assert fake.global_commands == []

    # the real client used zlib-stream compression and chunked members with op 8
    assert fake.gateway_connections[0]["compress"] == "zlib-stream"
    assert any(p["op"] == 8 for p in fake.gateway_received)
    guild = bot.get_guild(GUILD_ID)
    assert guild is not None
    assert guild.chunked
    alice = guild.get_member(MEMBER_ID)
    assert alice is not None and alice.name == "alice"
    assert guild.me.guild_permissions.manage_roles
    assert not guild.me.guild_permissions.administrator
    locked = guild.get_channel(LOCKED_CHANNEL_ID)
    assert isinstance(locked, discord.TextChannel)
    assert not locked.permissions_for(guild.me).send_messages


async def test_ping_defers_ephemerally_then_sends_embed(
    fake: FakeDiscord, bot: commands.Bot
) -> None:
    handle = await fake.slash(GUILD_ID, MEMBER_ID, "ping")
    response = await handle.response()
    assert response["type"] == 5
    assert handle.ephemeral()
    followup = await handle.wait_followup()
    assert followup["embeds"][0]["title"] == "Pong"
    final = await handle.final()
    assert final["embeds"][0]["description"] == "ok"
    assert final["flags"] & 64  # the defer decided: still ephemeral
    assert not final["flags"] & 128  # no longer "thinking"


async def test_grant_role_and_hierarchy(fake: FakeDiscord, bot: commands.Bot) -> None:
    guild = fake.guilds[GUILD_ID]
    cache_updated = asyncio.ensure_future(
        bot.wait_for("member_update", check=lambda _, after: after.get_role(ROLE_ID) is not None)
    )
    handle = await fake.slash(GUILD_ID, MEMBER_ID, "grant", [{"name": "role", "value": ROLE_ID}])
    assert (await handle.final())["content"] == "granted Supporter"
    assert ROLE_ID in guild.member_roles(MEMBER_ID)
    put = await fake.wait_for_request(
        lambda r: r.method == "PUT" and r.path.endswith(f"/{ROLE_ID}")
    )
    assert put.path == f"/guilds/{GUILD_ID}/members/{MEMBER_ID}/roles/{ROLE_ID}"
    assert put.status == 204
    assert put.reason == "self-serve grant"

    # the gateway told the client about the change (GUILD_MEMBER_UPDATE)
    _, after = await asyncio.wait_for(cache_updated, 5)
    assert after.id == MEMBER_ID

    # a role above the bot's highest role is refused like Discord does
    handle = await fake.slash(
        GUILD_ID, MEMBER_ID, "grant", [{"name": "role", "value": HIGH_ROLE_ID}]
    )
    assert (await handle.final())["content"] == "forbidden"
    refused = await fake.wait_for_request(lambda r: r.path.endswith(f"/roles/{HIGH_ROLE_ID}"))
    assert refused.status == 403 and refused.response["code"] == 50013
    assert HIGH_ROLE_ID not in guild.member_roles(MEMBER_ID)


async def test_role_endpoint_rules(fake: FakeDiscord, bot: commands.Bot) -> None:
    guild = fake.guilds[GUILD_ID]
    with pytest.raises(discord.NotFound) as unknown_member:
        await bot.http.add_role(GUILD_ID, 42, ROLE_ID)
    assert unknown_member.value.code == 10007
    with pytest.raises(discord.NotFound) as unknown_role:
        await bot.http.add_role(GUILD_ID, MEMBER_ID, 42)
    assert unknown_role.value.code == 10011
    with pytest.raises(discord.Forbidden):  # managed role
        await bot.http.add_role(GUILD_ID, MEMBER_ID, guild.bot_role_id)

    guild.set_bot_permissions(BOT_ROLE_PERMISSIONS & ~MANAGE_ROLES)
    with pytest.raises(discord.Forbidden) as missing:
        await bot.http.add_role(GUILD_ID, MEMBER_ID, ROLE_ID)
    assert missing.value.code == 50013
    guild.set_bot_permissions(BOT_ROLE_PERMISSIONS)
    await bot.http.add_role(GUILD_ID, MEMBER_ID, ROLE_ID)
    await bot.http.remove_role(GUILD_ID, MEMBER_ID, ROLE_ID, reason="cleanup")
    assert ROLE_ID not in guild.member_roles(MEMBER_ID)

    with pytest.raises(discord.NotFound) as unknown_route:
        await bot.http.request(discord.http.Route("GET", "/nope"))
    assert unknown_route.value.code == 0
    assert fake.requests[-1].path == "/nope" and fake.requests[-1].status == 404


async def test_button_click_updates_message(fake: FakeDiscord, bot: commands.Bot) -> None:
    handle = await fake.slash(GUILD_ID, MEMBER_ID, "panel")
    message = await handle.final()
    assert message["content"] == "panel"
    assert not handle.ephemeral()
    assert message["components"][0]["components"][0]["custom_id"] == "panel:press"

    click = await fake.click(GUILD_ID, OTHER_MEMBER_ID, message, "panel:press")
    assert (await click.response())["type"] == 7
    updated = await click.final()
    assert updated["id"] == message["id"]
    assert updated["content"] == f"pressed by {OTHER_MEMBER_ID}"
    assert updated["components"] == []


async def test_modal_submit(fake: FakeDiscord, bot: commands.Bot) -> None:
    opener = await fake.slash(GUILD_ID, MEMBER_ID, "feedback")
    modal = await opener.response()
    assert modal["type"] == 9 and modal["data"]["title"] == "Feedback"

    submitted = await fake.submit_modal(
        GUILD_ID, MEMBER_ID, modal["data"]["custom_id"], {"feedback:text": "great bot"}
    )
    assert (await submitted.final())["content"] == "thanks: great bot"
    assert submitted.ephemeral()


async def test_channel_post_multipart_and_forbidden(fake: FakeDiscord, bot: commands.Bot) -> None:
    handle = await fake.slash(GUILD_ID, MEMBER_ID, "post")
    assert (await handle.final())["content"] == "posted"
    sent = await fake.wait_for_request(
        lambda r: r.method == "POST" and r.path == f"/channels/{CHANNEL_ID}/messages"
    )
    assert sent.json["content"] == "hello"
    assert sent.files == [("a.txt", b"xyz")]
    posted = [m for m in fake.messages_in(CHANNEL_ID) if m["content"] == "hello"]
    assert posted[0]["attachments"][0]["size"] == 3

    handle = await fake.slash(GUILD_ID, MEMBER_ID, "post", channel_id=LOCKED_CHANNEL_ID)
    assert (await handle.final())["content"] == "cannot post"
    assert fake.messages_in(LOCKED_CHANNEL_ID)[-1]["content"] == "cannot post"
    assert all(m["content"] != "hello" for m in fake.messages_in(LOCKED_CHANNEL_ID))


async def test_member_join_and_leave(fake: FakeDiscord, bot: commands.Bot) -> None:
    await fake.member_join(GUILD_ID, NEWCOMER_ID, "carol")
    req = await fake.wait_for_request(
        lambda r: r.path.endswith(f"/{NEWCOMER_ID}/roles/{AUTO_ROLE_ID}")
    )
    assert req.reason == "auto role"
    assert fake.guilds[GUILD_ID].member_roles(NEWCOMER_ID) == {AUTO_ROLE_ID}

    removed = asyncio.ensure_future(bot.wait_for("raw_member_remove"))
    await fake.member_leave(GUILD_ID, NEWCOMER_ID)
    event = await asyncio.wait_for(removed, 5)
    assert event.user.id == NEWCOMER_ID
    assert NEWCOMER_ID not in fake.guilds[GUILD_ID].members
    assert bot.get_guild(GUILD_ID).get_member(NEWCOMER_ID) is None  # type: ignore[union-attr]


async def test_gateway_resume_and_reidentify(fake: FakeDiscord, bot: commands.Bot) -> None:
    await fake.drop_gateway()
    await fake.wait_resumed()
    assert fake.ready_count == 1
    handle = await fake.slash(GUILD_ID, MEMBER_ID, "ping")
    assert (await handle.response())["type"] == 5

    ready_again = asyncio.ensure_future(bot.wait_for("ready"))
    await fake.drop_gateway(resumable=False)
    await fake.wait_ready(count=2)  # RESUME refused with op 9 -> fresh IDENTIFY
    await asyncio.wait_for(ready_again, 5)
    assert [p["op"] for p in fake.gateway_received].count(6) == 2
    handle = await fake.slash(GUILD_ID, MEMBER_ID, "grant", [{"name": "role", "value": ROLE_ID}])
    assert (await handle.final())["content"] == "granted Supporter"


async def test_bad_token_raises_login_failure(fake: FakeDiscord) -> None:
    bot = make_bot()
    try:
        with pytest.raises(discord.LoginFailure):
            await bot.start("not-the-token")
    finally:
        await bot.close()
    assert fake.requests[-1].status == 401
    assert fake.requests[-1].response == {"message": "401: Unauthorized", "code": 0}


async def test_disallowed_privileged_intents(fake: FakeDiscord) -> None:
    fake.intents_allowed = False
    bot = make_bot()
    try:
        with pytest.raises(discord.PrivilegedIntentsRequired):
            await asyncio.wait_for(bot.start(fake.token), 5)
    finally:
        await bot.close()
    assert fake.ready_count == 0
