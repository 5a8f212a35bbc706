"""AdminService on the real store: audit paging and filters, statistics, exports, settings."""

from __future__ import annotations

import csv
import gzip
import io
from datetime import UTC, datetime, timedelta

import pytest

from bot.admin import AUDIT_OUTCOME_FILTERS, AdminService, Counts, MissingRecord
from bot.store import AuditFilter
from tests.admin_bulk import add_audit, add_redemptions, fake_hash

GUILD, OTHER = 1, 2
GAME_A, GAME_B = 3, 4
ROLE_A, ROLE_B = 501, 502
NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def admin(store) -> AdminService:
    return AdminService(store)


def parse(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode())))


async def test_audit_pages_are_keyset_and_newest_first(admin, store):
    add_audit(store.path, GUILD, 25)
    add_audit(store.path, OTHER, 5)
    everything = AuditFilter()
    assert await admin.audit_total(GUILD, everything) == 25
    first = await admin.audit_page(GUILD, everything, before_id=None, size=10)
    second = await admin.audit_page(GUILD, everything, before_id=first[-1].id, size=10)
    last = await admin.audit_page(GUILD, everything, before_id=second[-1].id, size=10)
    details = [e.detail for e in first + second + last]
    assert details == [f"bulk {i}" for i in range(24, -1, -1)]
    assert {e.guild_id for e in first + second + last} == {GUILD}


async def test_audit_filters_combine(admin, store):
    add_audit(store.path, GUILD, 3, outcome="redeemed", game_id=GAME_A, first_member=10)
    add_audit(store.path, GUILD, 2, outcome="key_taken", game_id=GAME_A, first_member=10)
    add_audit(store.path, GUILD, 4, outcome="malformed", first_member=10)
    add_audit(store.path, GUILD, 1, outcome="revoked", action="revoke", game_id=GAME_B)
    add_audit(store.path, GUILD, 1, outcome="ok", action="game_add", game_id=GAME_B)

    async def total(**kw):
        return await admin.audit_total(GUILD, admin.audit_filter(**kw))

    assert await total() == 11
    assert await total(member_id=10) == 3  # first of each batch of attempts
    assert await total(game_id=GAME_A) == 5
    assert await total(outcome="refused") == 6
    assert await total(outcome="refused", game_id=GAME_A) == 2
    assert await total(outcome="revoked") == 1
    assert await total(outcome="admin") == 2
    assert await total(outcome="game_add", game_id=GAME_A) == 0
    assert await admin.audit_total(OTHER, admin.audit_filter(outcome="refused")) == 0


def test_every_outcome_has_a_filter():
    from bot.service import Outcome
    from cogs.replies import AUDIT_OUTCOME_LABELS

    assert {o.value for o in Outcome} <= set(AUDIT_OUTCOME_FILTERS)
    assert set(AUDIT_OUTCOME_LABELS) == set(AUDIT_OUTCOME_FILTERS)
    assert len(AUDIT_OUTCOME_FILTERS) <= 25  # Discord's limit on choices
    assert all(len(label) <= 100 for label in AUDIT_OUTCOME_LABELS.values())


