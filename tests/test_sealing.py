from bot.sealing import KeySealer, seal_context

KEY = "YWKse5jeAeuZ8w3a5qO2b2PId1sChw2B9b637w6z"


def test_seal_round_trip_and_never_clear():
    sealer = KeySealer("api-key")
    sealed = sealer.seal(KEY, context=seal_context(1, 3))
    assert KEY.encode() not in sealed
    assert sealer.open(sealed, context=seal_context(1, 3)) == KEY
    # Fresh nonce each time.
    assert sealer.seal(KEY, context=seal_context(1, 3)) != sealed
    assert "api-key" not in repr(sealer)


def test_sealed_key_bound_to_its_guild_game_and_secret():
    sealed = KeySealer("api-key").seal(KEY, context=seal_context(1, 3))
    assert KeySealer("api-key").open(sealed, context=seal_context(2, 3)) is None
    assert KeySealer("api-key").open(sealed, context=seal_context(1, 4)) is None
    assert KeySealer("other-key").open(sealed, context=seal_context(1, 3)) is None
    assert KeySealer("api-key").open(b"garbage", context=seal_context(1, 3)) is None
    assert KeySealer("api-key").open(sealed[:-1] + b"x", context=seal_context(1, 3)) is None
