"""The application's exceptions: one small hierarchy, mapped to friendly replies in one place."""

from __future__ import annotations


class BotError(Exception):
    """Base of every error the application raises on purpose."""


class SettingsError(BotError):
    """A required setting is missing or invalid; `name` is the setting's name."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem


class ItchError(BotError):
    """Base of errors from talking to itch.io."""


class ItchRefused(ItchError):
    """itch.io answered with an `errors` array (e.g. "invalid download key")."""

    def __init__(self, messages: list[str], status: int) -> None:
        super().__init__("itch.io refused: " + "; ".join(messages))
        self.messages = messages
        self.status = status


class ItchMisconfigured(ItchRefused):
    """itch.io rejected our own API key ("invalid key"): an operator must fix the settings."""


class ItchUnavailable(ItchError):
    """itch.io could not be reached or did not answer with its JSON, even after retries."""


class MalformedKey(BotError):
    """The text given is neither a download key nor a download URL."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
