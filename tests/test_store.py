import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from bot.store import LATEST_SCHEMA_VERSION, DuplicateRedemption, Store


@pytest.fixture
async def store(tmp_path):
    s = await Store.open(tmp_path / "sub" / "bot.db")
    yield s
    await s.close()


def redemption(**over):
    base = dict(
        guild_id=1,
        member_id=10,
        game_id=3,
        key_id=124,
        key_hash="a" * 64,
        itch_user_id=None,
        itch_username=None,
        role_id=50,
    )
    return {**base, **over}


async def test_open_applies_migrations_in_wal(tmp_path):
    path = tmp_path / "sub" / "bot.db"
    store = await Store.open(path)
    assert await store.schema_version() == LATEST_SCHEMA_VERSION
    await store.close()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"game_roles", "redemptions", "audit"} <= tables
    raw.close()
    # Re-opening applies nothing twice.
    again = await Store.open(path)
    assert await again.schema_version() == LATEST_SCHEMA_VERSION
    await again.close()


async def test_commits_leave_the_log_to_the_checkpointing_connection(tmp_path):
    path = tmp_path / "bot.db"
    store = await Store.open(path, checkpoint_every=3600)
    size = path.stat().st_size
    for i in range(300):
        await store.add_audit(guild_id=1, member_id=i, action="redeem", outcome="redeemed")
    # Commits wrote the log only: no commit stopped to copy it into the database file ...
    assert path.stat().st_size == size
    await store.close()
    # ... which closing brings up to date.
    assert path.stat().st_size > size
    assert not (tmp_path / "bot.db-wal").exists() or (tmp_path / "bot.db-wal").stat().st_size == 0

    store = await Store.open(path, checkpoint_every=0.01)
    size = path.stat().st_size
    for i in range(300):
        await store.add_audit(guild_id=1, member_id=i, action="redeem", outcome="redeemed")
    for _ in range(500):  # the checkpointing connection copies the log within moments
        await asyncio.sleep(0.01)
        if path.stat().st_size > size:
            break
    assert path.stat().st_size > size
    await store.close()


async def test_game_roles_per_guild(store):
    await store.set_game_role(1, 3, 50, "X-Moon", "https://leafo.itch.io/x-moon")
    await store.set_game_role(2, 3, 60, None, None)
    await store.set_game_role(1, 3, 51, "X-Moon", None)  # update
    games = await store.game_roles(1)
    assert [(g.game_id, g.role_id) for g in games] == [(3, 51)]
    assert (await store.game_role(2, 3)).role_id == 60
    assert await store.remove_game_role(1, 3)
    assert not await store.remove_game_role(1, 3)
    assert await store.game_roles(1) == []


async def test_redemption_unique_per_guild_game_key(store):
    r = await store.add_redemption(**redemption())
    assert r.id and not r.role_applied and r.fingerprint == "a" * 12
    with pytest.raises(DuplicateRedemption):
        await store.add_redemption(**redemption(member_id=11))
    # Same key in another guild or game is a different binding.
    await store.add_redemption(**redemption(guild_id=2))
    await store.add_redemption(**redemption(game_id=4))
    assert len(await store.redemptions_by_key(1, "a" * 64)) == 2
    assert len(await store.redemptions_by_member(1, 10)) == 2
    await store.set_role_applied([r.id], True)
    assert (await store.redemptions_by_key(1, "a" * 64))[0].role_applied
    await store.delete_redemptions([r.id])
    assert [x.game_id for x in await store.redemptions_by_member(1, 10)] == [4]


async def test_iter_redemptions_in_batches(store):
    for i in range(25):
        await store.add_redemption(**redemption(key_hash=f"{i:064x}", guild_id=1 + i % 2))
    seen = [r async for r in store.iter_redemptions(1, batch=4)]
    assert len(seen) == 13 and all(r.guild_id == 1 for r in seen)
    assert len([r async for r in store.iter_redemptions(batch=7)]) == 25