async def test_stats_counts_per_window_game_and_guild(admin, store):
    await store.set_game_role(GUILD, GAME_A, ROLE_A, "X-Moon", None)
    await store.set_game_role(GUILD, GAME_B, ROLE_B, "Y-Sun", None)
    games = {GAME_A: ROLE_A, GAME_B: ROLE_B}
    # 10 redemptions an hour apart ending now (both games), 6 more ten days ago (game A only).
    add_redemptions(store.path, GUILD, 10, games=games, start=NOW - timedelta(hours=9))
    add_redemptions(
        store.path,
        GUILD,
        6,
        games={GAME_A: ROLE_A},
        first_member=20_000_000,
        start=NOW - timedelta(days=10),
    )
    # 3 refusals today and 2 three days ago on game A; 4 with no game, 2 weeks ago.
    add_audit(store.path, GUILD, 3, outcome="key_taken", game_id=GAME_A, start=NOW)
    add_audit(
        store.path, GUILD, 2, outcome="invalid_key", game_id=GAME_A, start=NOW - timedelta(days=3)
    )
    add_audit(store.path, GUILD, 4, outcome="malformed", start=NOW - timedelta(days=14))
    add_audit(store.path, GUILD, 5, outcome="redeemed", game_id=GAME_A, start=NOW)  # no refusal
    # Another guild, same games: never counted here.
    add_redemptions(store.path, OTHER, 50, games=games, first_member=30_000_000, start=NOW)
    add_audit(store.path, OTHER, 7, outcome="key_taken", game_id=GAME_A, start=NOW)

    stats = await admin.stats(GUILD, None, now=NOW + timedelta(minutes=1))
    a, b = stats.games
    assert (a.game_id, a.title, a.role_id) == (GAME_A, "X-Moon", ROLE_A)
    assert a.redemptions == Counts(5, 5, 11) and a.buyers == Counts(5, 5, 11)
    assert b.redemptions == Counts(5, 5, 5)
    assert a.refused == Counts(3, 5, 5) and b.refused == Counts(0, 0, 0)
    assert stats.refused_without_game == Counts(0, 0, 4)
    assert stats.roles_pending == 0 and stats.missing_records is None


async def test_stats_buyers_are_distinct_members_and_unlinked_games_still_show(admin, store):
    await store.set_game_role(GUILD, GAME_A, ROLE_A, "X-Moon", None)
    for key in ("k1", "k2"):  # one member, two keys of one game
        await store.add_redemption(
            guild_id=GUILD,
            member_id=10,
            game_id=GAME_A,
            key_id=None,
            key_hash=key * 32,
            itch_user_id=None,
            itch_username=None,
            role_id=ROLE_A,
        )
    add_redemptions(store.path, GUILD, 2, games={GAME_B: ROLE_B}, role_applied=False)
    stats = await admin.stats(GUILD, None)
    a, b = stats.games
    assert a.buyers.total == 1 and a.redemptions.total == 2
    assert (b.game_id, b.role_id, b.redemptions.total) == (GAME_B, None, 2)  # not linked now
    assert stats.roles_pending == 4


async def test_members_with_a_role_but_no_record(admin, store):
    await store.set_game_role(GUILD, GAME_A, ROLE_A, "X-Moon", None)
    await store.set_game_role(GUILD, GAME_B, ROLE_A, "X-Moon soundtrack", None)  # same role
    await store.set_game_role(GUILD, 5, ROLE_B, "Y-Sun", None)
    add_redemptions(store.path, GUILD, 1, games={GAME_B: ROLE_A}, first_member=10)
    add_redemptions(store.path, OTHER, 1, games={5: ROLE_B}, first_member=11)
    holders = {10: {ROLE_A}, 11: {ROLE_B}, 12: {ROLE_A, ROLE_B}}
    # Many members: the store is asked in chunks.
    holders |= {1000 + i: {ROLE_B} for i in range(1200)}
    stats = await admin.stats(GUILD, holders)
    missing = stats.missing_records
    assert MissingRecord(12, ROLE_A) in missing and MissingRecord(12, ROLE_B) in missing
    assert MissingRecord(11, ROLE_B) in missing  # a record in another guild does not count
    assert MissingRecord(10, ROLE_A) not in missing  # the other game of the role counts
    assert len(missing) == 2 + 1 + 1200


