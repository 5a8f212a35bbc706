"""Turning what a member typed into a download key, without asking itch.io anything."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from bot.errors import MalformedKey

MAX_INPUT_LENGTH = 200
# itch.io download keys are base62 strings (the reference's sample has 40 characters). Any
# length is let through to itch.io: only itch.io knows which keys exist.
_KEY_RE = re.compile(r"[A-Za-z0-9]+")
_DOWNLOAD_PATH_RE = re.compile(r"^(?P<game>/[^/]+)/download/(?P<key>[^/]+)/?$")


@dataclass(frozen=True)
class ParsedKey:
    key: str
    # The game page the key came from, e.g. "https://leafo.itch.io/x-moon", when a URL was given.
    game_url: str | None = None

    def __repr__(self) -> str:  # never show the key itself
        return f"ParsedKey(fingerprint={fingerprint(self.key)!r}, game_url={self.game_url!r})"


def key_hash(key: str) -> str:
    """SHA-256 of the key, hex: what the store keeps instead of the key."""
    return hashlib.sha256(key.encode()).hexdigest()


def fingerprint(key: str) -> str:
    """A short, safe way to name a key to admins."""
    return key_hash(key)[:12]


def parse_key(text: str) -> ParsedKey:
    """Accept a bare download key or a whole download URL; refuse everything else."""
    text = (text or "").strip()
    if not text:
        raise MalformedKey("empty")
    if len(text) > MAX_INPUT_LENGTH:
        raise MalformedKey("too long")
    if any(ch.isspace() for ch in text):
        raise MalformedKey("contains spaces")

    if "/" in text or "." in text:
        candidate = text if "://" in text else "https://" + text
        parts = urlsplit(candidate)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not (
            host == "itch.io" or host.endswith(".itch.io")
        ):
            raise MalformedKey("not an itch.io download URL")
        match = _DOWNLOAD_PATH_RE.match(parts.path)
        if not match or not _KEY_RE.fullmatch(match["key"]):
            raise MalformedKey("not an itch.io download URL")
        return ParsedKey(key=match["key"], game_url=normalize_game_url(f"{host}{match['game']}"))

    if not _KEY_RE.fullmatch(text):
        raise MalformedKey("not a download key")
    return ParsedKey(key=text)


def normalize_game_url(url: str | None) -> str | None:
    """Game page URLs compared without scheme, case or trailing slash."""
    if not url:
        return None
    parts = urlsplit(url if "://" in url else "https://" + url)
    host = (parts.hostname or "").lower()
    path = parts.path.rstrip("/").lower()
    return f"https://{host}{path}" if host else None
