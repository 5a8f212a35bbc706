"""/redeem: a member proves a purchase with a download key or download URL."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from cogs.checks import is_admin
from cogs.replies import redeem_embed

if TYPE_CHECKING:
    from bot.bot import ItchRoleBot


class Redeem(commands.Cog):
    def __init__(self, bot: ItchRoleBot) -> None:
        self.bot = bot

    @app_commands.command(name="redeem")
    @app_commands.guild_only()
    @app_commands.describe(key="Your itch.io download key, or the whole download URL")
    async def redeem(self, interaction: discord.Interaction, key: str) -> None:
        """Redeem your itch.io download key to get the game's buyer role."""
        async with self.bot.busy():
            await interaction.response.defer(ephemeral=True, thinking=True)
            result = await self.bot.service.redeem(
                interaction.guild_id,
                interaction.user.id,
                key,
                cooldown_exempt=is_admin(interaction),
            )
            await interaction.edit_original_response(embed=redeem_embed(result))


async def setup(bot: ItchRoleBot) -> None:
    await bot.add_cog(Redeem(bot))
