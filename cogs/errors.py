"""The one central handler that turns app command errors into replies."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import BotError, ItchUnavailable, MalformedKey
from cogs.checks import NotAdmin
from cogs.replies import error_embed

if TYPE_CHECKING:
    from bot.bot import ItchRoleBot

log = logging.getLogger(__name__)


def _name(interaction: discord.Interaction) -> str:
    return interaction.command.qualified_name if interaction.command else "?"


class Errors(commands.Cog):
    def __init__(self, bot: ItchRoleBot) -> None:
        self.bot = bot
        self._previous = bot.tree.on_error

    async def cog_load(self) -> None:
        self.bot.tree.on_error = self.on_app_command_error

    async def cog_unload(self) -> None:
        self.bot.tree.on_error = self._previous

    async def on_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        original = getattr(error, "original", error)
        if isinstance(error, NotAdmin):
            text = (
                "This command is for server admins: it needs the **Manage Server** permission. "
                "Ask a server admin if you need it done."
            )
        elif isinstance(error, app_commands.NoPrivateMessage):
            text = "This command works inside a server, not in direct messages."
        elif isinstance(original, MalformedKey):
            text = (
                "That doesn't look like an itch.io download key or download URL. Copy the key "
                "from the end of the download page's URL (after `/download/`) and try again."
            )
        elif isinstance(original, ItchUnavailable):
            text = (
                "itch.io is not answering right now. Nothing changed: try again in a few minutes."
            )
        elif isinstance(original, BotError):
            log.warning("Command %s failed: %s", _name(interaction), type(original).__name__)
            text = "That could not be done. Nothing was changed; please try again."
        else:
            log.error(
                "Unexpected error in command %s",
                _name(interaction),
                exc_info=(type(original), original, original.__traceback__),
            )
            text = (
                "Something went wrong on our side. Nothing was changed; admins can check the logs."
            )
        embed = error_embed(text)
        try:
            if interaction.response.is_done():
                await interaction.followup.send(embed=embed, ephemeral=True)
            else:
                await interaction.response.send_message(embed=embed, ephemeral=True)
        except discord.HTTPException:
            log.warning("Could not send the error reply for %s", _name(interaction))


async def setup(bot: ItchRoleBot) -> None:
    await bot.add_cog(Errors(bot))
