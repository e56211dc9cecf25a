"""The stream server as a real process on 127.0.0.1, checked through raw HTTP and roost's client."""

import itertools
import signal
import socket
import threading
import time

import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roost.firehose.client import Batch, read_stream
from roost.firehose.consumers import Registry
from roost.firehose.log import Log, LogWriter
from roost.firehose.protocol import Final, Heartbeat
from roost.posts import encode
from roost.workspace import Workspace
from tests.firehose.conftest import SEEDED, add_consumer, admin_key, running_server, seed_log
from tests.firehose.events import make_events


def _auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def _read_until(url, key, *, cursor, last, **kwargs):
    """Events and control frames from one connection, until seq `last` has been seen."""
    events, frames = [], []
    with httpx.Client(timeout=10) as client:
        for item in read_stream(client, url, key, cursor=cursor, **kwargs):
            if isinstance(item, Batch):
                events.extend(item.events)
                if events and events[-1].seq >= last:
                    break
            else:
                frames.append(item)
                if isinstance(item, Final) or (isinstance(item, Heartbeat) and item.next > last):
                    break
    return events, frames


BAD_REQUESTS = [
    ("cursor=abc", 400, "bad_cursor"),
    ("cursor=-1", 400, "bad_cursor"),
    ("cursor=1.5", 400, "bad_cursor"),
    ("cursor=", 400, "bad_cursor"),
    ("cursor=99999999999999999999", 400, "bad_cursor"),
    ("cursor=999999", 400, "bad_cursor"),  # past the head
    ("cursor=1&cursor=2", 400, "bad_request"),
    ("lang=EN", 400, "bad_filter"),
    ("lang=en,,es", 400, "bad_filter"),
    ("sample=0", 400, "bad_filter"),
    ("sample=nan", 400, "bad_filter"),
    ("sample=lots", 400, "bad_filter"),
    ("reposts=maybe", 400, "bad_filter"),
    ("keywords=" + "x" * 101, 400, "bad_filter"),
    ("compress=gzip", 400, "bad_request"),
    ("langs=en", 400, "bad_request"),
]


@pytest.mark.parametrize(("query", "status", "code"), BAD_REQUESTS)
def test_malformed_stream_requests_get_a_json_4xx(served, query, status, code) -> None:
    server, keys, _ = served
    r = httpx.get(f"{server.url}/firehose/stream?{query}", headers=_auth(keys["all"]))
    assert (r.status_code, r.json()["error"]) == (status, code), r.text
    assert r.json()["message"]


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "unauthorized"),
        ({"authorization": "Bearer"}, 401, "unauthorized"),
        ({"authorization": "Basic abc"}, 401, "unauthorized"),
        ({"authorization": "Bearer rfh_0123456789abcdef_" + "A" * 43}, 401, "unauthorized"),
        ({"authorization": "Bearer \u00e9\u00e9".encode("latin-1")}, 401, "unauthorized"),
    ],
)
def test_bad_keys_get_401(served, headers, status, code) -> None:
    server, _, _ = served
    r = httpx.get(f"{server.url}/firehose/stream", headers=headers)
    assert (r.status_code, r.json()["error"]) == (status, code)


def test_only_health_is_open(served) -> None:
    server, keys, _ = served
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}
    for path in ("/firehose/admin/consumers", "/firehose/admin/stats", "/firehose/admin/audit"):
        assert httpx.get(server.url + path).status_code == 401
        assert httpx.get(server.url + path, headers=_auth(keys["all"])).status_code == 401
    for path in ("/docs", "/openapi.json", "/firehose"):
        r = httpx.get(server.url + path)
        assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = httpx.post(f"{server.url}/firehose/stream", headers=_auth(keys["all"]))
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


PARAM_NAMES = st.sampled_from(["cursor", "lang", "keywords", "sample", "reposts", "compress"]) | st.text(
    max_size=8
)
PARAM_VALUES = (
    st.text(max_size=30)
    | st.integers(-5, 10**20).map(str)
    | st.floats(allow_nan=True).map(str)
    | st.sampled_from(["en", "en,ja", "true", "false", "zstd", "#news", "0.5", "0"])
)


_FUZZ_CLIENT = httpx.Client(timeout=10)  # one connection pool for every example


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    params=st.dictionaries(PARAM_NAMES, PARAM_VALUES, max_size=4), who=st.sampled_from(["all", "en", "bad"])
)
def test_fuzzed_queries_never_get_a_5xx(served, params, who) -> None:
    server, keys, _ = served
    key = keys.get(who, "rfh_nope")
    with _FUZZ_CLIENT.stream("GET", f"{server.url}/firehose/stream", params=params, headers=_auth(key)) as r:
        assert r.status_code < 500
        if r.status_code != 200:
            body = msgspec.json.decode(r.read())
            assert set(body) == {"error", "message"}


