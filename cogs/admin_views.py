"""Buttons on the admins' replies: audit pages and the revoke confirmation.

Only the admin who ran the command may press them (checked again on every press, with the
Manage Server permission), and they stop working after a timeout.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import discord

from bot.service import RevokePlan, RevokeResult
from bot.store import AuditFilter, GameRole
from cogs.checks import is_admin
from cogs.replies import (
    audit_embed,
    error_embed,
    not_yours_embed,
    revoke_confirm_embed,
    revoke_embed,
    revoke_stopped_embed,
)

if TYPE_CHECKING:
    from bot.bot import ItchRoleBot

log = logging.getLogger(__name__)

AUDIT_PAGE_SIZE = 10


class OwnedView(discord.ui.View):
    """Buttons that answer only the admin who ran the command, until `timeout` seconds idle."""

    def __init__(self, origin: discord.Interaction, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.origin = origin  # the command's interaction: its token edits the reply later
        self.owner_id = origin.user.id

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.owner_id:
            await interaction.response.send_message(embed=not_yours_embed(), ephemeral=True)
            return False
        if not is_admin(interaction):
            await interaction.response.send_message(
                embed=error_embed("This needs the **Manage Server** permission."), ephemeral=True
            )
            return False
        return True

    def disable(self) -> None:
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                item.disabled = True

    async def on_timeout(self) -> None:
        self.disable()
        try:
            await self.origin.edit_original_response(**self.expired())
        except discord.HTTPException as exc:  # the reply was dismissed, or the token expired
            log.debug("Could not disable expired buttons: %s", exc)

    def expired(self) -> dict:
        return {"view": self}


class AuditPages(OwnedView):
    """Previous/Next over the audit trail, newest first, a page read from the store per press."""

    def __init__(
        self,
        bot: ItchRoleBot,
        origin: discord.Interaction,
        wanted: AuditFilter,
        *,
        total: int,
        games: dict[int, GameRole],
        filters: str,
        timeout: float,
    ) -> None:
        super().__init__(origin, timeout)
        self.bot = bot
        self.guild_id = origin.guild_id
        self.wanted = wanted
        self.total = total
        self.games = games
        self.filters = filters
        self.pages = max(1, math.ceil(total / AUDIT_PAGE_SIZE))
        self.page = 0
        # Where each page starts (entries with a smaller id): pages stay put as new entries come.
        self.starts: list[int | None] = [None]

    async def render(self) -> discord.Embed:
        size = min(AUDIT_PAGE_SIZE, self.total - self.page * AUDIT_PAGE_SIZE)
        entries = []
        if size > 0:
            entries = await self.bot.admin.audit_page(
                self.guild_id, self.wanted, before_id=self.starts[self.page], size=size
            )
        if entries:
            if self.page == 0 and self.starts[0] is None:
                self.starts[0] = entries[0].id + 1
            if len(self.starts) == self.page + 1:
                self.starts.append(entries[-1].id)
        self.previous_page.disabled = self.page == 0
        self.next_page.disabled = self.page >= self.pages - 1 or len(entries) < size
        return audit_embed(
            entries,
            self.games,
            page=self.page + 1,
            pages=self.pages,
            first=self.page * AUDIT_PAGE_SIZE + 1,
            total=self.total,
            filters=self.filters,
        )

    @discord.ui.button(label="Previous", style=discord.ButtonStyle.secondary)
    async def previous_page(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        self.page = max(0, self.page - 1)
        await interaction.response.edit_message(embed=await self.render(), view=self)

    @discord.ui.button(label="Next", style=discord.ButtonStyle.primary)
    async def next_page(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        self.page = min(self.pages - 1, self.page + 1)
        await interaction.response.edit_message(embed=await self.render(), view=self)


class RevokeConfirm(OwnedView):
    """Names what a revocation will do; acts only when its admin presses Revoke."""

    def __init__(
        self,
        bot: ItchRoleBot,
        origin: discord.Interaction,
        member: discord.abc.User,
        game_id: int | None,
        plan: RevokePlan,
        games: dict[int, GameRole],
        *,
        timeout: float,
    ) -> None:
        super().__init__(origin, timeout)
        self.bot = bot
        self.member = member
        self.game_id = game_id
        self.plan = plan
        self.games = games
        self._answered = False

    def embed(self, *, changed: bool = False) -> discord.Embed:
        return revoke_confirm_embed(
            self.member, self.plan, self.games, expires_in=self.timeout or 0, changed=changed
        )

    def _first_press(self) -> bool:
        # Two quick presses reach us as two interactions: only the first may act.
        if self._answered:
            return False
        self._answered = True
        self.stop()
        return True

    @discord.ui.button(label="Revoke", style=discord.ButtonStyle.danger)
    async def confirm(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        if not self._first_press():
            await interaction.response.defer()
            return
        guild_id = interaction.guild_id
        fresh = await self.bot.service.revoke_plan(guild_id, self.member.id, self.game_id)
        if [r.id for r in fresh.redemptions] != [r.id for r in self.plan.redemptions]:
            if not fresh.redemptions:
                await interaction.response.edit_message(
                    embed=revoke_embed(self.member, RevokeResult()), view=None
                )
                return
            # Act only on what the admin saw: show the new plan and ask again.
            again = RevokeConfirm(
                self.bot,
                self.origin,
                self.member,
                self.game_id,
                fresh,
                self.games,
                timeout=self.timeout or 0,
            )
            await interaction.response.edit_message(embed=again.embed(changed=True), view=again)
            return
        await interaction.response.defer()  # removing roles may take a few round trips
        result = await self.bot.service.revoke(
            guild_id, self.member.id, interaction.user.id, self.game_id
        )
        await interaction.edit_original_response(embed=revoke_embed(self.member, result), view=None)

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        if not self._first_press():
            await interaction.response.defer()
            return
        await interaction.response.edit_message(
            embed=revoke_stopped_embed(expired=False), view=None
        )

    def expired(self) -> dict:
        return {"embed": revoke_stopped_embed(expired=True), "view": self}
