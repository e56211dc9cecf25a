"""Exactly once across crashes: kill -9 the consumer and the server at random moments while the
simulator appends (`roost simulate --live`), and the raw store still ends up equal to the log."""

import random
import sqlite3
import subprocess
import time

import pytest

from roost.firehose.log import Log
from roost.posts import encode
from roost.rawstore import RawStore
from tests.firehose.conftest import ROOST, Server, add_consumer, free_port, seed_log

KILLS = 20


def _wait_for(predicate, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _expected_store(log: Log) -> tuple[dict[str, tuple[int, bytes]], set[str]]:
    """What a store that applied every event of the log exactly once, in order, holds."""
    posts: dict[str, tuple[int, bytes]] = {}
    deleted: set[str] = set()
    for event in log.iter_events():
        if event.type == "post":
            if event.id not in deleted:
                posts[event.id] = (event.seq, encode(event.post))
        else:
            deleted.add(event.id)
            posts.pop(event.id, None)
    return posts, deleted


@pytest.mark.slow
def test_kill_9_consumer_and_server_twenty_times_loses_and_repeats_nothing(fh_ws) -> None:
    rng = random.Random(20240601)
    seed_log(fh_ws, 5000, seed=7)
    key = add_consumer(fh_ws, "mirror")
    server = Server(fh_ws.home, free_port())
    consume = [*ROOST, "--home", str(fh_ws.home), "firehose", "consume", server.url, "--key", key]
    simulator = subprocess.Popen(
        [*ROOST, "--home", str(fh_ws.home), "simulate", "--live", "--rate", "1000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    consumer: subprocess.Popen | None = None
    kills = {"consumer": 0, "server": 0}
    started = time.monotonic()
    try:
        server.start()
        _wait_for(lambda: Log(fh_ws.firehose_dir).refresh() > 5000, "the simulator to append")
        consumer = subprocess.Popen(consume, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for i in range(KILLS):
            time.sleep(rng.uniform(0.1, 0.5))
            # Which side dies, and when, is the seeded draw; the server one time in three, since
            # each of its restarts costs seconds of imports (the first two kills hit one side each).
            victim = ["consumer", "server"][i] if i < 2 else rng.choices(["consumer", "server"], [2, 1])[0]
            kills[victim] += 1
            if victim == "consumer":
                consumer.kill()
                consumer.wait(10)
                consumer = subprocess.Popen(consume, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            else:
                server.kill()
                server.start()
        simulator.terminate()
        simulator.wait(10)
        head = Log(fh_ws.firehose_dir).head
        # Let the last consumer catch up to the final head.
        store = RawStore.in_dir(fh_ws.raw_dir)
        _wait_for(lambda: store.cursor("firehose") == head, "the consumer to catch up")
        assert consumer.poll() is None, "the consumer exited"
    finally:
        simulator.kill()
        simulator.wait(10)
        if consumer is not None:
            consumer.kill()
            consumer.wait(10)
        server.kill()

    expected_posts, expected_deletes = _expected_store(Log(fh_ws.firehose_dir))
    with sqlite3.connect(fh_ws.raw_dir / "raw.db") as db:
        stored = {pid: (seq, bytes(data)) for pid, seq, data in db.execute("SELECT id, seq, data FROM posts")}
        deletes = {pid for (pid,) in db.execute("SELECT id FROM deletes")}
    lost = expected_posts.keys() - stored.keys()
    extra = stored.keys() - expected_posts.keys()
    stale = [pid for pid in expected_posts.keys() & stored.keys() if stored[pid] != expected_posts[pid]]
    print(
        f"\n{head + 1} events, {kills['consumer']} consumer and {kills['server']} server kills in "
        f"{time.monotonic() - started:.1f} s: {len(lost)} lost, {len(extra) + len(stale)} duplicated or stale"
    )
    assert sum(kills.values()) == KILLS and min(kills.values()) >= 2
    assert not lost and not extra and not stale
    assert deletes == expected_deletes
    assert RawStore.in_dir(fh_ws.raw_dir).cursor("firehose") == head