def test_full_replay_is_the_log_byte_for_byte_and_zstd_the_same(served) -> None:
    server, keys, ws = served
    log_bytes = [encode(e) for e in Log(ws.firehose_dir).iter_events()]
    for compress in (False, True):
        events, _ = _read_until(server.url, keys["all"], cursor=0, last=SEEDED - 1, compress=compress)
        assert [encode(e) for e in events] == log_bytes


def test_resume_is_inclusive_of_the_cursor(served) -> None:
    server, keys, _ = served
    events, _ = _read_until(server.url, keys["all"], cursor=1234, last=1240)
    assert events[0].seq == 1234


def test_lang_en_consumer_gets_only_english_and_every_delete(served) -> None:
    server, keys, ws = served
    log_events = list(Log(ws.firehose_dir).iter_events())
    events, _ = _read_until(server.url, keys["en"], cursor=0, last=SEEDED - 1)
    posts = [e for e in events if e.type == "post"]
    assert posts and {p.post.lang for p in posts} == {"en"}
    assert [e.id for e in events if e.type == "delete"] == [e.id for e in log_events if e.type == "delete"]
    assert len(posts) == sum(1 for e in log_events if e.type == "post" and e.post.lang == "en")
    # Asking for another language than granted is refused; narrowing further is not possible here.
    r = httpx.get(f"{server.url}/firehose/stream?lang=ja", headers=_auth(keys["en"]))
    assert (r.status_code, r.json()["error"]) == (403, "not_entitled")


def test_a_caught_up_stream_hears_heartbeats_with_the_head(served) -> None:
    server, keys, _ = served
    started = time.monotonic()
    events, frames = _read_until(server.url, keys["all"], cursor=None, last=SEEDED - 1)
    assert events == [] and isinstance(frames[0], Heartbeat)
    assert frames[0].head == SEEDED - 1 and frames[0].next == SEEDED
    assert time.monotonic() - started < 5  # heartbeat_seconds is 0.5 in these tests


def test_admin_routes(served) -> None:
    server, keys, _ = served
    admin = _auth(keys["admin"])
    with httpx.Client(base_url=server.url, headers=admin, timeout=10) as api:
        r = api.post(
            "/firehose/admin/consumers", json={"name": "partner", "entitlements": {"languages": ["ja"]}}
        )
        assert r.status_code == 201
        body = r.json()
        assert body["key"].startswith("rfh_") and body["consumer"]["entitlements"]["languages"] == ["ja"]
        assert api.post("/firehose/admin/consumers", json={"name": "partner"}).status_code == 409
        assert api.post("/firehose/admin/consumers", json={"name": "Bad Name"}).status_code == 400
        assert api.post("/firehose/admin/consumers", json={"nme": "x"}).status_code == 400
        assert api.post("/firehose/admin/consumers", content=b"{not json").status_code == 400

        listed = {c["name"]: c for c in api.get("/firehose/admin/consumers").json()["consumers"]}
        assert set(listed) >= {"all", "en-only", "partner"}
        assert set(listed["partner"]) == {
            "name",
            "key_id",
            "entitlements",
            "rate_limit",
            "max_connections",
            "created_at",
            "revoked_at",
            "connections",
        }

        r = api.put(
            "/firehose/admin/consumers/partner/entitlements",
            json={"entitlements": {"languages": ["ja", "en"], "sample_rate": 0.5}, "max_connections": 3},
        )
        assert r.status_code == 200 and r.json()["consumer"]["max_connections"] == 3
        bad = api.put(
            "/firehose/admin/consumers/partner/entitlements", json={"entitlements": {"sample_rate": 7}}
        )
        assert bad.status_code == 400 and "sample" in bad.json()["message"]
        assert (
            api.put("/firehose/admin/consumers/nobody/entitlements", json={"entitlements": {}}).status_code
            == 404
        )

        r = api.post("/firehose/admin/consumers/partner/revoke")
        assert r.status_code == 200 and r.json()["consumer"]["revoked_at"] and r.json()["closed_streams"] == 0
        assert api.post("/firehose/admin/consumers/nobody/revoke").status_code == 404
        assert httpx.get(f"{server.url}/firehose/stream", headers=_auth(body["key"])).status_code == 403

        stats = api.get("/firehose/admin/stats").json()
        assert stats["head"] == SEEDED - 1 and set(stats) == {
            "head",
            "horizon",
            "append_rate",
            "delivered_rate",
            "consumers_connected",
            "connections",
        }
        entries = api.get("/firehose/admin/audit", params={"consumer": "partner"}).json()["entries"]
        assert [e["action"] for e in entries][:3] == ["refuse", "revoke", "entitle"]
        assert api.get("/firehose/admin/audit", params={"limit": "x"}).status_code == 400


