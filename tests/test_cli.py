"""`python -m bot check-key` and `python -m bot games` against the loopback itch.io."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sys
from pathlib import Path

import pytest

from bot.__main__ import OneLineFormatter
from bot.cli import check_key, list_games, run_command
from bot.keyparse import fingerprint
from bot.settings import ItchSettings, Secret

ROOT = Path(__file__).resolve().parents[1]
KEY = "YWKse5jeAeuZ8w3a5qO2b2PId1sChw2B9b637w6z"
FAST_ITCH = {"timeout": 0.5, "max_attempts": 2, "backoff_base": 0.01, "deadline": 3.0}


@pytest.fixture
def settings(itch) -> ItchSettings:
    itch.add_game(3, "X-Moon", url="http://leafo.itch.io/x-moon")
    itch.add_game(12, "Y-Sun", url="https://leafo.itch.io/y-sun", published=False)
    return ItchSettings(api_key=Secret(itch.api_key), api_base=itch.base_url)


async def check(settings, game_id, text) -> tuple[int, str]:
    out = io.StringIO()
    status = await check_key(settings, game_id, text, out, itch_options=FAST_ITCH)
    return status, out.getvalue()


async def games(settings) -> tuple[int, str]:
    out = io.StringIO()
    return await list_games(settings, out, itch_options=FAST_ITCH), out.getvalue()


async def test_valid_claimed_key(itch, settings):
    itch.add_download_key(3, KEY, owner={"id": 1994, "username": "amos"}, key_id=124, downloads=74)
    status, text = await check(settings, 3, KEY)
    assert status == 0
    assert text.splitlines() == [
        f"valid: itch.io knows key {fingerprint(KEY)} for game 3",
        "  owner:     amos (itch.io user 1994)",
        "  game:      3",
        "  created:   2024-01-02 03:04:05 UTC",
        "  downloads: 74",
        "  key id:    124",
    ]
    # Asked once, with the key in the query and the API key only in the header.
    (request,) = itch.requests
    assert request.path == "/api/1/key/game/3/download_keys"
    assert request.query == {"download_key": KEY}
    assert request.authorization == f"Bearer {itch.api_key}"
    assert KEY not in text


async def test_unclaimed_key_given_as_download_url(itch, settings):
    itch.add_download_key(3, KEY)
    status, text = await check(settings, 3, f"https://leafo.itch.io/x-moon/download/{KEY}")
    assert status == 0
    assert "  owner:     unclaimed (no itch.io account has claimed this key)" in text
    assert "  game:      3 (from https://leafo.itch.io/x-moon)" in text
    assert KEY not in text


async def test_refused_key_prints_itch_message(itch, settings):
    itch.add_download_key(12, KEY)  # a key of the other game
    status, text = await check(settings, 3, KEY)
    assert status == 1
    assert text.splitlines() == [
        f'refused: itch.io says "invalid download key" about key {fingerprint(KEY)} for game 3.',
        "The key is mistyped, was refunded or revoked, or belongs to another game.",
    ]


async def test_unknown_game_points_at_games(itch, settings):
    status, text = await check(settings, 999, KEY)
    assert status == 1
    assert 'itch.io says "invalid game"' in text
    assert "Run `python -m bot games` to see the ids of your games." in text


async def test_bad_api_key(itch, settings):
    bad = ItchSettings(api_key=Secret("not-the-key"), api_base=itch.base_url)
    status, text = await check(bad, 3, KEY)
    assert status == 1
    assert text.startswith("itch.io refused the API key (ITCH_API_KEY): invalid key.")
    assert "not-the-key" not in text


async def test_itch_unavailable(itch, settings):
    itch.always_fail = "503"
    status, text = await check(settings, 3, KEY)
    assert status == 3
    assert text.startswith("itch.io did not answer (")
    assert KEY not in text


async def test_malformed_input_asks_nothing(itch, settings):
    status, text = await check(settings, 3, "not a key")
    assert status == 2
    assert "not an itch.io download key or download URL (contains spaces)" in text
    assert itch.requests == []


async def test_games_lists_id_title_url(itch, settings):
    status, text = await games(settings)
    assert status == 0
    assert text.splitlines() == [
        "ID  TITLE                URL",
        "3   X-Moon               http://leafo.itch.io/x-moon",
        "12  Y-Sun (unpublished)  https://leafo.itch.io/y-sun",
        "",
        "Link one to a role in Discord with `/keys game add game_id:<ID> role:<role>`.",
    ]


async def test_games_of_an_account_without_games(itch):
    itch.add_api_key("someone-else")
    status, text = await games(ItchSettings(api_key=Secret("someone-else"), api_base=itch.base_url))
    assert status == 0
    assert text.startswith("The API key's account has no games.")


async def test_games_needs_profile_games_scope(itch, settings):
    itch.add_api_key(itch.api_key, scopes=["game:view:purchases"])
    status, text = await games(settings)
    assert status == 1
    assert 'itch.io refused my-games: "invalid scope"' in text


async def run_cli(itch, tmp_path, *args) -> tuple[int, str, str]:
    """`python -m bot ...` with the itch.io settings only: no DISCORD_TOKEN, no database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "ITCH_"))}
    env.update(ITCH_API_KEY=itch.api_key, ITCH_API_BASE=itch.base_url, PYTHONPATH=str(ROOT))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode, out.decode(), err.decode()


async def test_shell_commands_need_only_itch_settings(itch, settings, tmp_path):
    itch.add_download_key(3, KEY)
    (games_rc, games_out, games_err), (key_rc, key_out, key_err) = await asyncio.gather(
        run_cli(itch, tmp_path, "games"), run_cli(itch, tmp_path, "check-key", "3", KEY)
    )
    assert games_rc == 0 and "3   X-Moon" in games_out, games_err
    assert key_rc == 0 and key_out.startswith("valid: itch.io knows key"), key_err
    assert not (tmp_path / "data").exists()  # no database was made
    for text in (games_out, games_err, key_out, key_err):
        assert KEY not in text and itch.api_key not in text


def test_usage_and_setting_errors(capsys):
    assert run_command("check-key", ["three", KEY], {"ITCH_API_KEY": "x"}) == 2
    assert "GAME_ID must be a number" in capsys.readouterr().err
    assert run_command("games", ["extra"], {"ITCH_API_KEY": "x"}) == 2
    assert "games takes no arguments" in capsys.readouterr().err
    assert run_command("games", [], {"DISCORD_TOKEN": "t"}) == 2
    err = capsys.readouterr().err
    assert err == "Setting ITCH_API_KEY is required but not set (see .env.example)\n"


def test_log_lines_are_one_line_per_event():
    formatter = OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("bot", logging.ERROR, __file__, 1, "it %s", ("failed",), None)
        record.exc_info = sys.exc_info()
    line = formatter.format(record)
    assert "\n" not in line
    assert " ERROR bot: it failed | Traceback (most recent call last):" in line
    assert line.endswith("ValueError: boom")
