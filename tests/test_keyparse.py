import pytest

from bot.errors import MalformedKey
from bot.keyparse import fingerprint, key_hash, normalize_game_url, parse_key

KEY = "YWKse5jeAeuZ8w3a5qO2b2PId1sChw2B9b637w6z"


def test_any_base62_key_goes_to_itch():
    # Only itch.io knows which keys exist: a short base62 string is still asked about.
    assert parse_key("abc123").key == "abc123"


def test_bare_key():
    parsed = parse_key(f"  {KEY}\n")
    assert parsed.key == KEY
    assert parsed.game_url is None


@pytest.mark.parametrize(
    "url",
    [
        f"https://leafo.itch.io/x-moon/download/{KEY}",
        f"http://leafo.itch.io/x-moon/download/{KEY}/",
        f"leafo.itch.io/x-moon/download/{KEY}",
        f"https://Leafo.Itch.IO/X-Moon/download/{KEY}",
    ],
)
def test_download_url_reduced_to_key(url):
    parsed = parse_key(url)
    assert parsed.key == KEY
    assert parsed.game_url == "https://leafo.itch.io/x-moon"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("a" * 201, "too long"),
        ("abc def ghi jkl mno pqr stu", "contains spaces"),
        ("not_a_key", "not a download key"),
        ("ключ123", "not a download key"),
        ("key-with-dashes-0123456789", "not a download key"),
        (f"https://evil.example.com/x/download/{KEY}", "not an itch.io download URL"),
        (f"https://leafo.itch.io/x-moon/{KEY}", "not an itch.io download URL"),
        ("https://leafo.itch.io/x-moon/download/sh-rt", "not an itch.io download URL"),
        (f"ftp://leafo.itch.io/x-moon/download/{KEY}", "not an itch.io download URL"),
        (f"https://itch.io.evil.com/x/download/{KEY}", "not an itch.io download URL"),
    ],
)
def test_malformed_refused(text, reason):
    with pytest.raises(MalformedKey) as info:
        parse_key(text)
    assert info.value.reason == reason


def test_repr_never_shows_key():
    parsed = parse_key(KEY)
    assert KEY not in repr(parsed)
    assert fingerprint(KEY) in repr(parsed)
    assert len(key_hash(KEY)) == 64
    assert fingerprint(KEY) == key_hash(KEY)[:12]


def test_normalize_game_url():
    assert normalize_game_url("http://leafo.itch.io/x-moon/") == "https://leafo.itch.io/x-moon"
    assert normalize_game_url(None) is None
