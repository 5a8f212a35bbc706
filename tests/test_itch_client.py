"""The itch.io client against the loopback fake itch.io (real HTTP over 127.0.0.1)."""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from datetime import UTC, datetime

import aiohttp
import pytest

from bot.errors import ItchMisconfigured, ItchRefused, ItchUnavailable
from bot.itch import (
    Credentials,
    DownloadKey,
    Game,
    ItchClient,
    ItchUser,
    Priority,
    Purchase,
    parse_itch_date,
)
from tests.fakes.itch_fake import ALL_SCOPES, FakeItch

GAME = 3
BUYER = {"id": 1994, "username": "buyer", "display_name": "Buyer B", "url": "https://b.itch.io"}


@pytest.fixture
async def fake():
    itch = FakeItch()
    await itch.start()
    itch.add_game(GAME, "X-Moon")
    yield itch
    await itch.close()


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def make_client(fake, session):
    def make(**overrides) -> ItchClient:
        options = {
            "base_url": fake.base_url,
            "rate_limit": 1000.0,
            "burst": 1000,
            "timeout": 0.5,
            "max_attempts": 4,
            "backoff_base": 0.01,
            "backoff_max": 0.02,
            "deadline": 5.0,
        }
        options.update(overrides)
        api_key = options.pop("api_key", fake.api_key)
        return ItchClient(session, api_key, **options)

    return make


@pytest.fixture
def client(make_client) -> ItchClient:
    return make_client()


# ---- dates


def test_parse_itch_date():
    assert parse_itch_date("2017-10-19 13:35:06") == datetime(2017, 10, 19, 13, 35, 6, tzinfo=UTC)
    assert parse_itch_date("2017-10-19T13:35:06Z") == datetime(2017, 10, 19, 13, 35, 6, tzinfo=UTC)
    assert parse_itch_date("2017-10-19T15:35:06+02:00") == datetime(
        2017, 10, 19, 13, 35, 6, tzinfo=UTC
    )
    assert parse_itch_date(None) is None
    assert parse_itch_date("") is None
    assert parse_itch_date("yesterday") is None


# ---- endpoints and typed results


async def test_credentials_info(fake, client, make_client):
    assert await client.credentials_info() == Credentials(scopes=tuple(ALL_SCOPES), expires_at=None)
    fake.add_api_key("scoped", ["profile:me"])
    scoped = await make_client(api_key="scoped").credentials_info()
    assert scoped.scopes == ("profile:me",)


async def test_me_with_api_key_and_member_tokens(fake, client):
    me = await client.me()
    assert me == ItchUser(id=1, username="dev", display_name="Developer", url="https://dev.itch.io")
    assert fake.requests[-1].path == "/api/1/key/me"
    assert fake.requests[-1].authorization == "Bearer test-api-key"

    fake.add_user_token("member-oauth-token", BUYER)
    for kind in ("key", "jwt"):
        member = await client.me("member-oauth-token", kind=kind)
        assert member == ItchUser(1994, "buyer", "Buyer B", "https://b.itch.io")
        assert fake.requests[-1].path == f"/api/1/{kind}/me"
        assert fake.requests[-1].authorization == "Bearer member-oauth-token"
        assert fake.requests[-1].query == {}

    # A member's bad token is that member's problem, not a misconfiguration of the bot.
    with pytest.raises(ItchRefused) as refused:
        await client.me("expired-token", kind="jwt")
    assert type(refused.value) is ItchRefused
    assert refused.value.messages == ["invalid key"]


async def test_my_games(fake, client):
    fake.add_game(4, "Other Dev Game", owner_key="someone-else")
    games = await client.my_games()
    assert games == [
        Game(
            id=GAME,
            title="X-Moon",
            url="https://dev.itch.io/x-moon",
            published=True,
            created_at=datetime(2023, 5, 6, 7, 8, 9, tzinfo=UTC),
            purchases_count=0,
            downloads_count=0,
        )
    ]