# -- tests that need a server of their own ----------------------------------------------------------------
class _Reader(threading.Thread):
    """Reads one stream in the background, noting each event and when a final frame arrived."""

    def __init__(self, url: str, key: str, cursor: int | None, filters: dict[str, str] | None = None) -> None:
        super().__init__(daemon=True)
        self.url, self.key, self.cursor, self.filters = url, key, cursor, filters
        self.connected = False  # set once the first frame or event arrives
        self.events: list = []
        self.final: Final | None = None
        self.final_at: float | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.Client(timeout=10) as client:
                for item in read_stream(client, self.url, self.key, cursor=self.cursor, filters=self.filters):
                    self.connected = True
                    if isinstance(item, Batch):
                        self.events.extend(item.events)
                    elif isinstance(item, Final):
                        self.final, self.final_at = item, time.monotonic()
                        return
        except BaseException as exc:  # the test reports it
            self.error = exc


class _Appender(threading.Thread):
    """Appends events at `rate` per second until stopped (the writer lives in the test process)."""

    def __init__(self, ws: Workspace, rate: float, seed: int = 1) -> None:
        super().__init__(daemon=True)
        self.ws, self.rate, self.seed = ws, rate, seed
        self.stop = threading.Event()

    def run(self) -> None:
        from roost.firehose.live import append_live

        with LogWriter(self.ws.firehose_dir) as writer:
            append_live(writer, make_events(self.seed), rate=self.rate, stop=self.stop)

    def __enter__(self) -> "_Appender":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.join(10)


