"""Every reply a member or admin sees, written for a person, in one place."""

from __future__ import annotations

from datetime import datetime

import discord

from bot.service import GameAddOutcome, GameAddResult, Outcome, RedeemResult, RevokeResult
from bot.store import GameRole, Redemption

OK = discord.Colour.green()
WARN = discord.Colour.orange()
BAD = discord.Colour.red()
INFO = discord.Colour.blurple()


def ts(dt: datetime, style: str = "f") -> str:
    return discord.utils.format_dt(dt, style=style)


def game_name(game: GameRole | None, game_id: int | None = None) -> str:
    if game is None:
        return f"game {game_id}" if game_id is not None else "this game"
    return f"**{game.game_title}**" if game.game_title else f"game {game.game_id}"


def error_embed(text: str) -> discord.Embed:
    return discord.Embed(title="That didn't work", description=text, colour=BAD)


def redeem_embed(result: RedeemResult) -> discord.Embed:
    game = game_name(result.game)
    role = f"<@&{result.game.role_id}>" if result.game else "the buyer role"
    match result.outcome:
        case Outcome.REDEEMED:
            return discord.Embed(
                title="Key redeemed",
                description=f"Thanks for buying {game}! You now have the {role} role.",
                colour=OK,
            )
        case Outcome.ALREADY_REDEEMED:
            return discord.Embed(
                title="Already redeemed",
                description=f"This key is already linked to you for {game}. "
                f"Your {role} role is in place.",
                colour=OK,
            )
        case Outcome.ROLE_FAILED:
            return discord.Embed(
                title="Key recorded, role pending",
                description=f"Your key for {game} is valid and saved, but I couldn't give you the "
                f"{role} role. Please tell the server admins: they need to move my role above "
                "the buyer role (or give me Manage Roles). You'll get it as soon as that's fixed.",
                colour=WARN,
            )
        case Outcome.KEY_TAKEN:
            return discord.Embed(
                title="Key already used",
                description="This key has already been redeemed by another member of this "
                "server. If it is yours, contact the server admins.",
                colour=BAD,
            )
        case Outcome.INVALID_KEY:
            return discord.Embed(
                title="Key not recognised",
                description="itch.io doesn't know this key for any game of this server. Check "
                "that you copied the whole key (the part after `/download/` in your download "
                "URL), or paste the whole download URL.",
                colour=BAD,
            )
        case Outcome.MALFORMED:
            return discord.Embed(
                title="That isn't a download key",
                description="Paste the key from your itch.io download URL (letters and numbers, "
                "no spaces) or the whole URL, like "
                "`https://dev.itch.io/game/download/AbC123…`.",
                colour=BAD,
            )
        case Outcome.UNAVAILABLE:
            return discord.Embed(
                title="itch.io is unavailable",
                description="itch.io is not answering right now, so nothing was recorded. "
                "Please try again in a few minutes.",
                colour=WARN,
            )
        case Outcome.MISCONFIGURED:
            return discord.Embed(
                title="The server's setup needs a fix",
                description="I couldn't check your key because of a problem with this server's "
                "itch.io settings. Nothing was recorded; please tell the server admins.",
                colour=WARN,
            )
        case Outcome.NO_GAMES:
            return discord.Embed(
                title="No games set up yet",
                description="This server has no itch.io games linked to roles yet. "
                "Please ask the server admins.",
                colour=WARN,
            )
        case Outcome.COOLDOWN:
            return discord.Embed(
                title="Slow down a little",
                description="Too many attempts failed in the last 10 minutes. Please wait a few "
                "minutes, check your key, and try again.",
                colour=WARN,
            )
    raise AssertionError(result.outcome)  # every outcome has its message


def game_add_embed(result: GameAddResult, game_id: int, role: discord.Role) -> discord.Embed:
    match result.outcome:
        case GameAddOutcome.ROLE_EVERYONE:
            return error_embed("@everyone can't be a buyer role. Pick or create a role for buyers.")
        case GameAddOutcome.ROLE_MANAGED:
            return error_embed(
                f"{role.mention} is managed by an integration or bot and can't be given by hand. "
                "Pick another role."
            )
        case GameAddOutcome.ROLE_TOO_HIGH:
            return error_embed(
                f"{role.mention} is at or above my highest role, so I couldn't give it. Move my "
                "role above it in Server Settings → Roles, then try again."
            )
    title = f"**{result.game_title}** ({game_id})" if result.game_title else f"Game {game_id}"
    verb = "now gives" if result.outcome is GameAddOutcome.ADDED else "now gives (updated)"
    embed = discord.Embed(
        title="Game linked", description=f"{title} {verb} {role.mention}.", colour=OK
    )
    if result.warning:
        embed.colour = WARN
        embed.add_field(name="Warning", value=result.warning, inline=False)
    return embed


def game_list_embed(games: list[GameRole]) -> discord.Embed:
    if not games:
        return discord.Embed(
            title="No games linked",
            description="Link one with `/keys game add game_id:<id> role:<role>`.",
            colour=INFO,
        )
    lines = [f"{game_name(g)} (`{g.game_id}`) → <@&{g.role_id}>" for g in games[:50]]
    return discord.Embed(title="Linked games", description="\n".join(lines), colour=INFO)


def lookup_embed(found: list[Redemption], games: dict[int, GameRole]) -> discord.Embed:
    if not found:
        return discord.Embed(title="No redemptions found", colour=INFO)
    embed = discord.Embed(title=f"{len(found)} redemption(s)", colour=INFO)
    for r in found[:25]:
        owner = (
            f"{r.itch_username} ({r.itch_user_id})"
            if r.itch_username
            else (str(r.itch_user_id) if r.itch_user_id else "unclaimed key")
        )
        pending = "" if r.role_applied else " (role pending)"
        embed.add_field(
            name=f"{game_name(games.get(r.game_id), r.game_id)}"[:256],
            value=(
                f"Member <@{r.member_id}> · role <@&{r.role_id}>{pending}\n"
                f"{ts(r.created_at)} · itch.io: {owner} · key `{r.fingerprint}`"
            ),
            inline=False,
        )
    if len(found) > 25:
        embed.set_footer(text=f"Showing 25 of {len(found)}.")
    return embed


def revoke_embed(member: discord.abc.User, result: RevokeResult) -> discord.Embed:
    if not result.revoked:
        return discord.Embed(
            title="Nothing to revoke",
            description=f"{member.mention} has no redemptions matching that.",
            colour=INFO,
        )
    text = f"Removed {len(result.revoked)} redemption(s) of {member.mention}."
    if result.roles_removed:
        text += " Roles taken away: " + ", ".join(f"<@&{r}>" for r in result.roles_removed) + "."
    embed = discord.Embed(title="Revoked", description=text, colour=OK)
    if result.roles_failed:
        embed.colour = WARN
        embed.add_field(
            name="Roles I couldn't remove",
            value=", ".join(f"<@&{r}>" for r in result.roles_failed)
            + " — check that my role is above them.",
        )
    return embed
