"""The redemption rules, on the real store and the real itch.io client against the itch fake.

Discord is replaced by a recording RoleGateway: the service's only door to it."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest

from bot.events import CooldownReached, KeyShared, Redeemed, Revoked, RoleFailed
from bot.itch import ItchClient
from bot.keyparse import key_hash
from bot.service import (
    GameAddOutcome,
    Outcome,
    RedemptionService,
    RoleCandidate,
    RoleResult,
    _RecentMatches,
)
from bot.store import GameRole
from tests.conftest import fast_itch_client

GUILD = 1000
OTHER_GUILD = 2000
ALICE, BOB, ADMIN = 11, 12, 99
ROLE_A, ROLE_B = 501, 502
KEY = "YWKse5jeAeuZ8w3a5qO2b2PId1sChw2B9b637w6z"


@pytest.fixture
def client(itch, session):
    return fast_itch_client(session, itch)


@pytest.fixture
async def service(store, client, roles, events, itch):
    itch.add_game(3, "X-Moon", url="http://leafo.itch.io/x-moon")
    itch.add_game(4, "Y-Sun", url="https://leafo.itch.io/y-sun")
    svc = RedemptionService(store, client, roles, events)
    await store.set_game_role(GUILD, 3, ROLE_A, "X-Moon", "http://leafo.itch.io/x-moon")
    await store.set_game_role(GUILD, 4, ROLE_B, "Y-Sun", "https://leafo.itch.io/y-sun")
    return svc


def key_requests(itch):
    return [r for r in itch.requests if "download_keys" in r.path]


async def audit_outcomes(store, guild=GUILD):
    return [e.outcome for e in reversed(await store.audit_entries(guild, 100))]


async def test_valid_key_recorded_then_role_then_result(service, itch, store, roles, events):
    itch.add_download_key(3, KEY, owner={"id": 1994, "username": "amos"}, key_id=124)
    result = await service.redeem(GUILD, ALICE, KEY)
    assert result.outcome is Outcome.REDEEMED
    assert result.game.game_id == 3
    rows = await store.redemptions_by_member(GUILD, ALICE)
    assert len(rows) == 1
    r = rows[0]
    assert (r.game_id, r.key_id, r.key_hash, r.itch_user_id, r.itch_username) == (
        3,
        124,
        key_hash(KEY),
        1994,
        "amos",
    )
    assert r.role_applied
    assert roles.calls == [("add", GUILD, ALICE, ROLE_A, "Redeemed an itch.io download key")]
    # Both games were asked, concurrently, with the key as a query parameter, not in the path.
    reqs = key_requests(itch)
    assert sorted(r.path for r in reqs) == [
        "/api/1/key/game/3/download_keys",
        "/api/1/key/game/4/download_keys",
    ]
    assert all(r.query == {"download_key": KEY} for r in reqs)
    assert all(r.authorization == f"Bearer {itch.api_key}" for r in reqs)
    assert await audit_outcomes(store) == ["redeemed"]
    assert isinstance(events.events[0], Redeemed) and events.events[0].role_id == ROLE_A


async def test_raw_key_never_stored(service, itch, store, tmp_path):
    itch.add_download_key(3, KEY)
    await service.redeem(GUILD, ALICE, KEY)
    await service.redeem(GUILD, BOB, KEY)
    files = [f for f in tmp_path.iterdir() if f.name.startswith("bot.db")]
    assert files  # the database and its WAL, read while open
    for f in files:
        assert KEY.encode() not in f.read_bytes(), f.name
    assert key_hash(KEY).encode() in b"".join(f.read_bytes() for f in files)


async def test_download_url_with_known_game_costs_one_request(service, itch, store):
    itch.add_download_key(4, KEY)
    result = await service.redeem(GUILD, ALICE, f"https://leafo.itch.io/y-sun/download/{KEY}")
    assert result.outcome is Outcome.REDEEMED and result.game.game_id == 4
    assert [r.path for r in key_requests(itch)] == ["/api/1/key/game/4/download_keys"]


async def test_same_member_again_no_itch_call_no_second_record(service, itch, store, roles):
    itch.add_download_key(3, KEY)
    assert (await service.redeem(GUILD, ALICE, KEY)).outcome is Outcome.REDEEMED
    before = len(itch.requests)
    again = await service.redeem(GUILD, ALICE, f"https://leafo.itch.io/x-moon/download/{KEY}")
    assert again.outcome is Outcome.ALREADY_REDEEMED
    assert len(itch.requests) == before
    assert len(await store.redemptions_by_member(GUILD, ALICE)) == 1
    assert [c[0] for c in roles.calls] == ["add", "add"]  # role re-applied


async def test_key_of_another_member_refused(service, itch, store, roles, events):
    itch.add_download_key(3, KEY)
    await service.redeem(GUILD, ALICE, KEY)
    before = len(itch.requests)
    result = await service.redeem(GUILD, BOB, KEY)
    assert result.outcome is Outcome.KEY_TAKEN
    assert len(itch.requests) == before
    assert await store.redemptions_by_member(GUILD, BOB) == []
    assert [c[2] for c in roles.calls] == [ALICE]
    shared = [e for e in events.events if isinstance(e, KeyShared)]
    assert shared and shared[0].holder_id == ALICE and shared[0].member_id == BOB


async def test_concurrent_race_binds_key_once(service, itch, store):
    itch.add_download_key(3, KEY)
    itch.latency = 0.05
    a, b = await asyncio.gather(service.redeem(GUILD, ALICE, KEY), service.redeem(GUILD, BOB, KEY))
    assert sorted([a.outcome, b.outcome]) == sorted([Outcome.REDEEMED, Outcome.KEY_TAKEN])
    assert len(await store.redemptions_by_key(GUILD, key_hash(KEY))) == 1


async def test_guilds_are_separate(service, itch, store):
    itch.add_download_key(3, KEY)
    await store.set_game_role(OTHER_GUILD, 3, 777, None, None)
    assert (await service.redeem(GUILD, ALICE, KEY)).outcome is Outcome.REDEEMED
    other = await service.redeem(OTHER_GUILD, BOB, KEY)
    assert other.outcome is Outcome.REDEEMED and other.game.role_id == 777
    assert await service.lookup(OTHER_GUILD, member_id=ALICE) == []


async def test_invalid_key(service, itch, store, roles):
    result = await service.redeem(GUILD, ALICE, "A" * 32)
    assert result.outcome is Outcome.INVALID_KEY
    assert len(key_requests(itch)) == 2
    assert await store.redemptions_by_member(GUILD, ALICE) == []
    assert roles.calls == []
    assert await audit_outcomes(store) == ["invalid_key"]


async def test_key_of_a_game_not_linked_here(service, itch):
    itch.add_game(9, "Other")
    itch.add_download_key(9, KEY)
    assert (await service.redeem(GUILD, ALICE, KEY)).outcome is Outcome.INVALID_KEY


@pytest.mark.parametrize(
    "text", ["", "a" * 201, "two words here", "not-a-key!", "https://example.com/download/x"]
)
async def test_malformed_costs_no_request(service, itch, store, text):
    result = await service.redeem(GUILD, ALICE, text)
    assert result.outcome is Outcome.MALFORMED
    assert itch.requests == []
    assert await audit_outcomes(store) == ["malformed"]


@pytest.mark.parametrize("fault", ["500", "429", "html", "hang", "garbage", "reset"])
async def test_itch_unavailable_records_nothing(service, itch, store, roles, fault):
    itch.add_download_key(3, KEY)
    itch.always_fail = fault
    result = await service.redeem(GUILD, ALICE, KEY)
    assert result.outcome is Outcome.UNAVAILABLE
    assert await store.redemptions_by_member(GUILD, ALICE) == []
    assert roles.calls == []
    assert await audit_outcomes(store) == ["unavailable"]


async def test_transient_fault_retried_then_redeemed(service, itch):
    itch.add_download_key(3, KEY)
    itch.inject("503", path_contains="game/3/")
    assert (await service.redeem(GUILD, ALICE, KEY)).outcome is Outcome.REDEEMED


async def test_bad_api_key_is_misconfigured(service, itch, client, store):
    client_bad = ItchClient(
        client._session, "wrong", base_url=itch.base_url, max_attempts=1, deadline=2
    )
    service.itch = client_bad
    result = await service.redeem(GUILD, ALICE, KEY)
    assert result.outcome is Outcome.MISCONFIGURED
    assert await store.redemptions_by_member(GUILD, ALICE) == []


async def test_role_failure_keeps_redemption(service, itch, store, roles, events):
    itch.add_download_key(3, KEY)
    roles.result = RoleResult.FORBIDDEN
    result = await service.redeem(GUILD, ALICE, KEY)
    assert result.outcome is Outcome.ROLE_FAILED
    (row,) = await store.redemptions_by_member(GUILD, ALICE)
    assert not row.role_applied
    assert any(isinstance(e, RoleFailed) for e in events.events)
    # Fixed later: redeeming again applies it, without asking itch.io.
    roles.result = RoleResult.OK
    before = len(itch.requests)
    assert (await service.redeem(GUILD, ALICE, KEY)).outcome is Outcome.ALREADY_REDEEMED
    assert len(itch.requests) == before
    assert (await store.redemptions_by_member(GUILD, ALICE))[0].role_applied


async def test_no_games_configured(store, client, roles, itch):
    svc = RedemptionService(store, client, roles)
    assert (await svc.redeem(GUILD, ALICE, KEY)).outcome is Outcome.NO_GAMES
    assert itch.requests == []


async def test_cooldown_after_five_refusals(service, itch, store, events):
    for _ in range(5):
        assert (await service.redeem(GUILD, ALICE, "bad!")).outcome is Outcome.MALFORMED
    itch.add_download_key(3, KEY)
    assert (await service.redeem(GUILD, ALICE, KEY)).outcome is Outcome.COOLDOWN
    assert (await service.redeem(GUILD, ALICE, KEY)).outcome is Outcome.COOLDOWN
    assert itch.requests == []
    assert len([e for e in events.events if isinstance(e, CooldownReached)]) == 1
    # Other members and admins are not affected.
    assert (await service.redeem(GUILD, BOB, "bad!")).outcome is Outcome.MALFORMED
    result = await service.redeem(GUILD, ALICE, KEY, cooldown_exempt=True)
    assert result.outcome is Outcome.REDEEMED


async def test_busy_budget_checks_games_one_at_a_time(store, client, session, itch, roles):
    for gid in (3, 4, 5, 6):
        itch.add_game(gid, f"G{gid}")
        await store.set_game_role(GUILD, gid, 500 + gid, None, None)
    # Keys of game 5 matched lately (the budget was idle then: every game was asked) ...
    idle = RedemptionService(store, client, roles)
    for member in (21, 22):
        key = f"Game5Key{member}AbCdEfGhIjKl"
        itch.add_download_key(5, key)
        assert (await idle.redeem(GUILD, member, key)).outcome is Outcome.REDEEMED
    assert len(key_requests(itch)) == 8
    # ... so with the budget busy, game 5 is asked first, and alone when it matches.
    itch.add_download_key(5, KEY)
    busy = ItchClient(session, itch.api_key, base_url=itch.base_url, rate_limit=50, burst=1)
    svc = RedemptionService(store, busy, roles)
    assert (await svc.redeem(GUILD, ALICE, KEY)).outcome is Outcome.REDEEMED
    assert [r.path for r in key_requests(itch)[8:]] == ["/api/1/key/game/5/download_keys"]


def test_recent_matches_outweigh_older_ones():
    recent = _RecentMatches()
    now = datetime.now(UTC)
    recent.seed(GUILD, [(4, now - timedelta(hours=5))] * 20)  # a year of sales, say
    recent.add(GUILD, 5, now)  # launch day
    recent.add(GUILD, 5, now)
    games = [GameRole(GUILD, gid, 500 + gid, None, None, now) for gid in (3, 4, 5)]
    assert [g.game_id for g in recent.ranked(GUILD, games)] == [5, 4, 3]
    assert not recent.knows(OTHER_GUILD)
    recent.add(OTHER_GUILD, 3, now)  # not seeded yet: left to the seed, which reads the store
    assert not recent.knows(OTHER_GUILD)


def role(position=1, **over):
    base = dict(
        id=ROLE_A,
        name="Buyer",
        is_default=False,
        managed=False,
        position=position,
        bot_top_position=5,
    )
    return RoleCandidate(**{**base, **over})


async def test_add_game_checks_role_and_my_games(store, client, roles, itch):
    itch.add_game(3, "X-Moon")
    svc = RedemptionService(store, client, roles)
    for bad, outcome in [
        (role(is_default=True, position=0), GameAddOutcome.ROLE_EVERYONE),
        (role(managed=True), GameAddOutcome.ROLE_MANAGED),
        (role(position=5), GameAddOutcome.ROLE_TOO_HIGH),
        (role(position=9), GameAddOutcome.ROLE_TOO_HIGH),
    ]:
        assert (await svc.add_game(GUILD, 3, bad, ADMIN)).outcome is outcome
    assert await store.game_roles(GUILD) == []
    ok = await svc.add_game(GUILD, 3, role(), ADMIN)
    assert ok.outcome is GameAddOutcome.ADDED and ok.warning is None
    assert ok.game_title == "X-Moon"
    unknown = await svc.add_game(GUILD, 77, role(), ADMIN)
    assert unknown.outcome is GameAddOutcome.ADDED and "77" in unknown.warning
    assert [g.game_id for g in await store.game_roles(GUILD)] == [3, 77]


async def test_revoke_deletes_and_removes_roles(service, itch, store, roles, events):
    k2 = "B" * 32
    itch.add_download_key(3, KEY)
    itch.add_download_key(4, k2)
    await service.redeem(GUILD, ALICE, KEY)
    await service.redeem(GUILD, ALICE, k2)
    result = await service.revoke(GUILD, ALICE, ADMIN, game_id=3)
    assert [r.game_id for r in result.revoked] == [3]
    assert result.roles_removed == [ROLE_A]
    assert [r.game_id for r in await store.redemptions_by_member(GUILD, ALICE)] == [4]
    assert ("remove", GUILD, ALICE, ROLE_A, "Redemption revoked by an admin") in roles.calls
    assert any(isinstance(e, Revoked) for e in events.events)
    everything = await service.revoke(GUILD, ALICE, ADMIN)
    assert everything.roles_removed == [ROLE_B]
    assert await store.redemptions_by_member(GUILD, ALICE) == []
    assert (await service.revoke(GUILD, ALICE, ADMIN)).revoked == []
    # The key is free again after a revocation.
    assert (await service.redeem(GUILD, BOB, KEY)).outcome is Outcome.REDEEMED


async def test_lookup_by_key_or_url_and_member(service, itch):
    itch.add_download_key(3, KEY)
    await service.redeem(GUILD, ALICE, KEY)
    by_url = await service.lookup(GUILD, key_text=f"https://leafo.itch.io/x-moon/download/{KEY}")
    assert [r.member_id for r in by_url] == [ALICE]
    assert await service.lookup(GUILD, key_text=KEY, member_id=BOB) == []
    assert len(await service.lookup(GUILD)) == 1


async def test_key_never_logged(service, itch, caplog):
    caplog.set_level(logging.DEBUG)
    itch.add_download_key(3, KEY)
    itch.inject("500")
    await service.redeem(GUILD, ALICE, KEY)
    await service.redeem(GUILD, BOB, f"https://leafo.itch.io/x-moon/download/{KEY}")
    await service.redeem(GUILD, BOB, "C" * 30)
    assert KEY not in caplog.text and "C" * 30 not in caplog.text
    assert itch.api_key not in caplog.text
