"""After a game's mapping changes: offer to bring the buyers' roles in line, with buttons."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord

from cogs.admin_views import OwnedView
from cogs.replies import mapping_done_embed

if TYPE_CHECKING:
    from bot.bot import ItchRoleBot

MAPPING_TIMEOUT = 300.0


class GrantToBuyers(OwnedView):
    """`/keys game add` on a game with buyers: give them the (new) role now?"""

    def __init__(
        self, bot: ItchRoleBot, origin: discord.Interaction, game_id: int, buyers: int
    ) -> None:
        super().__init__(origin, MAPPING_TIMEOUT)
        self.bot = bot
        self.game_id = game_id
        self.apply.label = f"Give the role to {buyers} buyer(s)"

    @discord.ui.button(style=discord.ButtonStyle.success)
    async def apply(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        await interaction.response.defer()
        self.stop()
        report = await self.bot.service.grant_game_role_to_buyers(
            interaction.guild_id, self.game_id, interaction.user.id
        )
        await interaction.edit_original_response(
            embed=mapping_done_embed(report, granted=True), view=None
        )

    @discord.ui.button(label="Not now", style=discord.ButtonStyle.secondary)
    async def skip(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        self.stop()
        await interaction.response.edit_message(view=None)


class RemoveFromBuyers(OwnedView):
    """`/keys game remove` on a game with buyers: take its role from them too?"""

    def __init__(
        self, bot: ItchRoleBot, origin: discord.Interaction, game_id: int, buyers: int
    ) -> None:
        super().__init__(origin, MAPPING_TIMEOUT)
        self.bot = bot
        self.game_id = game_id
        self.apply.label = f"Remove the role from {buyers} buyer(s)"

    @discord.ui.button(style=discord.ButtonStyle.danger)
    async def apply(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        await interaction.response.defer()
        self.stop()
        report = await self.bot.service.remove_game_role_from_buyers(
            interaction.guild_id, self.game_id, interaction.user.id
        )
        await interaction.edit_original_response(
            embed=mapping_done_embed(report, granted=False), view=None
        )

    @discord.ui.button(label="Keep their roles", style=discord.ButtonStyle.secondary)
    async def skip(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        self.stop()
        await interaction.response.edit_message(view=None)
