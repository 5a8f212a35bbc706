"""Permission checks for app commands, evaluated at run time on every use."""

from __future__ import annotations

import discord
from discord import app_commands


class NotAdmin(app_commands.CheckFailure):
    """A member without Manage Server used an admin command."""


def is_admin(interaction: discord.Interaction) -> bool:
    perms = interaction.permissions
    return bool(interaction.guild_id) and (perms.manage_guild or perms.administrator)


async def _admin_only(interaction: discord.Interaction) -> bool:
    if not is_admin(interaction):
        raise NotAdmin
    return True


admin_only = app_commands.check(_admin_only)
