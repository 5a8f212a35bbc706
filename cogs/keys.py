"""/keys: the admins' commands. Default permission Manage Server, and checked again at run time."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.admin import AUDIT_OUTCOME_FILTERS, EXPORT_MAX_BYTES
from bot.recheck import RecheckReport
from bot.service import GameAddOutcome, RevokeResult, RoleCandidate
from cogs.admin_views import AuditPages, RevokeConfirm
from cogs.checks import admin_only
from cogs.mapping_views import grant_to_buyers, remove_from_buyers
from cogs.panel import post_panel
from cogs.replies import (
    AUDIT_OUTCOME_LABELS,
    export_embed,
    game_add_embed,
    game_list_embed,
    game_remove_embed,
    log_channel_hello_embed,
    log_channel_off_embed,
    log_channel_refused_embed,
    log_channel_set_embed,
    lookup_embed,
    recheck_embed,
    revoke_embed,
    stats_embed,
)

if TYPE_CHECKING:
    from bot.bot import ItchRoleBot

log = logging.getLogger(__name__)

GAME_ID = app_commands.Range[int, 1, 2**53]
LINKED = (GameAddOutcome.ADDED, GameAddOutcome.UPDATED)
# A long re-check edits its reply with progress, but not more often than this (seconds).
PROGRESS_EVERY = 3.0


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class Keys(commands.GroupCog, group_name="keys"):
    """Manage itch.io games, roles and redemptions."""

    game = app_commands.Group(name="game", description="Link itch.io games to buyer roles.")

    # How long buttons on replies keep working (seconds).
    pages_timeout = 600.0
    confirm_timeout = 120.0

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
        embed = game_add_embed(result, game_id, role)
        buyers = await self.bot.service.buyers_of_game(interaction.guild_id, game_id)
        if result.outcome not in LINKED or not buyers:
            await interaction.edit_original_response(embed=embed)
            return
        embed.add_field(
            name="Existing buyers",
            value=f"{len(buyers)} member(s) already redeemed this game. "
            f"Give them {role.mention} now?",
            inline=False,
        )
        view = grant_to_buyers(self.bot, interaction, game_id, len(buyers))
        await interaction.edit_original_response(embed=embed, view=view)

    @game.command(name="remove")
    @admin_only
    @app_commands.describe(game_id="The itch.io game id to unlink")
    async def game_remove(self, interaction: discord.Interaction, game_id: GAME_ID) -> None:
        """Stop giving a role for this itch.io game (existing roles stay)."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        game = await self.bot.store.game_role(interaction.guild_id, game_id)
        removed = await self.bot.service.remove_game(
            interaction.guild_id, game_id, interaction.user.id
        )
        buyers = await self.bot.service.buyers_of_game(interaction.guild_id, game_id)
        embed = game_remove_embed(game_id, removed, len(buyers))
        if not removed or not buyers or game is None:
            await interaction.edit_original_response(embed=embed)
            return
        view = remove_from_buyers(self.bot, interaction, game_id, len(buyers))
        await interaction.edit_original_response(embed=embed, view=view)

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
        """Delete a member's redemptions and take away the roles they gave (asks first)."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        plan = await self.bot.service.revoke_plan(interaction.guild_id, member.id, game_id)
        if not plan.redemptions:
            await interaction.edit_original_response(embed=revoke_embed(member, RevokeResult()))
            return
        games = await self.bot.admin.games(interaction.guild_id)
        view = RevokeConfirm(
            self.bot, interaction, member, game_id, plan, games, timeout=self.confirm_timeout
        )
        await interaction.edit_original_response(embed=view.embed(), view=view)

    @app_commands.command(name="recheck")
    @admin_only
    @app_commands.describe(member="Only this member's redemptions (all of the server's otherwise)")
    async def recheck(
        self, interaction: discord.Interaction, member: discord.Member | None = None
    ) -> None:
        """Ask itch.io again about recorded redemptions now; refunded keys lose their role."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        last_edit = 0.0

        async def progress(report: RecheckReport) -> None:
            nonlocal last_edit
            now = time.monotonic()
            if now - last_edit < PROGRESS_EVERY:
                return
            last_edit = now
            await interaction.edit_original_response(embed=recheck_embed(report, done=False))

        report = await self.bot.rechecker.recheck_now(
            interaction.guild_id, member.id if member else None, progress
        )
        await interaction.edit_original_response(embed=recheck_embed(report, done=True))

    @app_commands.command(name="panel")
    @admin_only
    @app_commands.describe(channel="The channel to post the panel in")
    async def panel(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        """Post a message with a "Redeem your key" button, for members who don't type commands."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        with_link = bool(self.bot.settings.itch_oauth_client_id)
        await interaction.edit_original_response(
            embed=await post_panel(channel, with_link=with_link)
        )

    # -- admins' views: audit trail, statistics, export, log channel --------------------------

    @app_commands.command(name="audit")
    @admin_only
    @app_commands.describe(
        member="Only this member's attempts",
        game_id="Only this itch.io game",
        outcome="Only this outcome or admin action",
        limit="At most this many entries, newest first (all by default)",
    )
    @app_commands.choices(
        outcome=[
            app_commands.Choice(name=AUDIT_OUTCOME_LABELS[key][:100], value=key)
            for key in AUDIT_OUTCOME_FILTERS
        ]
    )
    async def audit(
        self,
        interaction: discord.Interaction,
        member: discord.User | None = None,
        game_id: GAME_ID | None = None,
        outcome: app_commands.Choice[str] | None = None,
        limit: app_commands.Range[int, 1] | None = None,
    ) -> None:
        """Every redemption attempt and admin action, newest first, a page at a time."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        admin = self.bot.admin
        wanted = admin.audit_filter(
            member.id if member else None, game_id, outcome.value if outcome else None
        )
        total = await admin.audit_total(interaction.guild_id, wanted)
        filters = [
            f"member {member.display_name}" if member else "",
            f"game {game_id}" if game_id else "",
            outcome.name if outcome else "",
            f"newest {limit}" if limit else "",
        ]
        pages = AuditPages(
            self.bot,
            interaction,
            wanted,
            total=min(total, limit) if limit else total,
            games=await admin.games(interaction.guild_id),
            filters=" · ".join(f for f in filters if f),
            timeout=self.pages_timeout,
        )
        embed = await pages.render()
        if pages.pages > 1:
            await interaction.edit_original_response(embed=embed, view=pages)
        else:
            pages.stop()
            await interaction.edit_original_response(embed=embed)

    @app_commands.command(name="stats")
    @admin_only
    async def stats(self, interaction: discord.Interaction) -> None:
        """Buyers, redemptions and refusals per game; roles without a record."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        holders = await self._buyer_role_holders(interaction.guild)
        stats = await self.bot.admin.stats(interaction.guild_id, holders)
        await interaction.edit_original_response(embed=stats_embed(stats))

    async def _buyer_role_holders(self, guild: discord.Guild | None) -> dict[int, set[int]] | None:
        """Members (not bots) holding a buyer role, with those roles; None if not listable."""
        if guild is None:
            return None
        buyer_roles = {g.role_id for g in (await self.bot.admin.games(guild.id)).values()}
        if not buyer_roles:
            return {}
        members = await self.bot.list_members(guild, fresh=True)
        if members is None:
            log.warning("guild=%s: could not list members for stats", guild.id)
            return None
        holders = {}
        for m in members:
            held = {r.id for r in m.roles} & buyer_roles
            if held and not m.bot:
                holders[m.id] = held
        return holders

    @app_commands.command(name="export")
    @admin_only
    @app_commands.describe(audit="Export the audit trail (every attempt and admin action) instead")
    async def export(self, interaction: discord.Interaction, audit: bool = False) -> None:
        """A CSV file of every redemption (or of the audit trail) of this server."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        max_bytes = min(EXPORT_MAX_BYTES, interaction.filesize_limit or EXPORT_MAX_BYTES)
        make = self.bot.admin.export_audit if audit else self.bot.admin.export_redemptions
        with await make(interaction.guild_id, max_bytes=max_bytes) as export:
            first, *rest = export.files
            await interaction.followup.send(
                embed=export_embed(export, max_bytes),
                file=discord.File(first.data, filename=first.filename),
                ephemeral=True,
            )
            for part in rest:
                await interaction.followup.send(
                    file=discord.File(part.data, filename=part.filename), ephemeral=True
                )

    @app_commands.command(name="log-channel")
    @admin_only
    @app_commands.describe(channel="Where to post; leave it out to turn the log channel off")
    async def log_channel(
        self, interaction: discord.Interaction, channel: discord.TextChannel | None = None
    ) -> None:
        """Post redemptions, suspicious refusals and revocations to a channel."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild_id, actor_id = interaction.guild_id, interaction.user.id
        if channel is None:
            was = await self.bot.admin.log_channel(guild_id)
            if was is not None:
                await self.bot.admin.set_log_channel(guild_id, None, actor_id)
            await interaction.edit_original_response(embed=log_channel_off_embed(was is not None))
            return
        missing = _missing_post_permissions(interaction.guild, channel)
        posted = False
        if not missing:  # permissions look right: a first post proves it
            try:
                await channel.send(embed=log_channel_hello_embed(actor_id))
                posted = True
            except discord.HTTPException as exc:
                log.info("guild=%s: test post to %s refused: %s", guild_id, channel.id, exc)
        if not posted:
            await interaction.edit_original_response(
                embed=log_channel_refused_embed(channel.id, missing)
            )
            return
        await self.bot.admin.set_log_channel(guild_id, channel.id, actor_id)
        await interaction.edit_original_response(embed=log_channel_set_embed(channel.id))


def _missing_post_permissions(
    guild: discord.Guild | None, channel: discord.TextChannel
) -> list[str]:
    """What the bot lacks to post embeds in `channel` (everything, if not of this guild)."""
    needed = {
        "view_channel": "View Channel",
        "send_messages": "Send Messages",
        "embed_links": "Embed Links",
    }
    if guild is None or channel.guild.id != guild.id:
        return list(needed.values())
    perms = channel.permissions_for(guild.me)
    missing = [label for name, label in needed.items() if not getattr(perms, name)]
    if "Send Messages" in missing and "Embed Links" in missing:
        missing.remove("Embed Links")  # Discord drops it with Send Messages; one fix, not two
    return missing


async def setup(bot: ItchRoleBot) -> None:
    await bot.add_cog(Keys(bot))
