"""Feeding the index: following the firehose log on this machine (or its HTTP stream elsewhere) in
real time, and building an index from a whole log with sealed partitions written in parallel.

Both commit each batch with its cursor through `SearchIndex.apply`, so they resume where they
stopped, after a clean stop or a kill, without losing or repeating an event.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from roost.firehose.log import Log
from roost.search.index import SearchIndex
from roost.search.lexical import build_partition

DEFAULT_NAME = "search"  # the cursor's name in the index store


@dataclass
class FollowStats:
    events: int = 0
    batches: int = 0
    last_seq: int | None = None


def follow_log(
    index: SearchIndex,
    log_dir: Path,
    *,
    name: str = DEFAULT_NAME,
    stop: threading.Event | None = None,
    until: int | None = None,
    poll_s: float = 0.02,
) -> FollowStats:
    """Apply the log's events from the index's cursor on, as they are committed, until `stop` is
    set (or the log's seq `until` is applied). A batch is whatever was committed since the last
    look, up to `[search] batch_events`: under load batches grow, when quiet each post goes alone."""
    stop = stop or threading.Event()
    stats = FollowStats()
    log = Log(log_dir)
    cursor = index.cursor(name)
    seq = 0 if cursor is None else cursor + 1
    while not stop.is_set():
        if until is not None and seq > until:
            break
        log.refresh()
        events = log.read(seq, limit=index.config.batch_events)
        if not events:
            stop.wait(poll_s)
            continue
        index.apply(events, cursor=(name, events[-1].seq))
        seq = events[-1].seq + 1
        stats.events += len(events)
        stats.batches += 1
        stats.last_seq = events[-1].seq
    return stats


def follow_stream(
    index: SearchIndex, url: str, key: str, *, name: str = DEFAULT_NAME, stop: threading.Event | None = None
) -> FollowStats:
    """The same from a firehose server's stream (roost.firehose.client), reconnecting as needed."""
    from roost.firehose.client import StreamConsumer

    consumer = StreamConsumer(url, key, index, name=name)
    result = consumer.run(stop=stop)
    return FollowStats(events=result.events, batches=result.batches, last_seq=result.cursor)


@dataclass
class BuildReport:
    events: int = 0
    posts: int = 0
    deletes: int = 0
    partitions: int = 0
    seconds: float = 0.0
    lexical_seconds: float = 0.0  # until every partition's lexical index was written
    dense_seconds: float = 0.0  # until every post was embedded (0 when not waited for)
    cursor: int | None = None

    @property
    def posts_per_s(self) -> float:
        return self.posts / self.lexical_seconds if self.lexical_seconds else 0.0


def build(
    index: SearchIndex,
    log_dir: Path,
    *,
    name: str = DEFAULT_NAME,
    workers: int | None = None,
    wait_dense: bool = False,
) -> BuildReport:
    """Index the log from the cursor to its head as fast as the machine allows.

    This process reads the log into the store (one transaction per chunk, cursor included); each
    partition, once full, is handed to a worker process that writes its tantivy index from the
    store while this process goes on; the newest partition too at the end. With `wait_dense`, it
    then waits until the dense indexer has embedded everything."""
    started = time.perf_counter()
    report = BuildReport()
    workers = workers or index.config.build_workers
    log = Log(log_dir)
    cursor = index.cursor(name)
    seq = 0 if cursor is None else cursor + 1
    index.deferred_lexical = True
    context = multiprocessing.get_context("spawn")  # the follower may run threads; spawn is safe
    pending: dict[int, Future] = {}
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            # A resumed build skips sealed partitions already written; the newest is always finished.
            newest = max(index.partitions, default=-1)
            submitted = {
                p
                for p in index.partitions
                if p < newest and index.lexical[p].max_key() >= _last_key(index, p)
            }
            for chunk in log.iter_chunks(seq, max_bytes=8 << 20):
                events = chunk.events()
                applied = index.apply(events, cursor=(name, chunk.last_seq))
                report.events += len(events)
                report.posts += len(applied.added)
                report.deletes += len(applied.deleted)
                report.cursor = chunk.last_seq
                newest = max(index.partitions, default=-1)
                for part in sorted(index.partitions):
                    if part < newest and part not in submitted:
                        pending[part] = pool.submit(build_partition, index.directory, part)
                        submitted.add(part)
            for part in sorted(index.partitions):
                if part not in submitted:
                    pending[part] = pool.submit(build_partition, index.directory, part)
            for future in pending.values():
                future.result()
    finally:
        index.deferred_lexical = False
    # Deletes that reached a partition while its worker wrote it are in the store only.
    index.reload_lexical()
    index.reconcile_deletes()
    report.lexical_seconds = time.perf_counter() - started
    report.partitions = len(index.partitions)
    if wait_dense and index.embedder is not None:
        dense_started = time.perf_counter()
        index.wait_dense(timeout=24 * 3600)
        index.save_vectors()
        report.dense_seconds = time.perf_counter() - dense_started
    report.seconds = time.perf_counter() - started
    return report


def _last_key(index: SearchIndex, part: int) -> int:
    p = index.partitions[part]
    return p.first_key + p.posts - 1
