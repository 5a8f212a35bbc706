"""Typed settings, read once at start-up from the environment (and `.env`, which the real
environment overrides)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
    recheck_interval_hours: float = 24.0
    recheck_max_failure_percent: float = 20.0
    # Where discord.py talks to Discord: only for a proxy or a test double.
    discord_api_base: str | None = None
    discord_gateway_url: str | None = None
    # Linking itch.io accounts (/link): off without a client id; out-of-band without a public
    # URL; with one, the bot serves the OAuth redirect itself on OAUTH_LISTEN.
    itch_oauth_client_id: str | None = None
    oauth_public_url: str | None = None
    oauth_listen_host: str = "127.0.0.1"
    oauth_listen_port: int = 8080
    oauth_state_secret: Secret | None = None


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


def _non_negative_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(name, f"must be a number, got {raw!r}") from None
    if value < 0:
        raise SettingsError(name, f"must be 0 or more, got {raw!r}")
    return value


def _itch_api_base(env: Mapping[str, str]) -> str:
    base = env.get("ITCH_API_BASE", "").strip() or DEFAULT_ITCH_API_BASE
    if not base.startswith(("http://", "https://")):
        raise SettingsError("ITCH_API_BASE", f"must be an http(s) URL, got {base!r}")
    return base


DEFAULT_OAUTH_LISTEN = "127.0.0.1:8080"
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def _listen_address(raw: str) -> tuple[str, int]:
    """`host:port` (`[::]:8080` for IPv6); port 0 picks a free port."""
    host, _, port = raw.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not host or not port.isdigit() or int(port) > 65535:
        raise SettingsError("OAUTH_LISTEN", f"must be host:port like 127.0.0.1:8080, got {raw!r}")
    return host, int(port)


def _oauth_settings(env: Mapping[str, str]) -> dict[str, Any]:
    client_id = env.get("ITCH_OAUTH_CLIENT_ID", "").strip() or None
    if client_id and (len(client_id) > 200 or not client_id.isprintable() or " " in client_id):
        raise SettingsError("ITCH_OAUTH_CLIENT_ID", "must be the client id itch.io showed")
    public = env.get("OAUTH_PUBLIC_URL", "").strip().rstrip("/") or None
    if public:
        if not client_id:
            raise SettingsError(
                "OAUTH_PUBLIC_URL", "is set, but ITCH_OAUTH_CLIENT_ID is not: linking needs both"
            )
        parts = urlsplit(public)
        local = parts.hostname in _LOCAL_HOSTS
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.query
            or parts.fragment
            or any(ch in public for ch in " ;,'\"")  # it goes into a header and a page
            or (parts.scheme == "http" and not local)
        ):
            raise SettingsError(
                "OAUTH_PUBLIC_URL",
                f"must be an https URL like https://bot.example.com, got {public!r}",
            )
    host, port = _listen_address(env.get("OAUTH_LISTEN", "").strip() or DEFAULT_OAUTH_LISTEN)
    secret = env.get("OAUTH_STATE_SECRET", "").strip()
    if public and not secret:
        raise SettingsError(
            "OAUTH_STATE_SECRET", "is required when OAUTH_PUBLIC_URL is set (see .env.example)"
        )
    if secret and len(secret) < 32:
        raise SettingsError("OAUTH_STATE_SECRET", "must be at least 32 characters long")
    return {
        "itch_oauth_client_id": client_id,
        "oauth_public_url": public,
        "oauth_listen_host": host,
        "oauth_listen_port": port,
        "oauth_state_secret": Secret(secret) if secret else None,
    }


def load_settings(env: Mapping[str, str]) -> Settings:
    """Validate every setting; the first problem raises SettingsError naming the setting."""
    discord_token = _required(env, "DISCORD_TOKEN")
    itch_api_key = _required(env, "ITCH_API_KEY")

    base = _itch_api_base(env)

    database_path = database_path_from_url(
        env.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL
    )

    log_level = (env.get("LOG_LEVEL", "").strip() or "INFO").upper()
    if log_level not in logging.getLevelNamesMapping():
        raise SettingsError(
            "LOG_LEVEL", f"must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}"
        )

    burst = _positive_float(env, "ITCH_RATE_BURST", 15)
    recheck_hours = _non_negative_float(env, "RECHECK_INTERVAL_HOURS", 24.0)
    failure_percent = _non_negative_float(env, "RECHECK_MAX_FAILURE_PERCENT", 20.0)
    if failure_percent > 100:
        raise SettingsError("RECHECK_MAX_FAILURE_PERCENT", "must be between 0 and 100")
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
        recheck_interval_hours=recheck_hours,
        recheck_max_failure_percent=failure_percent,
        discord_api_base=discord_api_base,
        discord_gateway_url=gateway,
        **_oauth_settings(env),
    )


@dataclass(frozen=True)
class ItchSettings:
    """What the shell commands that only ask itch.io need (`check-key`, `games`): no Discord
    token and no database, so they work before the bot is set up."""

    api_key: Secret
    api_base: str = DEFAULT_ITCH_API_BASE
    rate_limit: float = 8.0
    rate_burst: int = 15


def load_itch_settings(env: Mapping[str, str]) -> ItchSettings:
    """The itch.io settings alone, validated like `load_settings` validates them."""
    api_key = _required(env, "ITCH_API_KEY")
    base = _itch_api_base(env)
    burst = _positive_float(env, "ITCH_RATE_BURST", 15)
    return ItchSettings(
        api_key=api_key,
        api_base=base.rstrip("/"),
        rate_limit=_positive_float(env, "ITCH_RATE_LIMIT", 8.0),
        rate_burst=max(1, int(burst)),
    )