async def test_download_key_lookups(fake, client):
    claimed = fake.add_download_key(GAME, owner=BUYER, key_id=124, downloads=74, email="b@x.org")
    unclaimed = fake.add_download_key(GAME, created_at="2014-02-28 00:25:09")

    dkey = await client.download_key(GAME, claimed["key"])
    assert dkey == DownloadKey(
        id=124,
        game_id=GAME,
        created_at=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        downloads=74,
        owner=ItchUser(1994, "buyer", "Buyer B", "https://b.itch.io"),
    )
    assert claimed["key"] not in repr(dkey)
    assert fake.requests[-1].query == {"download_key": claimed["key"]}

    free = await client.download_key(GAME, unclaimed["key"])
    assert free.owner is None
    assert free.created_at == datetime(2014, 2, 28, 0, 25, 9, tzinfo=UTC)

    assert (await client.download_key_by_user(GAME, 1994)).id == 124
    assert fake.requests[-1].query == {"user_id": "1994"}
    assert (await client.download_key_by_email(GAME, "b@x.org", priority=Priority.LOW)).id == 124


async def test_download_key_refusals(fake, client):
    fake.add_game(5, "Second Game")
    other = fake.add_download_key(5)
    refund = fake.add_download_key(GAME)
    fake.revoke_download_key(refund["key"])
    cases = [
        (client.download_key(GAME, "not-a-key"), "invalid download key"),
        (client.download_key(GAME, other["key"]), "invalid download key"),
        (client.download_key(GAME, refund["key"]), "invalid download key"),
        (client.download_key_by_user(GAME, 77), "no download key found"),
        (client.download_key_by_email(GAME, "nobody@x.org"), "no download key found"),
        (client.download_key(999, "whatever"), "invalid game"),
    ]
    for call, message in cases:
        with pytest.raises(ItchRefused) as refused:
            await call
        assert refused.value.messages == [message]
        assert refused.value.status == 400
    assert fake.count() == len(cases)  # refusals are never retried
    assert client.stats["refused"] == len(cases)


async def test_purchases(fake, client):
    fake.add_purchase(GAME, email="b@x.org", user_id=1994, purchase_id=11561, source="amazon")
    fake.add_purchase(GAME, email="c@x.org", donation=True, price="$3.00")
    found = await client.purchases(GAME, email="b@x.org")
    assert found == [
        Purchase(
            id=11561,
            game_id=GAME,
            created_at=datetime(2024, 2, 3, 4, 5, 6, tzinfo=UTC),
            source="amazon",
            currency="USD",
            price="$1.00",
            donation=False,
        )
    ]
    assert (await client.purchases(GAME, user_id=1994))[0].id == 11561
    assert (await client.purchases(GAME, email="c@x.org"))[0].donation is True
    assert await client.purchases(GAME, email="nobody@x.org") == []
    fake.empty_as_object = True  # itch.io can encode an empty list as {}
    assert await client.purchases(GAME, email="nobody@x.org") == []
    with pytest.raises(ValueError):
        await client.purchases(GAME)


# ---- errors come before the status


@pytest.mark.parametrize("status", [200, 400, 404, 500])
async def test_errors_array_wins_over_status(fake, client, status):
    fake.error_status = status
    with pytest.raises(ItchRefused) as refused:
        await client.download_key(GAME, "not-a-key")
    assert type(refused.value) is ItchRefused
    assert refused.value.messages == ["invalid download key"]
    assert refused.value.status == status
    assert fake.count() == 1


async def test_invalid_api_key_is_misconfigured(fake, make_client):
    bad = make_client(api_key="revoked-api-key")
    with pytest.raises(ItchMisconfigured) as refused:
        await bad.download_key(GAME, "anything")
    assert refused.value.messages == ["invalid key"]
    assert refused.value.status == 401
    fake.error_statuses["invalid key"] = 200
    with pytest.raises(ItchMisconfigured):
        await bad.my_games()
    assert fake.count() == 2


async def test_missing_scope_is_refused_not_misconfigured(fake, make_client):
    fake.add_api_key("profile-only", ["profile:me", "profile:games"])
    scoped = make_client(api_key="profile-only")
    with pytest.raises(ItchRefused) as refused:
        await scoped.download_key(GAME, "anything")
    assert type(refused.value) is ItchRefused
    assert refused.value.messages == ["invalid scope"]
    assert refused.value.status == 403


async def test_4xx_without_errors_is_unavailable_at_once(fake, client):
    fake.inject("404")
    with pytest.raises(ItchUnavailable):
        await client.my_games()
    assert fake.count() == 1


async def test_session_raising_for_status_does_not_hide_refusals(fake):
    async with aiohttp.ClientSession(raise_for_status=True) as strict:
        client = ItchClient(strict, fake.api_key, base_url=fake.base_url, backoff_base=0.01)
        with pytest.raises(ItchRefused):
            await client.download_key(GAME, "not-a-key")


