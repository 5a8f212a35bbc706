"""Typed settings, read once at start-up from the environment (and `.env`, which the real
environment overrides)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bot.errors import SettingsError

DEFAULT_ITCH_API_BASE = "https://itch.io/api/1"
DEFAULT_DATABASE_URL = "sqlite:///data/bot.db"


class Secret:
    """A string that never shows itself in a repr, a log line or a traceback's locals."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    discord_token: Secret
    itch_api_key: Secret
    itch_api_base: str = DEFAULT_ITCH_API_BASE
    database_path: Path = Path("data/bot.db")
    discord_guild_id: int | None = None
    itch_rate_limit: float = 8.0
    itch_rate_burst: int = 15
    log_level: str = "INFO"
    # Where discord.py talks to Discord: only for a proxy or a test double.
    discord_api_base: str | None = None
    discord_gateway_url: str | None = None


def database_path_from_url(url: str) -> Path:
    """`sqlite:///relative/path.db` or `sqlite:////absolute/path.db`, SQLAlchemy-style."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise SettingsError(
            "DATABASE_URL", "expected sqlite:///relative/path.db or sqlite:////abs/path.db"
        )
    return Path(url[len(prefix) :])


def _required(env: Mapping[str, str], name: str) -> Secret:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(name, "is required but not set (see .env.example)")
    return Secret(value)


def _optional_int(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise SettingsError(name, f"must be a number (a Discord id), got {raw!r}")
    return int(raw)


def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(name, f"must be a number, got {raw!r}") from None
    if not value > 0:
        raise SettingsError(name, f"must be greater than 0, got {raw!r}")
    return value


def load_settings(env: Mapping[str, str]) -> Settings:
    """Validate every setting; the first problem raises SettingsError naming the setting."""
    discord_token = _required(env, "DISCORD_TOKEN")
    itch_api_key = _required(env, "ITCH_API_KEY")

    base = env.get("ITCH_API_BASE", "").strip() or DEFAULT_ITCH_API_BASE
    if not base.startswith(("http://", "https://")):
        raise SettingsError("ITCH_API_BASE", f"must be an http(s) URL, got {base!r}")

    database_path = database_path_from_url(
        env.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL
    )

    log_level = (env.get("LOG_LEVEL", "").strip() or "INFO").upper()
    if log_level not in logging.getLevelNamesMapping():
        raise SettingsError(
            "LOG_LEVEL", f"must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}"
        )

    burst = _positive_float(env, "ITCH_RATE_BURST", 15)
    discord_api_base = env.get("DISCORD_API_BASE", "").strip() or None
    if discord_api_base and not discord_api_base.startswith(("http://", "https://")):
        raise SettingsError("DISCORD_API_BASE", f"must be an http(s) URL, got {discord_api_base!r}")
    gateway = env.get("DISCORD_GATEWAY_URL", "").strip() or None
    if gateway and not gateway.startswith(("ws://", "wss://")):
        raise SettingsError("DISCORD_GATEWAY_URL", f"must be a ws(s) URL, got {gateway!r}")
    return Settings(
        discord_token=discord_token,
        itch_api_key=itch_api_key,
        itch_api_base=base.rstrip("/"),
        database_path=database_path,
        discord_guild_id=_optional_int(env, "DISCORD_GUILD_ID"),
        itch_rate_limit=_positive_float(env, "ITCH_RATE_LIMIT", 8.0),
        itch_rate_burst=max(1, int(burst)),
        log_level=log_level,
        discord_api_base=discord_api_base,
        discord_gateway_url=gateway,
    )
