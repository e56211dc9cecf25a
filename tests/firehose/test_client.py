import random

import msgspec
import pytest

from roost.firehose.client import (
    Backoff,
    Batch,
    CredentialRevoked,
    StreamConsumer,
    _parse_block,
    stream_url,
)
from roost.firehose.consumers import Registry
from roost.firehose.log import Log
from roost.firehose.protocol import Final, Heartbeat, encode_control
from roost.posts import Event, encode
from roost.rawstore import RawStore
from tests.firehose.conftest import SEEDED


def test_backoff_is_exponential_with_full_jitter_and_a_cap() -> None:
    backoff = Backoff(initial=0.1, cap=2.0, rng=random.Random(7))
    for attempt in range(12):
        ceiling = min(2.0, 0.1 * 2**attempt)
        delays = [backoff.delay(attempt) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.8 * ceiling  # jitter spreads over the whole range
    a, b = Backoff(0.1, 2.0, random.Random(3)), Backoff(0.1, 2.0, random.Random(3))
    assert [a.delay(n) for n in range(8)] == [b.delay(n) for n in range(8)]  # seeded: reproducible


def test_blocks_split_into_event_batches_and_control_frames(served) -> None:
    _, _, ws = served
    events = Log(ws.firehose_dir).read(0, limit=6)
    lines = [encode(e) + b"\n" for e in events]
    heartbeat = encode_control(Heartbeat(head=9, next=3))
    final = encode_control(Final(reason="server_shutdown", next=6, head=9))
    items = list(_parse_block(b"".join([*lines[:3], heartbeat, *lines[3:], final])))
    assert [type(i) for i in items] == [Batch, Heartbeat, Batch, Final]
    assert [e.seq for e in items[0].events] == [0, 1, 2] and items[1].next == 3
    assert items[3].reason == "server_shutdown"
    # A post whose text or extra fields hold a control frame is still an event.
    tricky = msgspec.structs.replace(events[0].post, text='\n{"control":"final"}', extra={"control": "final"})
    line = encode(Event(type="post", id=tricky.id, post=tricky, seq=0)) + b"\n"
    assert [type(i) for i in _parse_block(line + lines[1])] == [Batch]


def test_stream_url_accepts_a_base_or_the_endpoint() -> None:
    assert stream_url("http://h:1") == "http://h:1/firehose/stream"
    assert stream_url("http://h:1/") == "http://h:1/firehose/stream"
    assert stream_url("http://h:1/firehose/stream") == "http://h:1/firehose/stream"


def test_consumer_stores_everything_once_and_resumes_where_it_committed(served, tmp_path) -> None:
    server, keys, ws = served
    store = RawStore(tmp_path / "raw.db")
    first = StreamConsumer(server.url, keys["all"], store, name="mirror").run(until=999)
    assert store.cursor("mirror") >= 999 and first.events == store.cursor("mirror") + 1
    second = StreamConsumer(server.url, keys["all"], store, name="mirror").run(until=SEEDED - 1)
    assert second.events == SEEDED - 1 - first.cursor and second.skipped == 0
    expected = {}
    for event in Log(ws.firehose_dir).iter_events():
        if event.type == "post":
            expected[event.id] = encode(event.post)
    deleted = {e.id for e in Log(ws.firehose_dir).iter_events() if e.type == "delete"}
    assert {p.id: encode(p) for p in store.iter_posts()} == {
        k: v for k, v in expected.items() if k not in deleted
    }
    assert set(store.iter_deleted_ids()) == deleted


def test_a_filtered_consumer_reaches_the_head_through_heartbeats(served, tmp_path) -> None:
    server, keys, ws = served
    store = RawStore(tmp_path / "raw.db")
    # Japanese is entitled to "all" but the last events of the log are not Japanese: only the
    # heartbeats' `next` can tell the consumer that it has seen everything up to the head.
    stats = StreamConsumer(server.url, keys["all"], store, filters={"lang": "ja"}).run(until=SEEDED - 1)
    assert store.cursor("firehose") == SEEDED - 1
    received = [p.post.lang for p in Log(ws.firehose_dir).iter_events() if p.type == "post"]
    assert stats.events < len(received) and {p.lang for p in store.iter_posts()} == {"ja"}


def test_a_revoked_key_stops_the_consumer(served, tmp_path) -> None:
    server, _, ws = served
    registry = Registry(ws.consumers_db)
    _, key = registry.add("short-lived")
    registry.revoke("short-lived")
    registry.close()
    with pytest.raises(CredentialRevoked):
        StreamConsumer(server.url, key, RawStore(tmp_path / "raw.db")).run()
