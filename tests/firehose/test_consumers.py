import itertools

import pytest

from roost.firehose.consumers import ConsumerError, Registry
from roost.firehose.filters import (
    Entitlements,
    EventFilter,
    NotEntitledError,
    StreamRequest,
    decode_views,
    narrow,
)
from roost.firehose.log import Log, LogWriter
from tests.firehose.events import make_events


def test_keys_are_shown_once_and_stored_only_hashed(tmp_path) -> None:
    registry = Registry(tmp_path / "consumers.db")
    _, key = registry.add("acme", Entitlements(languages=["en"]))
    admin, admin_key = registry.add_admin_key("ops")
    registry.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert key.encode() not in raw and key.split("_")[-1].encode() not in raw
    assert admin_key.split("_")[-1].encode() not in raw
    registry = Registry(tmp_path / "consumers.db")
    assert registry.authenticate(key).name == "acme"
    assert registry.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert registry.authenticate(admin_key) is None  # an admin key is not a consumer key
    assert registry.check_admin(admin_key).key_id == admin.key_id
    assert registry.check_admin(key) is None
    assert registry.authenticate("") is None and registry.authenticate("rfh_zz") is None


def test_revocation_is_permanent_and_audited(tmp_path) -> None:
    registry = Registry(tmp_path / "consumers.db")
    _, key = registry.add("acme")
    registry.revoke("acme")
    assert registry.authenticate(key).revoked  # found, and known to be revoked (403, not 401)
    with pytest.raises(ConsumerError, match="exists"):
        registry.add("acme")
    with pytest.raises(ConsumerError, match="revoked"):
        registry.entitle("acme", Entitlements())
    actions = [e.action for e in registry.audit_log(consumer="acme")]
    assert actions == ["revoke", "add"]


def test_entitle_replaces_and_records_before_and_after(tmp_path) -> None:
    registry = Registry(tmp_path / "consumers.db")
    registry.add("acme")
    registry.entitle("acme", Entitlements(languages=["en", "es"], sample_rate=0.5), max_connections=5)
    consumer = registry.get("acme")
    assert consumer.entitlements.languages == ["en", "es"] and consumer.max_connections == 5
    entry = registry.audit_log(consumer="acme", limit=1)[0]
    assert entry.action == "entitle" and entry.detail["after"]["entitlements"]["sample_rate"] == 0.5


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"languages": ["EN"]}, "ISO 639"),
        ({"keywords": [""]}, "not blank"),
        ({"keywords": ["a,b"]}, "commas"),
        ({"sample_rate": 0}, r"\(0, 1\]"),
        ({"sample_rate": 1.5}, r"\(0, 1\]"),
    ],
)
def test_bad_entitlements_say_what_is_wrong(bad, message) -> None:
    with pytest.raises(ValueError, match=message):
        Entitlements(**bad)


def test_a_request_may_narrow_but_never_widen() -> None:
    granted = Entitlements(languages=["en", "es"], sample_rate=0.5, reposts=False)
    assert narrow(granted, StreamRequest(languages=["en"])).languages == ["en"]
    assert narrow(granted, StreamRequest(sample_rate=0.1)).sample_rate == 0.1
    for wider in (
        StreamRequest(languages=["ja"]),
        StreamRequest(sample_rate=0.9),
        StreamRequest(reposts=True),
    ):
        with pytest.raises(NotEntitledError):
            narrow(granted, wider)
    keyworded = Entitlements(keywords=["climate", "#news"])
    assert narrow(keyworded, StreamRequest(keywords=["#NEWS"])).keywords == ["#news"]
    with pytest.raises(NotEntitledError, match="sports"):
        narrow(keyworded, StreamRequest(keywords=["sports"]))


@pytest.fixture(scope="module")
def chunk(tmp_path_factory):
    path = tmp_path_factory.mktemp("log")
    with LogWriter(path) as writer:
        writer.append(list(itertools.islice(make_events(3), 3000)))
    return Log(path).read_chunk(0, max_bytes=1 << 30)


def _kept(chunk, entitlements):
    events = chunk.events()
    views = decode_views(chunk)
    keep = EventFilter(entitlements).keep
    return [e for e, v in zip(events, views, strict=True) if keep(v)]


def test_filters_pass_every_delete_and_only_what_is_entitled(chunk) -> None:
    events = chunk.events()
    all_deletes = [e.id for e in events if e.type == "delete"]
    cases = {
        "lang": (Entitlements(languages=["en"]), lambda p: p.lang == "en"),
        "no reposts": (Entitlements(reposts=False), lambda p: p.repost_of is None),
        "hashtag": (Entitlements(keywords=["#climate"]), lambda p: "climate" in p.hashtags),
        "word": (Entitlements(keywords=["coffee"]), lambda p: "coffee" in p.text.split()),
    }
    for name, (entitlements, wanted) in cases.items():
        kept = _kept(chunk, entitlements)
        posts = [e.post for e in kept if e.type == "post"]
        assert posts == [e.post for e in events if e.type == "post" and wanted(e.post)], name
        assert [e.id for e in kept if e.type == "delete"] == all_deletes, name


def test_sampling_is_stable_and_nested(chunk) -> None:
    tenth = {e.id for e in _kept(chunk, Entitlements(sample_rate=0.1)) if e.type == "post"}
    half = {e.id for e in _kept(chunk, Entitlements(sample_rate=0.5)) if e.type == "post"}
    posts = sum(1 for e in chunk.events() if e.type == "post")
    assert 0.05 * posts < len(tenth) < 0.15 * posts and 0.4 * posts < len(half) < 0.6 * posts
    assert tenth < half
    assert tenth == {e.id for e in _kept(chunk, Entitlements(sample_rate=0.1)) if e.type == "post"}


def test_select_returns_the_kept_lines_bytes(chunk) -> None:
    entitlements = Entitlements(languages=["ja"])
    selected = EventFilter(entitlements).select(chunk, decode_views(chunk), start=10)
    expected = b"".join(
        chunk.line(i)
        for i, v in enumerate(decode_views(chunk))
        if i >= 10 and EventFilter(entitlements).keep(v)
    )
    assert selected == expected
    assert EventFilter(Entitlements()).select(chunk, None) is chunk.data  # shared, not copied
