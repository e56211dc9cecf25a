from roost.apikeys import ApiKeyStore, new_key, parse_key


def test_key_is_shown_once_stored_hashed_and_revocable(tmp_path) -> None:
    store = ApiKeyStore(tmp_path / "keys.db")
    record, key = store.add("demo")
    assert key.startswith("rk_") and store.authenticate(key) == record
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("keys.db*"))
    assert record.key_id.encode() in stored and key.split("_", 2)[2].encode() not in stored
    assert store.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert store.authenticate("rk_0000000000000000_" + "x" * 43) is None
    assert store.authenticate("not a key") is None
    store.revoke(record.key_id)
    assert store.authenticate(key) is None
    assert store.list()[0].revoked


def test_prefixes_do_not_cross() -> None:
    key, key_id, digest = new_key("rfh")
    assert parse_key(key, "rfh") == (key_id, digest)
    assert parse_key(key, "rk") is None
