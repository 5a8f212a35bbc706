"""Every reply a member or admin sees, written for a person, in one place."""

from __future__ import annotations

import re
from datetime import datetime

import discord

from bot.admin import Export, GameStats, GuildStats
from bot.linking import GameCheck, GameStatus, LinkOutcome, LinkResult, UnlinkResult
from bot.recheck import RecheckReport
from bot.service import (
    GameAddOutcome,
    GameAddResult,
    Outcome,
    ReconcileReport,
    RedeemResult,
    RevokePlan,
    RevokeResult,
)
from bot.store import AuditEntry, GameRole, ItchLink, Redemption

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
        return discord.Embed(
            title="No redemptions found",
            description="Nothing on this server matches. Keys are matched exactly: paste the "
            "whole key or download URL, or look the member up instead.",
            colour=INFO,
        )
    embed = discord.Embed(title=f"{len(found)} redemption(s)", colour=INFO)
    for r in found[:25]:
        owner = (
            f"{r.itch_username} ({r.itch_user_id})"
            if r.itch_username
            else (str(r.itch_user_id) if r.itch_user_id else "unclaimed key")
        )
        if not r.active:
            pending = " · **revoked: itch.io no longer accepts it (refund?)**"
        else:
            pending = "" if r.role_applied else " (role pending)"
        name = f"{game_name(games.get(r.game_id), r.game_id)}"[:256]
        how = (
            f"by linked itch.io account {owner[:200]}"
            if r.by_account
            else f"itch.io: {owner[:200]} · key `{r.fingerprint}`"
        )
        value = (
            f"Member <@{r.member_id}> · role <@&{r.role_id}>{pending}\n{ts(r.created_at)} · {how}"
        )
        if len(embed) + len(name) + len(value) > 5800:  # Discord's 6,000 per message
            break
        embed.add_field(name=name, value=value, inline=False)
    if len(embed.fields) < len(found):
        embed.set_footer(text=f"Showing {len(embed.fields)} of {len(found)}.")
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


def recheck_embed(report: RecheckReport, *, done: bool) -> discord.Embed:
    counts = (
        f"Checked **{report.checked}** of {report.total} · still valid **{report.valid}** · "
        f"revoked **{report.revoked}** · failed **{report.failed}**"
    )
    if report.halted:
        return discord.Embed(
            title="Re-check stopped",
            description=f"{counts}\n\nI stopped early and removed nothing more: "
            f"{report.halted}."
            + (f" {report.held} refused key(s) were left alone." if report.held else "")
            + " Check that itch.io is up and that the bot's itch.io API key is valid (whoever "
            "runs the bot can check with `make doctor`), then run `/keys recheck` again.",
            colour=WARN,
        )
    if not done:
        return discord.Embed(title="Re-checking with itch.io…", description=counts, colour=INFO)
    if report.total == 0:
        return discord.Embed(
            title="Nothing to re-check", description="There are no live redemptions.", colour=INFO
        )
    note = ""
    if report.failed:
        note = (
            "\n\nFailed checks changed nothing (itch.io didn't answer clearly); "
            "they are tried again at the next scheduled re-check."
        )
    return discord.Embed(title="Re-check finished", description=counts + note, colour=OK)


# -- admin views: audit trail, statistics, exports, log channel, revoke confirmation ----------

_REDEEM_LABELS = {
    "redeemed": "Redeemed",
    "already_redeemed": "Redeemed again (own key)",
    "role_failed": "Redeemed, role pending",
    "key_taken": "Refused: key claimed by another member",
    "invalid_key": "Refused: key not recognised",
    "malformed": "Refused: not a key",
    "unavailable": "itch.io unavailable",
    "misconfigured": "itch.io settings problem",
    "no_games": "No games linked",
    "cooldown": "Cool-down reached",
}
_ACTION_LABELS = {
    "revoke": "Revoked by an admin",
    "recheck": "Revoked by a re-check",
    "game_add": "Game linked",
    "game_remove": "Game unlinked",
    "game_grant": "Role given to the game's buyers",
    "game_ungrant": "Role taken from the game's buyers",
    "log_channel": "Log channel changed",
}
# Choice labels of `/keys audit outcome:`, one per key of bot.admin.AUDIT_OUTCOME_FILTERS.
AUDIT_OUTCOME_LABELS = {
    **_REDEEM_LABELS,
    "refused": "Any refusal (claimed, not recognised, not a key, cool-down)",
    "revoked": "Revoked (by an admin or a re-check)",
    "recheck": "Re-check: key refused by itch.io (refund or revoked)",
    "link": "itch.io account linked or unlinked",
    "account_taken": "itch.io account already linked to another member",
    "game_add": "Admin: game linked",
    "game_remove": "Admin: game unlinked",
    "log_channel": "Admin: log channel changed",
    "admin": "Any admin action",
}
_DETAIL_MENTIONS = (
    (re.compile(r"held by (\d+)"), r"held by <@\1>"),
    (re.compile(r"^role (\d+)$"), r"role <@&\1>"),
    (re.compile(r"^channel (\d+)$"), r"channel <#\1>"),
)