async def test_export_small_is_plain_csv(admin, store):
    await store.set_game_role(GUILD, GAME_A, ROLE_A, "=HYPERLINK(bad)", None)
    add_redemptions(store.path, GUILD, 3, games={GAME_A: ROLE_A}, start=NOW)
    add_redemptions(store.path, OTHER, 3, games={GAME_A: ROLE_A}, start=NOW)
    await store.add_redemption(
        guild_id=GUILD,
        member_id=99,
        game_id=GAME_A,
        key_id=None,
        key_hash="f" * 64,
        itch_user_id=7,
        itch_username="-evil\nline",
        role_id=ROLE_A,
    )
    with await admin.export_redemptions(GUILD, today=NOW) as export:
        (f,) = export.files
        assert f.filename == f"redemptions-{GUILD}-20250310.csv" and not export.compressed
        data = f.data.read()
    assert len(data) == f.size == export.csv_bytes and export.rows == 4
    header, *rows = parse(data)
    assert header[:3] == ["redemption_id", "redeemed_at", "member_id"]
    assert [r[1] for r in rows[:3]] == [
        "2025-03-10T12:00:00Z",
        "2025-03-10T12:00:01Z",
        "2025-03-10T12:00:02Z",
    ]
    assert [r[11] for r in rows] == [fake_hash(10_000_000 + i)[:12] for i in range(3)] + ["f" * 12]
    # Spreadsheets never read a cell as a formula, and a record is one line.
    assert rows[0][4] == "'=HYPERLINK(bad)" and rows[3][9] == "'-evil line"
    assert data.count(b"\n") == 5


async def test_export_too_big_is_gzipped_then_split(admin, store):
    add_redemptions(store.path, GUILD, 8_000, games={GAME_A: ROLE_A})
    with await admin.export_redemptions(GUILD, max_bytes=400_000, today=NOW) as one:
        assert one.compressed and one.csv_bytes > 400_000
        (f,) = one.files
        assert f.filename.endswith("-20250310.csv.gz") and f.size <= 400_000
        assert len(parse(gzip.decompress(f.data.read()))) == 8_001

    with await admin.export_redemptions(GUILD, max_bytes=60_000) as split:
        assert len(split.files) > 1
        seen = []
        for n, part in enumerate(split.files, 1):
            assert part.filename.endswith(f"-part{n}of{len(split.files)}.csv.gz")
            data = part.data.read()
            assert len(data) == part.size <= 60_000
            header, *rows = parse(gzip.decompress(data))
            assert header[0] == "redemption_id"
            seen += [int(r[0]) for r in rows]
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 8_000


async def test_export_audit(admin, store):
    add_audit(store.path, GUILD, 2, outcome="key_taken", game_id=GAME_A, start=NOW)
    await admin.set_log_channel(GUILD, 400, actor_id=9)
    with await admin.export_audit(GUILD, today=NOW) as export:
        (f,) = export.files
        header, *rows = parse(f.data.read())
    assert f.filename == f"audit-{GUILD}-20250310.csv"
    assert header == [
        "audit_id",
        "at",
        "action",
        "outcome",
        "member_id",
        "game_id",
        "key_fingerprint",
        "actor_id",
        "detail",
    ]
    assert [(r[2], r[3], r[5], r[6], r[8]) for r in rows] == [
        ("redeem", "key_taken", str(GAME_A), fake_hash(10_000_000)[:12], "bulk 0"),
        ("redeem", "key_taken", str(GAME_A), fake_hash(10_000_001)[:12], "bulk 1"),
        ("log_channel", "ok", "", "", "channel 400"),
    ]
    assert rows[2][7] == "9"


async def test_log_channel_setting_per_guild_and_audited(admin, store):
    assert await admin.log_channel(GUILD) is None
    await admin.set_log_channel(GUILD, 400, actor_id=9)
    await admin.set_log_channel(OTHER, 900, actor_id=8)
    assert await admin.log_channel(GUILD) == 400
    await admin.set_log_channel(GUILD, None, actor_id=9)
    assert await admin.log_channel(GUILD) is None
    assert await admin.log_channel(OTHER) == 900
    entries = await store.audit_entries(GUILD)
    assert [(e.action, e.actor_id, e.detail) for e in entries] == [
        ("log_channel", 9, "off"),
        ("log_channel", 9, "channel 400"),
    ]
