"""/link and /unlink: a member proves their itch.io account with OAuth instead of a key."""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.linking import LinkOutcome, LinkResult
from bot.oauth import (
    OOB_REDIRECT_URI,
    LinkState,
    authorize_url,
    parse_token,
)
from cogs.replies import link_embed, link_not_set_up_embed, link_start_embed, unlink_embed

if TYPE_CHECKING:
    from bot.bot import ItchRoleBot

PASTE_BUTTON_ID = "link:paste-token"


class TokenModal(discord.ui.Modal, title="Link your itch.io account"):
    token: discord.ui.TextInput = discord.ui.TextInput(
        label="The token itch.io showed you",
        custom_id="token",
        placeholder="Paste it here",
        min_length=1,
        max_length=1000,  # room for a whole pasted URL
    )

    def __init__(self, cog: Link) -> None:
        # A custom id of its own: discord.py keys open modals by custom id, and two members'
        # tokens must never meet in one modal object.
        super().__init__(custom_id=f"link:token:{secrets.token_hex(8)}", timeout=600)
        self.cog = cog

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self.cog.finish_out_of_band(interaction, self.token.value)


class PasteTokenView(discord.ui.View):
    """The out-of-band way: log in on itch.io (link button), then paste the token (modal)."""

    def __init__(self, cog: Link, login_url: str | None = None) -> None:
        super().__init__(timeout=None)
        self.cog = cog
        if login_url:
            self.add_item(discord.ui.Button(label="1. Log in with itch.io", url=login_url))
        paste: discord.ui.Button = discord.ui.Button(
            label="2. Paste the token",
            style=discord.ButtonStyle.primary,
            custom_id=PASTE_BUTTON_ID,
        )
        paste.callback = self._paste
        self.add_item(paste)

    async def _paste(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(TokenModal(self.cog))


class Link(commands.Cog):
    def __init__(self, bot: ItchRoleBot) -> None:
        self.bot = bot
        # /link answers waiting for their member to come back from itch.io, by state nonce.
        # Memory only: an interaction token is a credential (and lives 15 minutes anyway).
        self._waiting: dict[str, tuple[discord.Interaction, int]] = {}

    async def cog_load(self) -> None:
        if self.bot.oauth is not None:
            self.bot.oauth.on_result = self._tell_member
        # The paste button keeps working after a restart.
        self.bot.add_view(PasteTokenView(self))

    async def cog_unload(self) -> None:
        if self.bot.oauth is not None and self.bot.oauth.on_result == self._tell_member:
            self.bot.oauth.on_result = None

    @app_commands.command(name="link")
    @app_commands.guild_only()
    async def link(self, interaction: discord.Interaction) -> None:
        """Link your itch.io account to get the buyer role of every game it owns."""
        await self.start(interaction)

    async def start(self, interaction: discord.Interaction) -> None:
        """The answer to /link (and to the panel's link button): where to log in."""
        client_id = self.bot.settings.itch_oauth_client_id
        if not client_id:
            await interaction.response.send_message(embed=link_not_set_up_embed(), ephemeral=True)
            return
        current = await self.bot.links.linked_account(interaction.guild_id, interaction.user.id)
        if self.bot.oauth is not None:
            url, state = self.bot.oauth.authorize(interaction.guild_id, interaction.user.id)
            view = discord.ui.View()
            view.add_item(discord.ui.Button(label="Log in with itch.io", url=url))
            await interaction.response.send_message(
                embed=link_start_embed(current, out_of_band=False), view=view, ephemeral=True
            )
            self._remember(state, interaction)
        else:
            url = authorize_url(client_id, OOB_REDIRECT_URI)
            await interaction.response.send_message(
                embed=link_start_embed(current, out_of_band=True),
                view=PasteTokenView(self, url),
                ephemeral=True,
            )

    @app_commands.command(name="unlink")
    @app_commands.guild_only()
    async def unlink(self, interaction: discord.Interaction) -> None:
        """Unlink your itch.io account (roles that a redeemed key gives stay)."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.bot.busy():
            result = await self.bot.links.unlink(interaction.guild_id, interaction.user.id)
            await interaction.edit_original_response(embed=unlink_embed(result))

    async def finish_out_of_band(self, interaction: discord.Interaction, pasted: str) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        token = parse_token(pasted)
        async with self.bot.busy():
            if token is None:
                result = LinkResult(LinkOutcome.TOKEN_REFUSED)
            else:
                result = await self.bot.links.link(interaction.guild_id, interaction.user.id, token)
            await interaction.edit_original_response(embed=link_embed(result))

    def _remember(self, state: LinkState, interaction: discord.Interaction) -> None:
        now = time.time()
        for nonce, (_, expires_at) in list(self._waiting.items()):
            if expires_at <= now:
                del self._waiting[nonce]
        self._waiting[state.nonce] = (interaction, state.expires_at)

    async def _tell_member(self, state: LinkState, result: LinkResult) -> None:
        """The web page finished: show the result in the member's /link answer too."""
        if result.outcome is LinkOutcome.UNAVAILABLE:
            # The same state may be tried again: keep the login button and the entry.
            waiting = self._waiting.get(state.nonce)
            if waiting is not None:
                await waiting[0].edit_original_response(embed=link_embed(result))
            return
        waiting = self._waiting.pop(state.nonce, None)
        if waiting is not None:
            await waiting[0].edit_original_response(embed=link_embed(result), view=None)


async def setup(bot: ItchRoleBot) -> None:
    await bot.add_cog(Link(bot))