def audit_label(entry: AuditEntry) -> str:
    if entry.action == "redeem":
        return _REDEEM_LABELS.get(entry.outcome, f"Redeem: {entry.outcome}")
    label = _ACTION_LABELS.get(entry.action, entry.action.replace("_", " ").capitalize())
    return label if entry.outcome in ("ok", "revoked") else f"{label}: {entry.outcome}"


def _audit_line(e: AuditEntry, games: dict[int, GameRole]) -> str:
    parts = [f"{ts(e.created_at)} <@{e.member_id}> **{audit_label(e)}**"]
    if e.game_id is not None:
        parts.append(game_name(games.get(e.game_id), e.game_id)[:80])
    if e.key_hash:
        parts.append(f"key `{e.key_hash[:12]}`")
    if e.actor_id and e.actor_id != e.member_id:
        parts.append(f"by <@{e.actor_id}>")
    if e.detail:
        detail = e.detail[:100]
        for pattern, mention in _DETAIL_MENTIONS:
            detail = pattern.sub(mention, detail)
        parts.append(detail)
    return " · ".join(parts)


def audit_embed(
    entries: list[AuditEntry],
    games: dict[int, GameRole],
    *,
    page: int,
    pages: int,
    first: int,
    total: int,
    filters: str,
) -> discord.Embed:
    """One page of the audit trail, newest first; `first` is the 1-based index of its first."""
    if not entries:
        return discord.Embed(
            title="Audit trail",
            description="No attempts or admin actions match." + (f"\n{filters}" if filters else ""),
            colour=INFO,
        )
    embed = discord.Embed(
        title="Audit trail",
        description="\n".join(_audit_line(e, games) for e in entries)[:4096],
        colour=INFO,
    )
    footer = f"Page {page:,} of {pages:,} · {first:,}-{first + len(entries) - 1:,} of {total:,}"
    embed.set_footer(text=(footer + (f" · {filters}" if filters else ""))[:2048])
    return embed


def _counts_table(stats: GameStats) -> str:
    rows = (
        ("buyers", stats.buyers),
        ("redemptions", stats.redemptions),
        ("refused", stats.refused),
    )
    lines = [f"{'':<12}{'day':>8}{'week':>9}{'all':>10}"]
    lines += [f"{n:<12}{c.day:>8,}{c.week:>9,}{c.total:>10,}" for n, c in rows]
    return "```\n" + "\n".join(lines) + "\n```"