# ---- transient faults


@pytest.mark.parametrize(
    "fault", ["500", "503", "429", "hang", "html", "html500", "reset", "garbage"]
)
async def test_each_fault_is_retried_then_succeeds(fake, make_client, fault):
    client = make_client(timeout=0.2)
    dkey = fake.add_download_key(GAME, owner=BUYER)
    # aiohttp itself retries a GET once when the server drops the connection.
    fake.inject(*[fault] * (2 if fault == "reset" else 1), path_contains="download_keys")
    assert (await client.download_key(GAME, dkey["key"])).owner is not None
    assert fake.count() >= 2
    assert client.stats["errors"] >= 1


@pytest.mark.parametrize("fault", ["503", "html", "garbage", "reset", "429"])
async def test_persistent_fault_ends_unavailable(fake, make_client, fault):
    client = make_client(max_attempts=3)
    fake.always_fail = fault
    started = time.monotonic()
    with pytest.raises(ItchUnavailable):
        await client.my_games()
    assert time.monotonic() - started < 1.0
    assert client.stats["requests"] == 3
    assert client.stats["retries"] == 2
    assert client.stats["unavailable"] == 1


async def test_persistent_hang_ends_within_the_deadline(fake, make_client):
    client = make_client(timeout=0.15, max_attempts=50, deadline=0.4)
    fake.always_fail = "hang"
    started = time.monotonic()
    with pytest.raises(ItchUnavailable):
        await client.my_games()
    assert 0.3 < time.monotonic() - started < 0.7


async def test_deadline_bounds_retries(fake, make_client):
    client = make_client(max_attempts=1000, backoff_base=0.05, backoff_max=0.1, deadline=0.3)
    fake.always_fail = "503"
    started = time.monotonic()
    with pytest.raises(ItchUnavailable):
        await client.my_games()
    assert time.monotonic() - started < 0.5
    assert 2 <= fake.count() < 1000


async def test_waiting_for_the_rate_limit_does_not_use_up_the_deadline(fake, make_client):
    # A crowd at 10 requests/s: the last of 5 waits 0.4 s for its turn, past a 0.2 s deadline
    # that itch.io itself, answering at once, never comes near.
    client = make_client(rate_limit=10, burst=1, deadline=0.2)
    games = await asyncio.gather(*(client.my_games() for _ in range(5)))
    assert [len(g) for g in games] == [1] * 5
    assert client.stats["limiter_wait"] > 0.2
    assert client.stats["unavailable"] == 0


async def test_429_retry_after_is_honoured(fake, client, make_client):
    fake.retry_after = 0.3
    fake.inject("429")
    await client.my_games()
    first, second = fake.requests[-2:]
    assert (first.status, second.status) == (429, 200)
    assert second.time - first.time >= 0.28
    assert client.stats["rate_limited"] == 1

    # A Retry-After beyond the deadline fails at once rather than waiting in vain.
    fake.retry_after = 30
    fake.inject("429")
    short = make_client(deadline=1.0)
    started = time.monotonic()
    with pytest.raises(ItchUnavailable):
        await short.my_games()
    assert time.monotonic() - started < 0.5


# ---- rate limiting and priorities


async def test_client_limiter_stays_under_itchs_limit(fake, make_client):
    # itch.io-like margin: the server allows a slightly larger burst than the client uses.
    fake.rate_limit, fake.burst = 50.0, 8
    client = make_client(rate_limit=50.0, burst=5)
    assert client.idle_capacity() == 5
    started = time.monotonic()
    await asyncio.gather(*(client.my_games() for _ in range(30)))
    elapsed = time.monotonic() - started
    assert fake.throttled == 0
    assert client.stats["rate_limited"] == 0
    assert client.stats["requests"] == 30
    assert elapsed >= (30 - 5) / 50.0 - 0.02
    assert client.idle_capacity() < 1


async def test_fake_throttles_an_unlimited_client(fake, make_client):
    fake.rate_limit, fake.burst = 50.0, 8
    client = make_client(max_attempts=1)
    results = await asyncio.gather(*(client.my_games() for _ in range(30)), return_exceptions=True)
    assert fake.throttled >= 15
    assert sum(isinstance(r, ItchUnavailable) for r in results) == fake.throttled
    assert client.stats["rate_limited"] == fake.throttled


