"""The redeem panel: a message with buttons, for members who don't use slash commands.

`/keys panel` (cogs/keys.py) posts it. "Redeem your key" opens a dialog with one field; what the
member gets back is exactly what `/redeem` answers, only to them.

Everything is recognised by fixed custom ids, never by objects kept in memory: the buttons are
a persistent view registered when this cog loads, and the dialog's submission is handled here
from its custom id. So a panel posted by an earlier run keeps working, a dialog opened just
before a restart still gets its answer, and members typing at once share nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from bot.keyparse import MAX_INPUT_LENGTH
from cogs.checks import is_admin
from cogs.replies import (
    error_embed,
    link_not_set_up_embed,
    panel_embed,
    panel_posted_embed,
    panel_refused_embed,
    redeem_embed,
)

if TYPE_CHECKING:
    from bot.bot import ItchRoleBot

log = logging.getLogger(__name__)

REDEEM_BUTTON_ID = "itchbot:redeem"
REDEEM_MODAL_ID = "itchbot:redeem-modal"
LINK_BUTTON_ID = "itchbot:link"
KEY_INPUT_ID = "key"


class PanelView(discord.ui.View):
    """The panel's buttons. Persistent: no timeout and a fixed custom id on every button.

    A button reaches the bot through `interaction.client`, so another button is one more
    decorated method here (and one more fixed custom id)."""

    def __init__(self, *, with_link: bool = True) -> None:
        super().__init__(timeout=None)
        if not with_link:
            self.remove_item(self.link)

    @discord.ui.button(
        label="Redeem your key", style=discord.ButtonStyle.success, custom_id=REDEEM_BUTTON_ID
    )
    async def redeem(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.send_modal(RedeemModal())

    @discord.ui.button(
        label="Link itch.io account", style=discord.ButtonStyle.primary, custom_id=LINK_BUTTON_ID
    )
    async def link(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        # Exactly what /link answers; the /link cog owns that flow.
        linking = interaction.client.get_cog("Link")
        if linking is None:
            await interaction.response.send_message(embed=link_not_set_up_embed(), ephemeral=True)
            return
        await linking.start(interaction)


class RedeemModal(discord.ui.Modal):
    """The dialog behind "Redeem your key". It only shows the field: Panel.on_interaction
    answers its submission, by custom id (see the module docstring). discord.py still keeps
    the last one shown under that id and calls its on_submit, which does nothing on purpose."""

    def __init__(self) -> None:
        super().__init__(title="Redeem your itch.io key", custom_id=REDEEM_MODAL_ID)
        self.add_item(
            discord.ui.Label(
                text="Download key or download URL",
                description="The key is the last part of your itch.io download URL.",
                component=discord.ui.TextInput(
                    custom_id=KEY_INPUT_ID,
                    placeholder="https://dev.itch.io/game/download/AbC123…",
                    min_length=1,
                    max_length=MAX_INPUT_LENGTH,
                ),
            )
        )


def submitted_value(components: list[dict[str, Any]], custom_id: str) -> str | None:
    """The value of one text input in a modal submission (in action rows or labels)."""
    for component in components:
        children = component.get("components") or []
        if isinstance(component.get("component"), dict):
            children = [component["component"]]
        if component.get("custom_id") == custom_id:
            return component.get("value")
        found = submitted_value(children, custom_id)
        if found is not None:
            return found
    return None


async def post_panel(channel: discord.TextChannel, *, with_link: bool) -> discord.Embed:
    """Post the panel in a channel; the reply for the admin who asked. The link button is
    there when itch.io account linking is set up (ITCH_OAUTH_CLIENT_ID)."""
    try:
        message = await channel.send(
            embed=panel_embed(with_link=with_link), view=PanelView(with_link=with_link)
        )
    except discord.Forbidden:
        return panel_refused_embed(channel.id)
    return panel_posted_embed(channel.id, message.jump_url)


class Panel(commands.Cog):
    def __init__(self, bot: ItchRoleBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        # Runs inside setup_hook: the buttons of every panel ever posted are live from start-up.
        self.bot.add_view(PanelView())

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data: dict[str, Any] = interaction.data or {}  # type: ignore[assignment]
        if data.get("custom_id") != REDEEM_MODAL_ID:
            return
        text = submitted_value(data.get("components") or [], KEY_INPUT_ID) or ""
        async with self.bot.busy():
            await interaction.response.defer(ephemeral=True, thinking=True)
            try:
                result = await self.bot.service.redeem(
                    interaction.guild_id,
                    interaction.user.id,
                    text,
                    cooldown_exempt=is_admin(interaction),
                )
                embed = redeem_embed(result)
            except Exception:
                log.exception("Redeeming from the panel failed")
                embed = error_embed(
                    "Something went wrong on our side. Nothing was changed; admins can check "
                    "the logs."
                )
            await interaction.edit_original_response(embed=embed)


async def setup(bot: ItchRoleBot) -> None:
    await bot.add_cog(Panel(bot))