def stats_embed(stats: GuildStats) -> discord.Embed:
    embed = discord.Embed(
        title="Statistics",
        description="Per game: buyers linked (distinct members), redemptions and refused "
        "attempts over the last day, week and all time.",
        colour=INFO,
    )
    missing = stats.missing_records
    if missing is None:
        missing_text = "I couldn't list the server's members, so this wasn't checked."
    elif not missing:
        missing_text = "None: every member with a buyer role has a redemption for it."
    else:
        shown = ", ".join(f"<@{m.member_id}> (<@&{m.role_id}>)" for m in missing[:20])
        more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
        missing_text = (
            f"**{len(missing)}** should be none: {shown}{more}. They got the role some other "
            "way; `/keys lookup member:` shows their records."
        )[:1024]
    u = stats.refused_without_game
    tail = [
        (
            "Refused, no game matched",
            f"Key not recognised, not a key, or cool-down: {u.day:,} today · {u.week:,} this "
            f"week · {u.total:,} in all",
        ),
        (
            "Roles pending",
            f"{stats.roles_pending:,} redemption(s) wait for a role Discord refused (my role "
            "must be above the buyer roles)."
            if stats.roles_pending
            else "None.",
        ),
        ("Members with a buyer role but no record", missing_text),
    ]
    room = 25 - len(tail)
    budget = 5800 - len(embed) - sum(len(n) + len(v) for n, v in tail)
    shown_games = 0
    for g in stats.games:
        name = game_name(None, g.game_id) if g.title is None else f"{g.title} ({g.game_id})"
        value = (f"Role <@&{g.role_id}>" if g.role_id else "No longer linked") + "\n"
        value += _counts_table(g)
        if shown_games >= room or len(name[:256]) + len(value) > budget:
            break
        embed.add_field(name=name[:256], value=value, inline=False)
        budget -= len(name[:256]) + len(value)
        shown_games += 1
    if not stats.games:
        embed.description = "No games linked and no redemptions yet."
    for name, value in tail:
        embed.add_field(name=name, value=value, inline=False)
    if shown_games < len(stats.games):
        embed.set_footer(
            text=f"{len(stats.games) - shown_games} more game(s) not shown: "
            "/keys export has every redemption."
        )
    return embed


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB" if n >= 1024 * 1024 else f"{max(1, n // 1024)} KiB"


def export_embed(export: Export, max_bytes: int) -> discord.Embed:
    text = (
        f"**{export.rows:,}** {export.what}, one row each. Times are UTC (ISO 8601); keys are "
        "shown by fingerprint, never in full."
    )
    if export.compressed:
        text += (
            f"\n\nThe CSV is {_size(export.csv_bytes)}, above Discord's "
            f"{_size(max_bytes)} attachment limit, so it is gzip-compressed (`.csv.gz`)."
        )
        if len(export.files) > 1:
            text += (
                f" It is also split into {len(export.files)} files, each starting with the "
                "header row: the others follow in the next messages."
            )
    return discord.Embed(title="Export ready", description=text, colour=OK)


def revoke_confirm_embed(
    member: discord.abc.User,
    plan: RevokePlan,
    games: dict[int, GameRole],
    *,
    expires_in: float,
    changed: bool = False,
) -> discord.Embed:
    lines = [
        f"• {game_name(games.get(r.game_id), r.game_id)[:80]} · key `{r.fingerprint}` · "
        f"{ts(r.created_at, 'd')}"
        for r in plan.redemptions[:15]
    ]
    if len(plan.redemptions) > 15:
        lines.append(f"… and {len(plan.redemptions) - 15} more")
    roles = (
        "take away " + ", ".join(f"<@&{r}>" for r in plan.roles)
        if plan.roles
        else "take away no role (their other redemptions still give it)"
    )
    text = (
        f"This will delete {len(plan.redemptions)} redemption(s) of {member.mention}:\n"
        + "\n".join(lines)
        + f"\n\nand {roles}. Those keys can then be redeemed again; the audit trail keeps a "
        "record of all this."
    )
    if changed:
        text = (
            "Their redemptions changed since you asked; this is what would happen now.\n\n" + text
        )
    embed = discord.Embed(
        title=f"Revoke {len(plan.redemptions)} redemption(s)?", description=text, colour=WARN
    )
    minutes = max(1, round(expires_in / 60))
    embed.set_footer(text=f"Only you can press these buttons; they expire in {minutes} min.")
    return embed


def revoke_stopped_embed(*, expired: bool) -> discord.Embed:
    if expired:
        return discord.Embed(
            title="Revocation expired",
            description="Nothing was revoked. Run `/keys revoke` again if you still want to.",
            colour=INFO,
        )
    return discord.Embed(title="Cancelled", description="Nothing was revoked.", colour=INFO)


def not_yours_embed() -> discord.Embed:
    return error_embed(
        "These buttons belong to the admin who ran the command. Run it yourself to get your own."
    )


def log_channel_set_embed(channel_id: int) -> discord.Embed:
    return discord.Embed(
        title="Log channel set",
        description=f"<#{channel_id}> now receives every redemption, the refusals worth a look "
        "(a key claimed by another member, cool-downs, roles I couldn't give) and every "
        "revocation.",
        colour=OK,
    )


def log_channel_off_embed(was_set: bool) -> discord.Embed:
    if not was_set:
        return discord.Embed(
            title="No log channel", description="There was none; nothing changed.", colour=INFO
        )
    return discord.Embed(
        title="Log channel turned off", description="Nothing more is posted there.", colour=OK
    )


def log_channel_refused_embed(channel_id: int, missing: list[str]) -> discord.Embed:
    if missing:
        why = "I'm missing " + ", ".join(f"**{p}**" for p in missing) + " there"
    else:
        why = "Discord refused my test message there"
    return error_embed(
        f"I can't post in <#{channel_id}>: {why}. Give me View Channel, Send Messages and "
        "Embed Links in that channel (or pick another). Nothing changed."
    )


def log_channel_hello_embed(actor_id: int) -> discord.Embed:
    return discord.Embed(
        title="itch.io key log",
        description=f"<@{actor_id}> chose this channel for the itch.io key log: redemptions, "
        "keys claimed by another member, cool-downs, roles I couldn't give and revocations "
        "will be posted here.",
        colour=INFO,
    )


def panel_embed(*, with_link: bool = False) -> discord.Embed:
    """The redeem panel's own message, posted by `/keys panel` for every member to see."""
    text = (
        "Press **Redeem your key** and paste the download key, or the whole download URL, from "
        "your purchase (it's in itch.io's e-mail and in your itch.io library). You'll get the "
        "game's buyer role. Only you see the answer."
    )
    if with_link:
        text += (
            "\n\nBought it with your itch.io account? Press **Link itch.io account** and log "
            "in: you get the role of every game of this server that your account owns."
        )
    return discord.Embed(title="Bought one of our games on itch.io?", description=text, colour=INFO)


def panel_posted_embed(channel_id: int, jump_url: str) -> discord.Embed:
    return discord.Embed(
        title="Panel posted",
        description=f"The redeem panel is in <#{channel_id}>: {jump_url}. Its button keeps "
        "working after restarts; delete the message to take it down.",
        colour=OK,
    )


def panel_refused_embed(channel_id: int) -> discord.Embed:
    return error_embed(
        f"I can't post in <#{channel_id}>. Give me View Channel, Send Messages and Embed Links "
        "in that channel (or pick another), then try again."
    )


# -- /link and /unlink ------------------------------------------------------------------------


def link_not_set_up_embed() -> discord.Embed:
    return discord.Embed(
        title="Linking isn't set up",
        description="Linking an itch.io account isn't set up on this bot (the bot's owner has "
        "not registered it with itch.io). Use `/redeem` with the download key or download URL "
        "of your purchase instead.",
        colour=INFO,
    )


def link_start_embed(current: ItchLink | None, *, out_of_band: bool) -> discord.Embed:
    if out_of_band:
        steps = (
            "1. Press **Log in with itch.io** and allow access to your profile.\n"
            "2. itch.io then shows you a token: copy it, press **Paste the token** and paste "
            "it there."
        )
    else:
        steps = (
            "Press **Log in with itch.io** and allow access to your profile. The link works "
            "once, for 10 minutes."
        )
    text = (
        "I'll check which of this server's games your itch.io account owns and give you their "
        f"buyer roles. itch.io only tells me who you are, never your password.\n\n{steps}"
    )
    if current is not None:
        name = current.itch_username or current.itch_user_id
        text += f"\n\nYou're linked as **{name}** already: linking again re-checks your games."
    return discord.Embed(title="Link your itch.io account", description=text, colour=INFO)


def _game_lines(checks: list[GameCheck], note: str = "") -> str:
    """One line per game, then the note, within a field's 1,024 characters."""
    lines: list[str] = []
    room = 1000 - len(note)
    for i, c in enumerate(checks):
        line = f"• {game_name(c.game)[:100]} → <@&{c.game.role_id}>"
        if room - len(line) < 30:
            lines.append(f"… and {len(checks) - i} more")
            break
        lines.append(line)
        room -= len(line) + 1
    return "\n".join(lines) + (f"\n{note}" if note else "")


def link_embed(result: LinkResult) -> discord.Embed:
    match result.outcome:
        case LinkOutcome.TOKEN_REFUSED:
            return error_embed(
                "itch.io didn't accept that login or token. Nothing changed: run `/link` again "
                "and copy the whole token itch.io shows you."
            )
        case LinkOutcome.ACCOUNT_TAKEN:
            return error_embed(
                "This itch.io account is already linked to another member of this server, and "
                "an account can be linked to one member only. Nothing changed; if the account "
                "is yours, contact the server admins."
            )
        case LinkOutcome.UNAVAILABLE:
            return discord.Embed(
                title="itch.io is unavailable",
                description="itch.io is not answering right now, so nothing was recorded. "
                "Please try again in a few minutes.",
                colour=WARN,
            )
        case LinkOutcome.MISCONFIGURED:
            return discord.Embed(
                title="The server's setup needs a fix",
                description="I couldn't check your account because of a problem with this "
                "server's itch.io settings. Nothing was recorded; please tell the server admins.",
                colour=WARN,
            )
    name = result.account.username if result.account else "your account"
    text = f"Linked the itch.io account **{name}**."
    if result.replaced_itch_user_id is not None:
        text += " It replaces the account you had linked before."
    if not result.games:
        text += " This server has no itch.io games set up yet."
    embed = discord.Embed(title="itch.io account linked", description=text, colour=OK)
    found = result.with_status(GameStatus.FOUND)
    pending = result.with_status(GameStatus.ROLE_FAILED)
    missing = result.with_status(GameStatus.NOT_FOUND)
    held = result.with_status(GameStatus.HELD)
    unchecked = result.with_status(GameStatus.UNCHECKED)
    if found:
        embed.add_field(name="Found: roles given", value=_game_lines(found), inline=False)
    if pending:
        embed.colour = WARN
        embed.add_field(
            name="Found, role pending",
            value=_game_lines(
                pending,
                "I couldn't give these roles yet: the admins need to "
                "move my role above them. You'll get them as soon as that's fixed.",
            ),
            inline=False,
        )
    if missing:
        embed.add_field(
            name="Not found on this account",
            value=_game_lines(
                missing,
                "Bought it later, or with another account? Run `/link` again after buying, "
                "or use `/redeem` with the download key.",
            ),
            inline=False,
        )
    if held:
        embed.colour = WARN
        embed.add_field(
            name="Already redeemed by another member",
            value=_game_lines(
                held,
                "The purchase on your account was redeemed by someone "
                "else here. If that wasn't you, contact the server admins.",
            ),
            inline=False,
        )
    if unchecked:
        embed.colour = WARN
        embed.add_field(
            name="Couldn't be checked",
            value=_game_lines(
                unchecked,
                "itch.io refused to answer about these games; please tell the server admins.",
            ),
            inline=False,
        )
    return embed


def unlink_embed(result: UnlinkResult) -> discord.Embed:
    if result.link is None and not result.removed:
        return discord.Embed(
            title="Nothing to unlink",
            description="No itch.io account is linked to you on this server.",
            colour=INFO,
        )
    name = ""
    if result.link is not None:
        name = f" **{result.link.itch_username or result.link.itch_user_id}**"
    text = f"Your itch.io account{name} is no longer linked."
    if result.roles_removed:
        text += " Roles taken away: " + ", ".join(f"<@&{r}>" for r in result.roles_removed) + "."
    if result.removed and not result.roles_removed and not result.roles_failed:
        text += " Your roles stay: keys you redeemed give them too."
    embed = discord.Embed(title="itch.io account unlinked", description=text, colour=OK)
    if result.roles_failed:
        embed.colour = WARN
        embed.add_field(
            name="Roles I couldn't remove",
            value=", ".join(f"<@&{r}>" for r in result.roles_failed),
        )
    return embed


def game_remove_embed(game_id: int, removed: bool, buyers: int) -> discord.Embed:
    if not removed:
        return discord.Embed(
            title="Not linked",
            description=f"Game `{game_id}` was not linked on this server; nothing changed.",
            colour=INFO,
        )
    text = f"Game `{game_id}` is no longer linked: new keys for it won't give a role."
    if buyers:
        text += (
            f"\n\n{buyers} member(s) got its role from a redemption. They keep it unless you "
            "remove it from them below (members who also hold the role through another game "
            "keep it either way)."
        )
    return discord.Embed(title="Game unlinked", description=text, colour=OK)


def mapping_done_embed(report: ReconcileReport, *, granted: bool) -> discord.Embed:
    if granted:
        text = f"Gave the role to {report.added} buyer(s)."
    else:
        text = f"Removed the role from {report.removed} buyer(s)."
    if report.failed:
        text += (
            f" {report.failed} change(s) failed: check that my role is above the buyer role and "
            "that I have Manage Roles; failed grants are retried automatically."
        )
    return discord.Embed(
        title="Roles updated", description=text, colour=WARN if report.failed else OK
    )