async def test_idle_capacity(make_client):
    client = make_client(rate_limit=10.0, burst=5)
    assert client.idle_capacity() == 5
    await asyncio.gather(*(client.my_games() for _ in range(3)))
    assert 2 <= client.idle_capacity() < 3


async def test_low_priority_yields_to_high(fake, make_client):
    dkey = fake.add_download_key(GAME, owner=BUYER)
    client = make_client(rate_limit=40.0, burst=1)
    await client.my_games()  # the bucket is now full
    low = [
        asyncio.create_task(client.download_key_by_user(GAME, 1994, priority=Priority.LOW))
        for _ in range(3)
    ]
    await asyncio.sleep(0.005)  # the LOW calls are waiting first
    high = [asyncio.create_task(client.download_key(GAME, dkey["key"])) for _ in range(3)]
    await asyncio.gather(*low, *high)
    order = ["low" if "user_id" in r.query else "high" for r in fake.requests[1:]]
    assert order == ["high"] * 3 + ["low"] * 3


async def test_high_priority_is_first_come_first_served(fake, make_client):
    client = make_client(rate_limit=50.0, burst=1)
    await client.my_games()
    calls = [
        asyncio.create_task(client.download_key_by_user(GAME, user_id)) for user_id in range(10, 18)
    ]
    await asyncio.gather(*calls, return_exceptions=True)
    assert [r.query["user_id"] for r in fake.requests[1:]] == [str(u) for u in range(10, 18)]


async def test_cancelled_high_waiter_does_not_block_low(make_client):
    client = make_client(rate_limit=20.0, burst=1)
    await client.my_games()
    high = asyncio.create_task(client.my_games())
    await asyncio.sleep(0.005)
    assert client.idle_capacity() == 0  # a HIGH call is waiting
    high.cancel()
    with pytest.raises(asyncio.CancelledError):
        await high
    await asyncio.wait_for(client.my_games(priority=Priority.LOW), 1.0)


async def test_low_priority_alone_runs_at_full_rate(fake, make_client):
    client = make_client(rate_limit=50.0, burst=2)
    started = time.monotonic()
    await asyncio.gather(*(client.my_games(priority=Priority.LOW) for _ in range(12)))
    elapsed = time.monotonic() - started
    assert (12 - 2) / 50.0 - 0.02 <= elapsed < 0.45
    assert fake.count("my-games") == 12


# ---- secrets


async def test_secrets_never_logged_or_in_errors(fake, make_client, caplog):
    caplog.set_level(logging.DEBUG)
    client = make_client(timeout=0.2, max_attempts=4, deadline=2.0)
    dkey = fake.add_download_key(GAME, owner=BUYER)
    fake.add_user_token("member-secret-token", BUYER)
    secrets = [fake.api_key, dkey["key"], "member-secret-token", "wrong-secret-key"]
    raised: list[BaseException] = []

    for faults in (["html", "503"], ["reset", "reset", "429"], ["hang", "garbage"]):
        fake.inject(*faults)
        await client.download_key(GAME, dkey["key"])
    await client.me("member-secret-token", kind="jwt")
    fake.revoke_download_key(dkey["key"])
    impatient = make_client(timeout=0.1, max_attempts=2)
    for fault in ("reset", "hang", "html500", None):
        fake.always_fail = fault
        try:
            await impatient.download_key(GAME, dkey["key"])
        except Exception as exc:
            raised.append(exc)
    fake.always_fail = None
    try:
        await make_client(api_key="wrong-secret-key").download_key(GAME, dkey["key"])
    except Exception as exc:
        raised.append(exc)

    assert [type(e) for e in raised] == [ItchUnavailable] * 3 + [ItchRefused, ItchMisconfigured]
    assert "Bearer test-api-key" in {r.authorization for r in fake.requests}
    for request in fake.requests:
        assert fake.api_key not in request.path
        assert fake.api_key not in str(request.query)
    client_logs = "\n".join(r.getMessage() for r in caplog.records)
    assert "download_keys" in client_logs
    shown = [client_logs]
    for exc in raised:
        # the message and repr of the exception and of every exception chained to it
        chained: BaseException | None = exc
        while chained is not None:
            shown += [str(chained), repr(chained), *traceback.format_exception_only(chained)]
            chained = chained.__cause__ or chained.__context__
    for text in shown:
        for secret in secrets:
            assert secret not in text