async def test_audit_is_append_only(store):
    await store.add_audit(guild_id=1, member_id=10, action="redeem", outcome="invalid_key")
    await store.add_audit(guild_id=1, member_id=10, action="redeem", outcome="redeemed")
    assert await store.count_audit(1, 10, ["invalid_key"], timedelta(minutes=10)) == 1
    assert await store.count_audit(1, 11, ["invalid_key"], timedelta(minutes=10)) == 0
    with pytest.raises(sqlite3.DatabaseError):
        await store._db.execute("UPDATE audit SET outcome='x'")
    with pytest.raises(sqlite3.DatabaseError):
        await store._db.execute("DELETE FROM audit")
    entries = await store.audit_entries(1)
    assert [e.outcome for e in entries] == ["redeemed", "invalid_key"]


async def test_recent_audit_games_newest_first(store):
    for game_id, outcome, guild in [
        (3, "redeemed", 1),
        (4, "invalid_key", 1),
        (5, "role_failed", 1),
        (6, "redeemed", 2),
        (7, "redeemed", 1),
    ]:
        await store.add_audit(
            guild_id=guild, member_id=10, action="redeem", outcome=outcome, game_id=game_id
        )
    await store.add_audit(guild_id=1, member_id=10, action="revoke", outcome="redeemed", game_id=8)
    found = await store.recent_audit_games(1, "redeem", ["redeemed", "role_failed"], 2)
    assert [game_id for game_id, _ in found] == [7, 5]
    assert found[0][1] >= found[1][1]


async def test_revoked_binding_can_be_taken_again(store):
    r = await store.add_redemption(**redemption())
    assert await store.mark_revoked(r.id)
    assert not await store.mark_revoked(r.id)  # only once
    (row,) = await store.redemptions_by_key(1, "a" * 64)
    assert row.status == "revoked" and not row.active
    again = await store.add_redemption(**redemption(member_id=11))
    assert again.id == r.id and again.member_id == 11 and again.active
    with pytest.raises(DuplicateRedemption):
        await store.add_redemption(**redemption(member_id=12))


async def test_ids_to_check_and_pending(store):
    a = await store.add_redemption(**redemption())
    b = await store.add_redemption(**redemption(key_hash="b" * 64, member_id=11))
    await store.set_role_applied([a.id], True)
    assert [r.id for r in await store.pending_roles(1)] == [b.id]
    assert await store.redemption_ids_to_check(guild_id=1) == [a.id, b.id]
    assert await store.redemption_ids_to_check(guild_id=1, member_id=11) == [b.id]
    assert await store.redemption_ids_to_check(guild_id=2) == []
    await store.mark_revoked(a.id)
    assert await store.redemption_ids_to_check(guild_id=1) == [b.id]
    assert [m async for m in store.iter_active_roles_by_member(1)] == [(11, {50: [b.id]})]


async def test_active_roles_member_by_member_across_batches(store):
    for i in range(7):
        member = 10 + i % 3
        await store.add_redemption(
            **redemption(member_id=member, game_id=i, key_hash=f"{i:064x}", role_id=50 + i % 2)
        )
    revoked = await store.add_redemption(**redemption(member_id=12, key_hash="f" * 64))
    await store.mark_revoked(revoked.id)
    await store.add_redemption(**redemption(guild_id=2, member_id=10, key_hash="e" * 64))
    found = [m async for m in store.iter_active_roles_by_member(1, batch=2)]
    assert [member for member, _ in found] == [10, 11, 12]
    # Member 10 holds games 0, 3, 6 (roles 50, 51, 50); 11 holds 1, 4; 12 holds 2, 5 (and a
    # revoked one, left out).
    by_member = {m: {role: len(ids) for role, ids in roles.items()} for m, roles in found}
    assert by_member == {10: {50: 2, 51: 1}, 11: {51: 1, 50: 1}, 12: {50: 1, 51: 1}}


async def test_ids_to_check_paged_and_counted(store):
    made = [
        await store.add_redemption(**redemption(key_hash=f"{i:064x}", member_id=100 + i))
        for i in range(7)
    ]
    ids = [r.id for r in made]
    assert await store.count_to_check(guild_id=1) == 7
    assert await store.redemption_ids_to_check(guild_id=1, limit=3) == ids[:3]
    assert await store.redemption_ids_to_check(guild_id=1, after_id=ids[2], limit=3) == ids[3:6]
    # Just redeemed counts as just checked: not due for a check an hour old.
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    assert await store.count_to_check(last_checked_before=hour_ago) == 0
    assert await store.count_to_check(last_checked_before=datetime.now(UTC)) == 7
