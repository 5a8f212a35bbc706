"""Sealing download keys so itch.io can be asked about them again, without keeping them in clear.

The database holds AES-GCM ciphertext under a key derived from the bot's itch.io API key: a copy
of the database alone reveals no download key. If the API key changes, older sealed keys can no
longer be opened; re-checks then fall back to the itch.io account id when the key was claimed.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"
_INFO = b"itch-role-bot download key sealing v1"


class KeySealer:
    def __init__(self, secret: str) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
            secret.encode()
        )
        self._aead = AESGCM(derived)

    def __repr__(self) -> str:
        return "KeySealer(***)"

    def seal(self, key: str, *, context: bytes) -> bytes:
        """`context` (e.g. guild and game) is bound in, so a sealed key can't be moved around."""
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, key.encode(), context)

    def open(self, sealed: bytes, *, context: bytes) -> str | None:
        if not sealed or sealed[:1] != _VERSION or len(sealed) < 13 + 16:
            return None
        try:
            return self._aead.decrypt(sealed[1:13], sealed[13:], context).decode()
        except (InvalidTag, UnicodeDecodeError):
            return None


def seal_context(guild_id: int, game_id: int) -> bytes:
    return f"{guild_id}:{game_id}".encode()
