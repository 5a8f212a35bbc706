"""After a game's mapping changes: offer to bring the buyers' roles in line, with buttons."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import discord

from bot.service import ReconcileReport
from cogs.admin_views import OwnedView
from cogs.replies import mapping_done_embed

if TYPE_CHECKING:
    from bot.bot import ItchRoleBot

MAPPING_TIMEOUT = 300.0

Apply = Callable[[int, int, int], Awaitable[ReconcileReport]]


class BuyersRoleChoice(OwnedView):
    """Two buttons: apply a role change to the game's buyers now, or leave them be."""

    def __init__(
        self,
        origin: discord.Interaction,
        game_id: int,
        apply: Apply,
        *,
        granted: bool,
        apply_label: str,
        skip_label: str,
    ) -> None:
        super().__init__(origin, MAPPING_TIMEOUT)
        self.game_id = game_id
        self._apply = apply
        self.granted = granted
        self.apply.label = apply_label
        self.apply.style = discord.ButtonStyle.success if granted else discord.ButtonStyle.danger
        self.skip.label = skip_label

    @discord.ui.button()
    async def apply(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        await interaction.response.defer()
        self.stop()
        report = await self._apply(interaction.guild_id, self.game_id, interaction.user.id)
        await interaction.edit_original_response(
            embed=mapping_done_embed(report, granted=self.granted), view=None
        )

    @discord.ui.button(style=discord.ButtonStyle.secondary)
    async def skip(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        self.stop()
        await interaction.response.edit_message(view=None)


def grant_to_buyers(
    bot: ItchRoleBot, origin: discord.Interaction, game_id: int, buyers: int
) -> BuyersRoleChoice:
    """`/keys game add` on a game with buyers: give them the (new) role now?"""
    return BuyersRoleChoice(
        origin,
        game_id,
        bot.service.grant_game_role_to_buyers,
        granted=True,
        apply_label=f"Give the role to {buyers} buyer(s)",
        skip_label="Not now",
    )


def remove_from_buyers(
    bot: ItchRoleBot, origin: discord.Interaction, game_id: int, buyers: int
) -> BuyersRoleChoice:
    """`/keys game remove` on a game with buyers: take its role from them too?"""
    return BuyersRoleChoice(
        origin,
        game_id,
        bot.service.remove_game_role_from_buyers,
        granted=False,
        apply_label=f"Remove the role from {buyers} buyer(s)",
        skip_label="Keep their roles",
    )
