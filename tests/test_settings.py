import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.errors import SettingsError
from bot.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
BASE = {"DISCORD_TOKEN": "tok-secret", "ITCH_API_KEY": "itch-secret"}


def test_defaults():
    s = load_settings(BASE)
    assert s.itch_api_base == "https://itch.io/api/1"
    assert s.database_path == Path("data/bot.db")
    assert s.discord_guild_id is None
    assert s.itch_rate_limit == 8.0
    assert s.itch_rate_burst == 15
    assert s.log_level == "INFO"
    assert "tok-secret" not in repr(s) and "itch-secret" not in repr(s)
    assert s.discord_token.get() == "tok-secret"


def test_values_parsed():
    s = load_settings(
        {
            **BASE,
            "ITCH_API_BASE": "http://127.0.0.1:9/api/1/",
            "DATABASE_URL": "sqlite:////tmp/x/bot.db",
            "DISCORD_GUILD_ID": "123",
            "ITCH_RATE_LIMIT": "2.5",
            "LOG_LEVEL": "debug",
        }
    )
    assert s.itch_api_base == "http://127.0.0.1:9/api/1"
    assert s.database_path == Path("/tmp/x/bot.db")
    assert s.discord_guild_id == 123
    assert s.itch_rate_limit == 2.5
    assert s.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({}, "DISCORD_TOKEN"),
        ({"DISCORD_TOKEN": "x"}, "ITCH_API_KEY"),
        ({**BASE, "DATABASE_URL": "postgres://x"}, "DATABASE_URL"),
        ({**BASE, "DISCORD_GUILD_ID": "abc"}, "DISCORD_GUILD_ID"),
        ({**BASE, "ITCH_RATE_LIMIT": "0"}, "ITCH_RATE_LIMIT"),
        ({**BASE, "ITCH_RATE_LIMIT": "fast"}, "ITCH_RATE_LIMIT"),
        ({**BASE, "LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({**BASE, "ITCH_API_BASE": "itch.io"}, "ITCH_API_BASE"),
    ],
)
def test_invalid_settings_name_the_setting(env, name):
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    assert info.value.name == name


def run_module(tmp_path, env_overrides, dotenv=None):
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "DISCORD_TOKEN",
            "ITCH_API_KEY",
            "DATABASE_URL",
            "ITCH_API_BASE",
            "DISCORD_GUILD_ID",
        )
    }
    env.update(env_overrides)
    if dotenv is not None:
        (tmp_path / ".env").write_text(dotenv)
    return subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_missing_setting_exits_with_one_line(tmp_path):
    proc = run_module(tmp_path, {})
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "DISCORD_TOKEN" in lines[0]
    assert "Traceback" not in proc.stderr


def test_dotenv_read_and_real_environment_wins(tmp_path):
    # .env supplies the token; the real environment's invalid value for the rate wins.
    proc = run_module(
        tmp_path,
        {"ITCH_RATE_LIMIT": "-1"},
        dotenv="DISCORD_TOKEN=from-dotenv\nITCH_API_KEY=k\nITCH_RATE_LIMIT=5\n",
    )
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "ITCH_RATE_LIMIT" in proc.stderr
    assert "from-dotenv" not in proc.stderr