def _wait(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_revocation_ends_the_stream_within_a_second_and_spares_the_others(fh_ws) -> None:
    seed_log(fh_ws, 1000)
    keys = {name: add_consumer(fh_ws, name) for name in ("by-route", "by-cli", "bystander")}
    admin = admin_key(fh_ws)
    with running_server(fh_ws) as server, _Appender(fh_ws, rate=500):
        readers = {name: _Reader(server.url, key, cursor=0) for name, key in keys.items()}
        for reader in readers.values():
            reader.start()
        for name, how in (("by-route", "the admin route"), ("by-cli", "another process")):
            reader = readers[name]
            _wait(lambda r=reader: len(r.events) > 1100)
            started = time.monotonic()
            if name == "by-route":
                r = httpx.post(f"{server.url}/firehose/admin/consumers/{name}/revoke", headers=_auth(admin))
                assert r.json()["closed_streams"] == 1
            else:
                registry = Registry(fh_ws.consumers_db)  # what `roost firehose consumers revoke` does
                registry.revoke(name)
                registry.close()
            reader.join(5)
            assert reader.final is not None, f"the stream of {name} did not end"
            latency = reader.final_at - started
            print(f"\nrevocation through {how}: the stream ended {latency * 1000:.0f} ms after the revoke")
            assert reader.final.reason == "credential_revoked" and latency < 1.0
            # The final frame says where the stream stopped: right after the last event it carried.
            assert reader.final.next == reader.events[-1].seq + 1
            r = httpx.get(f"{server.url}/firehose/stream", headers=_auth(keys[name]))
            assert (r.status_code, r.json()["error"]) == (403, "credential_revoked")
        # The other consumer is untouched: still connected, still receiving.
        bystander = readers["bystander"]
        seen = len(bystander.events)
        _wait(lambda: len(bystander.events) > seen + 50)
        assert bystander.final is None and bystander.is_alive() and bystander.error is None


def test_replay_from_an_old_cursor_hands_over_to_live_without_gap_or_repeat(fh_ws) -> None:
    seed_log(fh_ws, 10_000)
    key = add_consumer(fh_ws, "replayer")
    with running_server(fh_ws) as server, _Appender(fh_ws, rate=3000, seed=2) as appender:
        _wait(lambda: Log(fh_ws.firehose_dir).head > 11_000)
        reader = _Reader(server.url, key, cursor=500)
        reader.start()
        _wait(lambda: reader.events and reader.events[-1].seq > Log(fh_ws.firehose_dir).head - 10, timeout=30)
        appender.stop.set()
        appender.join(10)
        head = Log(fh_ws.firehose_dir).head
        _wait(lambda: reader.events[-1].seq == head)
    seqs = [e.seq for e in reader.events]
    assert seqs == list(range(500, head + 1))
    log_bytes = [encode(e) for e in Log(fh_ws.firehose_dir).iter_events(500)]
    assert [encode(e) for e in reader.events] == log_bytes


def test_shutdown_sends_a_final_frame_and_a_restart_resumes(fh_ws) -> None:
    seed_log(fh_ws, 2000)
    key = add_consumer(fh_ws, "resumer")
    with running_server(fh_ws) as server:
        reader = _Reader(server.url, key, cursor=0)
        reader.start()
        _wait(lambda: len(reader.events) == 2000)
        # uvicorn shuts down gracefully, then re-raises the signal, as a process should.
        assert server.terminate() in (0, -signal.SIGTERM)
        reader.join(5)
        assert reader.final.reason == "server_shutdown" and reader.final.next == 2000
        with running_server(fh_ws, port=server.port):
            events, _ = _read_until(server.url, key, cursor=reader.final.next - 5, last=1999)
            assert [e.seq for e in events] == list(range(1995, 2000))


def test_cursor_behind_retention_gets_cursor_too_old(fh_ws) -> None:
    events = list(itertools.islice(make_events(4), 4000))
    with LogWriter(fh_ws.firehose_dir, segment_bytes=32 << 10, retention_bytes=128 << 10) as writer:
        for i in range(0, 4000, 200):
            writer.append(events[i : i + 200])
        horizon = writer.compact().horizon
    assert horizon > 0
    key = add_consumer(fh_ws, "late")
    with running_server(fh_ws) as server:
        got, frames = _read_until(server.url, key, cursor=10, last=3999)
        # First every delete kept below the horizon, then the frame saying where whole data resumes.
        assert [e.id for e in got] == [e.id for e in events[10:horizon] if e.type == "delete"]
        assert frames[0].reason == "cursor_too_old" and frames[0].next == horizon
        got, _ = _read_until(server.url, key, cursor=horizon, last=3999)
        assert got[0].seq == horizon


def test_connection_cap_and_rate_limit_get_429(served) -> None:
    server, keys, _ = served
    holder = _Reader(server.url, keys["capped"], cursor=SEEDED - 10)
    holder.start()
    _wait(lambda: len(holder.events) == 10)
    r = httpx.get(f"{server.url}/firehose/stream", headers=_auth(keys["capped"]))
    assert (r.status_code, r.json()["error"]) == (429, "connection_cap") and r.headers["retry-after"]
    for _ in range(2):
        with httpx.stream("GET", f"{server.url}/firehose/stream", headers=_auth(keys["limited"])) as ok:
            assert ok.status_code == 200
    r = httpx.get(f"{server.url}/firehose/stream", headers=_auth(keys["limited"]))
    assert (r.status_code, r.json()["error"]) == (429, "rate_limited")


def test_a_consumer_far_behind_and_stuck_is_cut_off(fh_ws) -> None:
    # The other half, far behind but moving, is every catch-up read in this file: with
    # slow_lag_events = 2000 they start thousands of events behind and are never cut.
    seed_log(fh_ws, 20_000)  # ~6 MB: more than the socket buffers hold
    stuck_key = add_consumer(fh_ws, "stuck")
    with running_server(fh_ws) as server:
        # A client that asks for everything and then reads nothing, with a small receive buffer.
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect(("127.0.0.1", server.port))
        request = (
            f"GET /firehose/stream?cursor=0 HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {stuck_key}\r\n\r\n"
        )
        stuck.sendall(request.encode())
        try:
            registry = Registry(fh_ws.consumers_db)

            def reasons() -> list[str]:
                return [
                    e.detail["reason"]
                    for e in registry.audit_log(consumer="stuck")
                    if e.action == "disconnect"
                ]

            _wait(lambda: reasons() == ["consumer_too_slow"], timeout=15)
        finally:
            stuck.close()


def test_narrowed_entitlements_reach_open_streams(served) -> None:
    server, keys, ws = served
    key = add_consumer(ws, "narrowed")
    reader = _Reader(server.url, key, cursor=None, filters={"lang": "ja"})
    reader.start()
    _wait(lambda: reader.connected)
    r = httpx.put(
        f"{server.url}/firehose/admin/consumers/narrowed/entitlements",
        json={"entitlements": {"languages": ["en"]}},
        headers=_auth(keys["admin"]),
    )
    assert r.status_code == 200
    reader.join(5)
    assert reader.final.reason == "credential_revoked" and "entitlements changed" in reader.final.message
