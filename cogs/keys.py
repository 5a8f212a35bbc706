"""/keys: the admins' commands. Default permission Manage Server, and checked again at run time."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.service import RoleCandidate
from cogs.checks import admin_only
from cogs.replies import game_add_embed, game_list_embed, lookup_embed, revoke_embed

if TYPE_CHECKING:
    from bot.bot import ItchRoleBot

GAME_ID = app_commands.Range[int, 1, 2**53]


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class Keys(commands.GroupCog, group_name="keys"):
    """Manage itch.io games, roles and redemptions."""

    game = app_commands.Group(name="game", description="Link itch.io games to buyer roles.")

    def __init__(self, bot: ItchRoleBot) -> None:
        self.bot = bot
        super().__init__()

    @game.command(name="add")
    @admin_only
    @app_commands.describe(game_id="The itch.io game id", role="The role buyers of it get")
    async def game_add(
        self, interaction: discord.Interaction, game_id: GAME_ID, role: discord.Role
    ) -> None:
        """Give a role to everyone who redeems a key of this itch.io game."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild = interaction.guild
        me = guild.me if guild else None
        candidate = RoleCandidate(
            id=role.id,
            name=role.name,
            is_default=role.is_default(),
            managed=role.managed,
            position=role.position,
            bot_top_position=me.top_role.position if me else 0,
        )
        result = await self.bot.service.add_game(
            interaction.guild_id, game_id, candidate, interaction.user.id
        )
        await interaction.edit_original_response(embed=game_add_embed(result, game_id, role))

    @game.command(name="remove")
    @admin_only
    @app_commands.describe(game_id="The itch.io game id to unlink")
    async def game_remove(self, interaction: discord.Interaction, game_id: GAME_ID) -> None:
        """Stop giving a role for this itch.io game (existing roles stay)."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        removed = await self.bot.service.remove_game(
            interaction.guild_id, game_id, interaction.user.id
        )
        text = (
            f"Game `{game_id}` is no longer linked. Members keep the roles they already have."
            if removed
            else f"Game `{game_id}` was not linked on this server; nothing changed."
        )
        await interaction.edit_original_response(
            embed=discord.Embed(
                title="Game unlinked" if removed else "Not linked", description=text
            )
        )

    @game.command(name="list")
    @admin_only
    async def game_list(self, interaction: discord.Interaction) -> None:
        """Show which itch.io games give which roles."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        games = await self.bot.service.list_games(interaction.guild_id)
        await interaction.edit_original_response(embed=game_list_embed(games))

    @app_commands.command(name="lookup")
    @admin_only
    @app_commands.describe(member="Show this member's redemptions", key="A download key or URL")
    async def lookup(
        self,
        interaction: discord.Interaction,
        member: discord.Member | None = None,
        key: str | None = None,
    ) -> None:
        """Look up redemptions by member or by key (the latest ones without either)."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        found = await self.bot.service.lookup(
            interaction.guild_id, member_id=member.id if member else None, key_text=key
        )
        games = {g.game_id: g for g in await self.bot.service.list_games(interaction.guild_id)}
        await interaction.edit_original_response(embed=lookup_embed(found, games))

    @app_commands.command(name="revoke")
    @admin_only
    @app_commands.describe(member="Whose redemptions to revoke", game_id="Only this game")
    async def revoke(
        self,
        interaction: discord.Interaction,
        member: discord.Member,
        game_id: GAME_ID | None = None,
    ) -> None:
        """Delete a member's redemptions and take away the roles they gave."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        result = await self.bot.service.revoke(
            interaction.guild_id, member.id, interaction.user.id, game_id
        )
        await interaction.edit_original_response(embed=revoke_embed(member, result))


async def setup(bot: ItchRoleBot) -> None:
    await bot.add_cog(Keys(bot))
