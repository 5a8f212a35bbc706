"""Permission checks for app commands, evaluated at run time on every use."""

from __future__ import annotations

import discord
from discord import app_commands


class NotAdmin(app_commands.CheckFailure):
    """A member without Manage Server used an admin command."""


def is_admin(interaction: discord.Interaction) -> bool:
    """Manage Server (or Administrator), as Discord resolved it for this interaction, or as
    the member's roles give it when the payload carried no permissions."""
    if not interaction.guild_id:
        return False
    perms = interaction.permissions
    if perms.manage_guild or perms.administrator:
        return True
    user = interaction.user
    # discord.py keeps the payload's resolved permissions on the member (None when absent);
    # when Discord sent them they are the truth, even if the cached roles say otherwise.
    sent = getattr(user, "_permissions", None)
    if sent is None and isinstance(user, discord.Member) and user.guild.roles:
        held = user.guild_permissions
        return held.manage_guild or held.administrator
    return False


async def _admin_only(interaction: discord.Interaction) -> bool:
    if not is_admin(interaction):
        raise NotAdmin
    return True


admin_only = app_commands.check(_admin_only)
