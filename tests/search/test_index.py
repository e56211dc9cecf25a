"""The real-time index: freshness of posts and deletes, exactly-once indexing across a kill -9 of
the follower, engagement updated after indexing, partitions and the vector rebuild on deletes."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from roost.firehose.log import Log, LogWriter
from roost.posts import Event, Metrics
from roost.search.follow import DEFAULT_NAME, follow_log
from roost.search.query import Filters, SearchRequest
from roost.search.retrieve import Retriever
from roost.search.store import IndexStore
from roost.search.text import parse_query
from roost.workspace import Workspace
from tests.search.conftest import open_index, post
from tests.serve.fixtures import RUN


def _wait(condition, timeout: float = 10.0, every: float = 0.002) -> float:
    """Seconds until `condition()` holds (fails the test after `timeout`)."""
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)
    return time.perf_counter() - started


def test_a_post_is_searchable_and_a_delete_honoured_within_a_second(
    tmp_path: Path, model, sim_events
) -> None:
    writer = LogWriter(tmp_path / "log")
    writer.append([Event.of_post(e.post) for e in sim_events[:1000] if e.post is not None])
    index = open_index(tmp_path / "index", model.embedder)
    retriever = Retriever(index)
    stop = threading.Event()
    follower = threading.Thread(target=follow_log, args=(index, tmp_path / "log"), kwargs={"stop": stop})
    follower.start()
    try:
        _wait(lambda: index.cursor(DEFAULT_NAME) == writer.head, timeout=60)

        def found(word: str, pid: str) -> bool:
            return any(h.post.id == pid for h in retriever.search(SearchRequest(query=word, limit=5)).hits)

        appear, vanish = [], []
        for i in range(10):
            word = f"quokka{i}zz"
            started = time.perf_counter()
            writer.append(
                [Event.of_post(post(f"fresh-{i}", f"a {word} was spotted downtown", minutes=60 * 12 + i))]
            )
            _wait(lambda word=word, i=i: found(word, f"fresh-{i}"), timeout=5)
            appear.append(time.perf_counter() - started)
            started = time.perf_counter()
            writer.append([Event.of_delete(f"fresh-{i}")])
            _wait(lambda word=word, i=i: not found(word, f"fresh-{i}"), timeout=5)
            vanish.append(time.perf_counter() - started)
    finally:
        stop.set()
        follower.join()
        writer.close()
    print(
        f"\nfreshness: post searchable after max {max(appear) * 1000:.0f} ms (median "
        f"{sorted(appear)[5] * 1000:.0f} ms); delete honoured after max {max(vanish) * 1000:.0f} ms"
    )
    assert max(appear) < 1.0
    assert max(vanish) < 1.0
    # The dense side found the fresh posts too, and the deleted ones are gone from it as well.
    assert index.wait_dense(30)
    vector = index.embedder.embed(["quokka3zz spotted downtown"])[0]
    alive_keys = {k for k, _ in index.dense_search(vector, Filters(), 50)}
    assert index.store.key_of("fresh-3") not in alive_keys
    index.close()


def _follower(ws: Workspace) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "roost", "--home", str(ws.home), "index", "follow"]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_exactly_once_across_a_kill_of_the_follower(tmp_path: Path, model, sim_events) -> None:
    events = sim_events[:1500]  # posts, replies, reposts and deletes over 4 partitions
    ws = Workspace(tmp_path / "home").ensure()
    run_dir = model.ws.runs_dir / RUN
    ws.config_path.write_text(
        f'[search]\nembedder = "{run_dir}"\npartition_posts = 350\nbatch_events = 50\nvector_save_s = 0.3\n'
    )
    with LogWriter(ws.firehose_dir) as writer:
        writer.append(list(events))
        head = writer.head
    db = ws.index_dir / "index.db"

    def cursor() -> int:
        if not db.exists():
            return -1
        store = IndexStore(db, readonly=True)
        try:
            return store.cursor(DEFAULT_NAME) or -1
        except Exception:  # the schema may not be there yet
            return -1
        finally:
            store.close()

    first = _follower(ws)
    _wait(lambda: cursor() >= head // 3, timeout=120, every=0.01)
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed_at = cursor()
    assert 0 < killed_at < head, "the kill should land mid-stream"
    second = _follower(ws)
    _wait(lambda: cursor() == head, timeout=120, every=0.05)
    time.sleep(0.5)
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=60) == 0, second.stderr.read().decode()

    resumed = open_index(ws.index_dir, model.embedder, partition_posts=350)
    reference = open_index(tmp_path / "reference", model.embedder, partition_posts=350)
    for start in range(0, len(events), 50):
        batch = Log(ws.firehose_dir).read(start, 50)
        reference.apply(batch, cursor=(DEFAULT_NAME, batch[-1].seq))
    assert resumed.wait_dense(60) and reference.wait_dense(60)
    print(f"\nkilled at cursor {killed_at} of {head}; resumed to {resumed.cursor(DEFAULT_NAME)}")

    cols, ref = resumed.columns, reference.columns
    assert cols.size == ref.size
    assert np.array_equal(cols.alive[: cols.size], ref.alive[: ref.size])
    assert np.array_equal(cols.engagement[: cols.size], ref.engagement[: ref.size])
    for part, p in resumed.partitions.items():
        alive = int(cols.alive[p.first_key : resumed.partition_end(p)].sum())
        assert resumed.lexical[part].num_docs() == alive, (
            f"partition {part}: lexical docs differ from live posts"
        )
        held = set(resumed.vectors[part].keys().tolist())
        live = {k for k in range(p.first_key, resumed.partition_end(p)) if cols.alive[k]}
        assert live <= held, f"partition {part}: posts missing from the vector index"
    for query in ("football", "coffee", "new album", "#travel"):
        got = [k for k, _ in resumed.lexical_search(parse_query(query), Filters(), 100)]
        want = [k for k, _ in reference.lexical_search(parse_query(query), Filters(), 100)]
        assert sorted(got) == sorted(want) and len(got) == len(set(got))
    resumed.close()
    reference.close()


def test_engagement_grows_after_indexing(tmp_path: Path) -> None:
    index = open_index(tmp_path / "index")
    retriever = Retriever(index)
    index.apply([Event.of_post(post("p1", "the harbour festival opens tonight"))])
    assert retriever.search(SearchRequest(query="harbour")).hits[0].post.metrics.replies == 0
    index.apply(
        [
            Event.of_post(post("r1", "@u1 see you at the harbour", minutes=1, reply_to="p1")),
            Event.of_post(post("r2", "count me in", minutes=2, reply_to="p1")),
        ]
    )
    updated = post("p1", "the harbour festival opens tonight", metrics=Metrics(likes=40, views=900))
    index.apply([Event.of_post(updated)])
    hit = next(h for h in retriever.search(SearchRequest(query="harbour festival")).hits if h.post.id == "p1")
    assert hit.post.metrics.replies == 2 and hit.post.metrics.likes == 40
    assert index.columns.engagement[index.store.key_of("p1")] == 40 + 2
    assert index.lexical[0].num_docs() == 3  # the update re-indexed nothing
    index.close()


def test_partitions_by_arrival_and_time_filters_skip_them(tmp_path: Path, sim_events) -> None:
    index = open_index(tmp_path / "index")
    for start in range(0, len(sim_events), 500):
        index.apply(sim_events[start : start + 500])
    assert len(index.partitions) >= 3
    parts = sorted(index.partitions.values(), key=lambda p: p.part)
    assert all(a.max_created <= b.min_created for a, b in itertools.pairwise(parts))
    late = parts[-1]
    since = late.min_created
    import datetime as dt

    chosen = index.parts_for(Filters(since=dt.datetime.fromtimestamp(since / 1000, dt.UTC)))
    assert [p.part for p in chosen] == [late.part]
    index.close()


def test_deleted_vectors_leave_by_rebuild(tmp_path: Path, model) -> None:
    index = open_index(tmp_path / "index", model.embedder, rebuild_deleted_fraction=0.1)
    posts = [post(f"v{i}", f"note number {i} about gardens and rain", minutes=i) for i in range(60)]
    index.apply([Event.of_post(p) for p in posts])
    assert index.wait_dense(30)
    assert len(index.vectors[0]) == 60
    index.apply([Event.of_delete(f"v{i}") for i in range(0, 60, 4)])  # 15 of 60: past 10%
    _wait(lambda: len(index.vectors[0]) == 45, timeout=10)
    held = set(index.vectors[0].keys().tolist())
    assert all(index.store.key_of(f"v{i}") not in held for i in range(0, 60, 4))
    index.close()
    reopened = open_index(tmp_path / "index", model.embedder)
    assert len(reopened.vectors[0]) == 45  # the rebuilt index was saved
    reopened.close()


def test_an_edited_post_is_indexed_anew_and_its_old_text_leaves(tmp_path: Path) -> None:
    index = open_index(tmp_path / "index")
    retriever = Retriever(index)
    index.apply([Event.of_post(post("e1", "the ferry to the island is cancelled"))])
    edited = post("e1", "the ferry to the island runs again", minutes=3)
    index.apply([Event.of_post(edited)])  # the same id, new text: a later batch
    index.apply([Event.of_post(post("e1", "the ferry to the island runs again at noon", minutes=4))])

    def ids(query: str) -> list[str]:
        return [h.post.id for h in retriever.search(SearchRequest(query=query, mode="lexical")).hits]

    assert ids("cancelled") == [] and ids("again") == ["e1"]
    assert retriever.search(SearchRequest(query="noon")).hits[0].post.text.endswith("at noon")
    assert index.lexical[0].num_docs() == 1
    index.apply([Event.of_delete("e1")])
    assert ids("ferry") == []
    index.close()
