"""Linking itch.io accounts: signed states, the OAuth settings, the LinkService on the real store
and itch.io client (against the itch.io fake), and the web server over loopback HTTP.

Discord is replaced by a recording RoleGateway, as in test_service.py."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from bot.errors import SettingsError
from bot.events import AccountLinked, ItchAccountTaken, KeyShared, Revoked
from bot.itch import ItchClient
from bot.keyparse import key_hash
from bot.linking import GameStatus, LinkOutcome, LinkService
from bot.oauth import (
    InvalidState,
    OAuthServer,
    StateProblem,
    StateSigner,
    authorize_url,
    parse_token,
)
from bot.recheck import Rechecker
from bot.service import Outcome, RedemptionService
from bot.settings import load_settings
from tests.conftest import fast_itch_client

GUILD, OTHER_GUILD = 1000, 2000
ALICE, BOB = 11, 12
ROLE_A, ROLE_B = 501, 502
GAME_A, GAME_B = 3, 4
SECRET = "s" * 40
TOKEN = "member-oauth-token-0123456789"
AMOS = {"id": 1994, "username": "amos", "display_name": "Amos"}
BASE_ENV = {"DISCORD_TOKEN": "tok", "ITCH_API_KEY": "key"}


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


# -- signed states ------------------------------------------------------------------------------


def test_state_round_trip_names_guild_member_and_expiry():
    clock = Clock()
    signer = StateSigner(SECRET, clock=clock)
    state, info = signer.issue(GUILD, ALICE)
    assert re.fullmatch(r"[A-Za-z0-9._-]+", state)  # safe in a URL as it is
    got = signer.verify(state)
    assert got == info
    assert (got.guild_id, got.member_id, got.expires_at) == (GUILD, ALICE, int(clock.now) + 600)
    # Every state has its own nonce.
    assert signer.issue(GUILD, ALICE)[1].nonce != info.nonce


def _forged(state: str) -> list[str]:
    guild, member, exp, nonce, sig = state.split(".")
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    return [
        f"{guild}.{BOB}.{exp}.{nonce}.{sig}",  # another member
        f"{GUILD + 1}.{member}.{exp}.{nonce}.{sig}",  # another guild
        f"{guild}.{member}.{int(exp) + 3600}.{nonce}.{sig}",  # a longer life
        f"{guild}.{member}.{exp}.{nonce}.{flipped}",
        f"{guild}.{member}.{exp}.{nonce}",
        "",
        "garbage",
        state + "." + sig,
        state.replace(".", ". "),
        "x" * 5000,
    ]


def test_forged_states_refused():
    signer = StateSigner(SECRET)
    state, _ = signer.issue(GUILD, ALICE)
    for bad in _forged(state):
        with pytest.raises(InvalidState) as info:
            signer.verify(bad)
        assert info.value.problem is StateProblem.FORGED, bad
    # A state of another installation (another secret) is foreign: forged for us.
    foreign, _ = StateSigner("t" * 40).issue(GUILD, ALICE)
    with pytest.raises(InvalidState) as info:
        signer.verify(foreign)
    assert info.value.problem is StateProblem.FORGED


def test_state_expires_after_ten_minutes():
    clock = Clock()
    signer = StateSigner(SECRET, clock=clock)
    state, _ = signer.issue(GUILD, ALICE)
    clock.now += 599
    assert signer.verify(state).member_id == ALICE
    clock.now += 1
    with pytest.raises(InvalidState) as info:
        signer.verify(state)
    assert info.value.problem is StateProblem.EXPIRED
    assert "s" * 40 not in repr(signer)


def test_authorize_url():
    url = authorize_url("client-1", "https://bot.example/oauth/callback", "st.ate")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "itch.io", "/user/oauth")
    assert parse_qs(parts.query) == {
        "client_id": ["client-1"],
        "scope": ["profile:me"],
        "response_type": ["token"],
        "redirect_uri": ["https://bot.example/oauth/callback"],
        "state": ["st.ate"],
    }
    oob = parse_qs(urlsplit(authorize_url("c", "urn:ietf:wg:oauth:2.0:oob")).query)
    assert oob["redirect_uri"] == ["urn:ietf:wg:oauth:2.0:oob"] and "state" not in oob


@pytest.mark.parametrize(
    ("pasted", "token"),
    [
        (TOKEN, TOKEN),
        (f"  {TOKEN}\n", TOKEN),
        (f"https://bot.example/oauth/callback#access_token={TOKEN}&state=x", TOKEN),
        (f"access_token={TOKEN}", TOKEN),
        ("two words", None),
        ("", None),
        ("x" * 600, None),
    ],
)
def test_pasted_token(pasted, token):
    assert parse_token(pasted) == token


# -- settings -----------------------------------------------------------------------------------


def test_oauth_settings_off_by_default_then_out_of_band_then_web():
    off = load_settings(BASE_ENV)
    assert off.itch_oauth_client_id is None and off.oauth_public_url is None
    assert (off.oauth_listen_host, off.oauth_listen_port) == ("127.0.0.1", 8080)

    oob = load_settings({**BASE_ENV, "ITCH_OAUTH_CLIENT_ID": "abc"})
    assert oob.itch_oauth_client_id == "abc" and oob.oauth_public_url is None

    web = load_settings(
        {
            **BASE_ENV,
            "ITCH_OAUTH_CLIENT_ID": "abc",
            "OAUTH_PUBLIC_URL": "https://bot.example.com/itch/",
            "OAUTH_LISTEN": "[::]:0",
            "OAUTH_STATE_SECRET": SECRET,
        }
    )
    assert web.oauth_public_url == "https://bot.example.com/itch"
    assert (web.oauth_listen_host, web.oauth_listen_port) == ("::", 0)
    assert web.oauth_state_secret.get() == SECRET and SECRET not in repr(web)


@pytest.mark.parametrize(
    ("env", "name"),
    [
        (
            {"OAUTH_PUBLIC_URL": "https://bot.example", "OAUTH_STATE_SECRET": SECRET},
            "OAUTH_PUBLIC_URL",
        ),
        (
            {"ITCH_OAUTH_CLIENT_ID": "a", "OAUTH_PUBLIC_URL": "https://b.example"},
            "OAUTH_STATE_SECRET",
        ),
        (
            {
                "ITCH_OAUTH_CLIENT_ID": "a",
                "OAUTH_PUBLIC_URL": "https://b.example",
                "OAUTH_STATE_SECRET": "short",
            },
            "OAUTH_STATE_SECRET",
        ),
        (
            {
                "ITCH_OAUTH_CLIENT_ID": "a",
                "OAUTH_PUBLIC_URL": "http://b.example",
                "OAUTH_STATE_SECRET": SECRET,
            },
            "OAUTH_PUBLIC_URL",
        ),
        (
            {
                "ITCH_OAUTH_CLIENT_ID": "a",
                "OAUTH_PUBLIC_URL": "https://b.example/?x=1",
                "OAUTH_STATE_SECRET": SECRET,
            },
            "OAUTH_PUBLIC_URL",
        ),
        (
            {
                "ITCH_OAUTH_CLIENT_ID": "a",
                "OAUTH_PUBLIC_URL": "https://b.example/a;b",
                "OAUTH_STATE_SECRET": SECRET,
            },
            "OAUTH_PUBLIC_URL",
        ),
        ({"OAUTH_LISTEN": "8080"}, "OAUTH_LISTEN"),
        ({"OAUTH_LISTEN": "0.0.0.0:99999"}, "OAUTH_LISTEN"),
        ({"ITCH_OAUTH_CLIENT_ID": "has space"}, "ITCH_OAUTH_CLIENT_ID"),
    ],
)
def test_invalid_oauth_settings_name_the_setting(env, name):
    with pytest.raises(SettingsError) as info:
        load_settings({**BASE_ENV, **env})
    assert info.value.name == name


def test_plain_http_public_url_allowed_on_localhost():
    s = load_settings(
        {
            **BASE_ENV,
            "ITCH_OAUTH_CLIENT_ID": "a",
            "OAUTH_PUBLIC_URL": "http://localhost:8080",
            "OAUTH_STATE_SECRET": SECRET,
        }
    )
    assert s.oauth_public_url == "http://localhost:8080"


# -- the link service ---------------------------------------------------------------------------


@pytest.fixture
async def client(itch, session, store, tmp_path):
    itch.add_game(GAME_A, "X-Moon")
    itch.add_game(GAME_B, "Y-Sun")
    await store.set_game_role(GUILD, GAME_A, ROLE_A, "X-Moon", None)
    await store.set_game_role(GUILD, GAME_B, ROLE_B, "Y-Sun", None)
    itch.add_user_token(TOKEN, AMOS)
    return fast_itch_client(session, itch)


@pytest.fixture
def links(store, client, roles, events):
    return LinkService(store, client, roles, events)


def statuses(result):
    return {c.game.game_id: c.status for c in result.games}


async def test_link_proves_account_then_records_owned_games(links, itch, store, roles, events):
    itch.add_download_key(GAME_A, owner=AMOS, key_id=124)
    result = await links.link(GUILD, ALICE, TOKEN)
    assert result.outcome is LinkOutcome.LINKED
    assert result.account.id == 1994
    assert statuses(result) == {GAME_A: GameStatus.FOUND, GAME_B: GameStatus.NOT_FOUND}
    # `me` with the member's token on the key path; the games with the bot's own key.
    (me,) = [r for r in itch.requests if r.path.endswith("/me")]
    assert me.path == "/api/1/key/me" and me.authorization == f"Bearer {TOKEN}"
    keys = [r for r in itch.requests if "download_keys" in r.path]
    assert {r.query["user_id"] for r in keys} == {"1994"}
    assert all(r.authorization == f"Bearer {itch.api_key}" for r in keys)

    link = await store.itch_link(GUILD, ALICE)
    assert (link.itch_user_id, link.itch_username) == (1994, "amos")
    (row,) = await store.redemptions_by_member(GUILD, ALICE)
    assert row.by_account and row.key_hash == "account:1994"
    assert (row.game_id, row.key_id, row.itch_user_id, row.role_id, row.role_applied) == (
        GAME_A,
        124,
        1994,
        ROLE_A,
        True,
    )
    assert roles.changes == [("add", GUILD, ALICE, ROLE_A)]
    assert events.events == [AccountLinked(GUILD, ALICE, 1994, "amos", (GAME_A,))]


async def test_token_never_stored_or_logged(links, itch, store, tmp_path, caplog):
    caplog.set_level("DEBUG")
    itch.add_download_key(GAME_A, owner=AMOS)
    await links.link(GUILD, ALICE, TOKEN)
    await links.link(GUILD, ALICE, "wrong-token-0123456789")
    assert TOKEN not in caplog.text and "wrong-token" not in caplog.text
    for f in tmp_path.iterdir():
        if f.name.startswith("bot.db"):
            assert TOKEN.encode() not in f.read_bytes()


async def test_refused_token_records_nothing(links, itch, store, roles):
    result = await links.link(GUILD, ALICE, "not-a-token-itch-knows")
    assert result.outcome is LinkOutcome.TOKEN_REFUSED
    assert await store.itch_link(GUILD, ALICE) is None
    assert roles.changes == [] and itch.count("download_keys") == 0


@pytest.mark.parametrize("where", ["/me", "download_keys"])
async def test_itch_unavailable_records_nothing(links, itch, store, roles, where):
    itch.add_download_key(GAME_A, owner=AMOS)
    itch.inject(*["503"] * 4, path_contains=where)  # two attempts each, for up to two calls
    result = await links.link(GUILD, ALICE, TOKEN)
    assert result.outcome is LinkOutcome.UNAVAILABLE
    assert await store.itch_link(GUILD, ALICE) is None
    assert await store.redemptions_by_member(GUILD, ALICE) == []
    assert roles.changes == []


async def test_rejected_api_key_is_misconfigured(links, itch, store):
    itch.revoke_api_key(itch.api_key)
    result = await links.link(GUILD, ALICE, TOKEN)
    assert result.outcome is LinkOutcome.MISCONFIGURED
    assert await store.itch_link(GUILD, ALICE) is None


async def test_account_links_to_one_member_per_guild(links, itch, store, roles, events):
    itch.add_download_key(GAME_A, owner=AMOS)
    await links.link(GUILD, ALICE, TOKEN)
    before = itch.count("download_keys")
    result = await links.link(GUILD, BOB, TOKEN)
    assert result.outcome is LinkOutcome.ACCOUNT_TAKEN and result.holder_id == ALICE
    assert itch.count("download_keys") == before  # refused before asking about games
    assert await store.redemptions_by_member(GUILD, BOB) == []
    assert events.events[-1] == ItchAccountTaken(GUILD, BOB, ALICE, 1994, "amos")
    # Another guild is another matter.
    await store.set_game_role(OTHER_GUILD, GAME_A, ROLE_A, "X-Moon", None)
    assert (await links.link(OTHER_GUILD, BOB, TOKEN)).outcome is LinkOutcome.LINKED


async def test_relink_finds_a_later_purchase_without_duplicating(links, itch, store, roles):
    itch.add_download_key(GAME_A, owner=AMOS)
    await links.link(GUILD, ALICE, TOKEN)
    itch.add_download_key(GAME_B, owner=AMOS)
    result = await links.link(GUILD, ALICE, TOKEN)
    assert statuses(result) == {GAME_A: GameStatus.FOUND, GAME_B: GameStatus.FOUND}
    assert [c.new for c in result.games] == [False, True]
    rows = await store.redemptions_by_member(GUILD, ALICE)
    assert sorted(r.game_id for r in rows) == [GAME_A, GAME_B]
    assert roles.changes[-2:] == [("add", GUILD, ALICE, ROLE_A), ("add", GUILD, ALICE, ROLE_B)]


async def test_purchase_redeemed_by_key_elsewhere_is_held(
    links, itch, store, client, roles, events
):
    redemptions = RedemptionService(store, client, roles, events)
    key = "YWKse5jeAeuZ8w3a5qO2b2PId1sChw2B9b637w6z"
    itch.add_download_key(GAME_A, key, owner=AMOS, key_id=124)
    assert (await redemptions.redeem(GUILD, BOB, key)).outcome is Outcome.REDEEMED
    result = await links.link(GUILD, ALICE, TOKEN)
    assert statuses(result)[GAME_A] is GameStatus.HELD
    assert await store.redemptions_by_member(GUILD, ALICE) == []
    assert KeyShared(GUILD, ALICE, BOB, GAME_A, key_hash(key)[:12]) in events.events


async def test_key_of_a_linked_account_refused_to_another_member(links, itch, store, client, roles):
    redemptions = RedemptionService(store, client, roles)
    key = "YWKse5jeAeuZ8w3a5qO2b2PId1sChw2B9b637w6z"
    itch.add_download_key(GAME_A, key, owner=AMOS, key_id=124)
    await links.link(GUILD, ALICE, TOKEN)
    result = await redemptions.redeem(GUILD, BOB, key)
    assert result.outcome is Outcome.KEY_TAKEN and result.holder_id == ALICE
    # The account's owner may still redeem it: both ways then show for her.
    assert (await redemptions.redeem(GUILD, ALICE, key)).outcome is Outcome.REDEEMED
    rows = await store.redemptions_by_member(GUILD, ALICE)
    assert sorted(r.by_account for r in rows) == [False, True]
    # Linked before the game was set up: the owner's link alone ties the key.
    other_key = "Bq9TzqK3n1pZ0c7YfL2mRkX8sWvH4dJe"
    itch.add_game(7, "Z-Star")
    itch.add_download_key(7, other_key, owner=AMOS)
    await store.set_game_role(GUILD, 7, ROLE_B, "Z-Star", None)
    assert (await redemptions.redeem(GUILD, BOB, other_key)).holder_id == ALICE


async def test_linking_another_account_replaces_the_first(links, itch, store, roles):
    itch.add_download_key(GAME_A, owner=AMOS)
    await links.link(GUILD, ALICE, TOKEN)
    itch.add_user_token("second-token-0123456789", {"id": 77, "username": "alt"})
    itch.add_download_key(GAME_B, owner={"id": 77, "username": "alt"})
    result = await links.link(GUILD, ALICE, "second-token-0123456789")
    assert result.replaced_itch_user_id == 1994
    assert statuses(result) == {GAME_A: GameStatus.NOT_FOUND, GAME_B: GameStatus.FOUND}
    assert [
        (r.game_id, r.itch_user_id) for r in await store.redemptions_by_member(GUILD, ALICE)
    ] == [(GAME_B, 77)]
    assert ("remove", GUILD, ALICE, ROLE_A) in roles.changes
    # The first account is free for someone else now.
    assert (await links.link(GUILD, BOB, TOKEN)).outcome is LinkOutcome.LINKED


async def test_unlink_keeps_roles_a_key_also_gives(links, itch, store, client, roles, events):
    redemptions = RedemptionService(store, client, roles)
    key = "YWKse5jeAeuZ8w3a5qO2b2PId1sChw2B9b637w6z"
    itch.add_download_key(GAME_A, key, owner=AMOS)
    itch.add_download_key(GAME_B, owner=AMOS)
    await links.link(GUILD, ALICE, TOKEN)
    await redemptions.redeem(GUILD, ALICE, key)
    roles.calls.clear()
    result = await links.unlink(GUILD, ALICE)
    assert result.link.itch_user_id == 1994
    assert sorted(r.game_id for r in result.removed) == [GAME_A, GAME_B]
    assert result.roles_removed == (ROLE_B,)
    assert roles.changes == [("remove", GUILD, ALICE, ROLE_B)]
    (left,) = await store.redemptions_by_member(GUILD, ALICE)
    assert not left.by_account and left.game_id == GAME_A
    assert await store.itch_link(GUILD, ALICE) is None
    assert events.events[-1] == Revoked(
        GUILD,
        ALICE,
        ALICE,
        (GAME_A, GAME_B),
        (ROLE_B,),
        "the member unlinked their itch.io account",
    )
    assert (await links.unlink(GUILD, ALICE)).link is None  # nothing left to unlink


async def test_busy_budget_checks_games_one_at_a_time(store, session, itch, roles):
    slow = ItchClient(session, itch.api_key, base_url=itch.base_url, rate_limit=50, burst=1)
    itch.add_game(GAME_A, "X-Moon")
    itch.add_game(GAME_B, "Y-Sun")
    itch.add_user_token(TOKEN, AMOS)
    itch.add_download_key(GAME_B, owner=AMOS)
    await store.set_game_role(GUILD, GAME_A, ROLE_A, "X-Moon", None)
    await store.set_game_role(GUILD, GAME_B, ROLE_B, "Y-Sun", None)
    result = await LinkService(store, slow, roles).link(GUILD, ALICE, TOKEN)
    assert statuses(result) == {GAME_A: GameStatus.NOT_FOUND, GAME_B: GameStatus.FOUND}
    keys = [r for r in itch.requests if "download_keys" in r.path]
    assert [r.path for r in keys] == [
        f"/api/1/key/game/{GAME_A}/download_keys",
        f"/api/1/key/game/{GAME_B}/download_keys",
    ]


# -- the web server -----------------------------------------------------------------------------

PUBLIC = "https://links.example.test/itch"


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def web(links, store, clock):
    server = OAuthServer(
        links,
        store,
        StateSigner(SECRET, clock=clock),
        client_id="client-1",
        public_url=PUBLIC,
        host="127.0.0.1",
        port=0,
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def http(web):
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{web.port}") as s:
        yield s


def assert_secure(resp):
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]


async def post_token(http, token, state):
    async with http.post("/oauth/token", json={"access_token": token, "state": state}) as resp:
        assert_secure(resp)
        return resp.status, await resp.json()


async def test_callback_page_is_locked_down(web, http):
    async with http.get("/oauth/callback") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        assert_secure(resp)
        page = await resp.text()
        csp = resp.headers["Content-Security-Policy"]
    assert web.redirect_uri == f"{PUBLIC}/oauth/callback"
    assert f'data-token-url="{PUBLIC}/oauth/token"' in page
    # The only script is the inline one, allowed by its hash; it may only talk to /oauth/token.
    (script,) = re.findall(r"<script>(.*?)</script>", page, re.S)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp
    assert f"connect-src {PUBLIC}/oauth/token" in csp
    assert "unsafe-inline" not in csp
    assert "location.hash" in script and "history.replaceState" in script


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/oauth/token"),
        ("POST", "/oauth/callback"),
        ("GET", "/oauth/callback/x"),
        ("PUT", "/oauth/token"),
        ("OPTIONS", "/oauth/token"),
        ("GET", "/../etc/passwd"),
    ],
)
async def test_only_its_own_paths(http, method, path):
    async with http.request(method, path) as resp:
        assert resp.status == 404
        assert_secure(resp)
        assert "Access-Control-Allow-Origin" not in resp.headers


async def test_token_endpoint_refuses_what_is_not_a_small_json_body(web, http, store):
    state, _ = web.signer.issue(GUILD, ALICE)
    body = json.dumps({"access_token": TOKEN, "state": state})
    async with http.post("/oauth/token", data=body) as resp:  # no JSON content type
        assert resp.status == 415
    big = json.dumps({"access_token": TOKEN, "state": state, "pad": "x" * 5000})
    async with http.post(
        "/oauth/token", data=big, headers={"Content-Type": "application/json"}
    ) as resp:
        assert resp.status == 413
    for bad in ("[1]", "{", json.dumps({"access_token": 5, "state": state})):
        async with http.post(
            "/oauth/token", data=bad, headers={"Content-Type": "application/json"}
        ) as resp:
            assert resp.status == 400
    # None of these used the state up.
    status, _ = await post_token(http, TOKEN, state)
    assert status == 200


async def test_valid_state_links_once(web, http, itch, store, roles):
    itch.add_download_key(GAME_A, owner=AMOS)
    told = []

    async def listener(state, result):
        told.append((state.member_id, result.outcome))

    web.on_result = listener
    state, _ = web.signer.issue(GUILD, ALICE)
    status, body = await post_token(http, TOKEN, state)
    assert (status, body["ok"], body["title"]) == (200, True, "itch.io account linked")
    assert "X-Moon" in body["message"] and TOKEN not in json.dumps(body)
    assert told == [(ALICE, LinkOutcome.LINKED)]
    assert (await store.itch_link(GUILD, ALICE)).itch_user_id == 1994

    status, body = await post_token(http, TOKEN, state)
    assert (status, body["ok"], body["title"]) == (409, False, "This link was already used")
    assert len(told) == 1 and itch.count("/me") == 1


async def test_forged_and_expired_states_change_nothing(web, http, itch, store, clock):
    state, _ = web.signer.issue(GUILD, ALICE)
    for bad in _forged(state)[:4]:
        status, body = await post_token(http, TOKEN, bad)
        assert (status, body["title"]) == (403, "This link isn't valid")
    clock.now += 600
    status, body = await post_token(http, TOKEN, state)
    assert (status, body["title"]) == (410, "This link has expired")
    assert itch.count("/me") == 0
    assert await store.itch_link(GUILD, ALICE) is None


async def test_unavailable_itch_leaves_the_state_usable(web, http, itch, store):
    itch.add_download_key(GAME_A, owner=AMOS)
    itch.inject("503", "503", path_contains="/me")
    state, _ = web.signer.issue(GUILD, ALICE)
    status, body = await post_token(http, TOKEN, state)
    assert (status, body["title"], body["retry"]) == (503, "itch.io is unavailable", True)
    assert await store.itch_link(GUILD, ALICE) is None
    status, body = await post_token(http, TOKEN, state)  # the page's "Try again"
    assert status == 200 and body["ok"]


async def test_used_nonces_survive_a_restart(links, store, itch):
    """A replay is refused by the database, not only by the process that saw the first use."""
    signer = StateSigner(SECRET)
    state, info = signer.issue(GUILD, ALICE)
    assert await store.use_oauth_nonce(info.nonce, info.expires)
    server = OAuthServer(
        links, store, signer, client_id="c", public_url=PUBLIC, host="127.0.0.1", port=0
    )
    await server.start()
    try:
        async with (
            aiohttp.ClientSession() as s,
            s.post(
                f"http://127.0.0.1:{server.port}/oauth/token",
                json={"access_token": TOKEN, "state": state},
            ) as resp,
        ):
            assert resp.status == 409
    finally:
        await server.stop()


async def test_a_taken_port_names_the_setting(web, links, store):
    other = OAuthServer(
        links,
        store,
        StateSigner(SECRET),
        client_id="c",
        public_url=PUBLIC,
        host="127.0.0.1",
        port=web.port,
    )
    with pytest.raises(SettingsError) as info:
        await other.start()
    assert info.value.name == "OAUTH_LISTEN"


async def test_recheck_revokes_an_account_redemption_then_link_restores_it(
    links, itch, store, client, roles
):
    itch.add_download_key(GAME_A, "YWKse5jeAeuZ8w3a5qO2b2PId1sChw2B9b637w6z", owner=AMOS)
    await links.link(GUILD, ALICE, TOKEN)
    rechecker = Rechecker(RedemptionService(store, client, roles))
    itch.revoke_download_key("YWKse5jeAeuZ8w3a5qO2b2PId1sChw2B9b637w6z")  # refunded
    report = await rechecker.recheck_now(GUILD)
    assert (report.checked, report.revoked) == (1, 1)
    assert ("remove", GUILD, ALICE, ROLE_A) in roles.changes
    (row,) = await store.redemptions_by_member(GUILD, ALICE)
    assert not row.active and row.by_account
    # Bought again: /link brings the same record back to life.
    itch.add_download_key(GAME_A, owner=AMOS)
    result = await links.link(GUILD, ALICE, TOKEN)
    assert statuses(result)[GAME_A] is GameStatus.FOUND
    (row,) = await store.redemptions_by_member(GUILD, ALICE)
    assert row.active
