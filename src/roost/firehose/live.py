"""Feeding the log: events appended in batches, as fast as they come (imports) or paced to a rate
(a live simulated platform, `roost simulate --live --rate N`).

Each batch is one group commit, so the rate a writer sustains is set by how many events share an
fsync: pacing appends whatever is due every `tick` seconds as one batch.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterable

import msgspec

from roost.firehose.config import FirehoseConfig
from roost.firehose.log import LogWriter
from roost.posts import Event
from roost.rawstore import ApplyCounts
from roost.workspace import Workspace


def open_writer(ws: Workspace) -> LogWriter:
    """The workspace log's writer, set up from roost.toml's [firehose] section."""
    config = ws.config("firehose", FirehoseConfig)
    return LogWriter(
        ws.firehose_dir,
        segment_bytes=config.segment_bytes,
        retention_bytes=config.retention_bytes,
        retention_seconds=config.retention_hours * 3600,
        compact_seconds=config.compact_hours * 3600,
    )


class LogSink:
    """The log in the place of a raw store, for importers (`roost import --to-log`): `apply`
    appends a batch as one group commit; `count` is the number of posts appended so far."""

    def __init__(self, writer: LogWriter) -> None:
        self.writer = writer
        self.posts = 0

    def apply(self, events: Iterable[Event], *, cursor: tuple[str, int] | None = None) -> ApplyCounts:
        batch = list(events)
        self.writer.append(batch)
        posts = sum(1 for e in batch if e.type == "post")
        self.posts += posts
        return ApplyCounts(posts=posts, deletes=len(batch) - posts)

    def count(self) -> int:
        return self.posts

    def __enter__(self) -> LogSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.writer.close()


def append_live(
    writer: LogWriter,
    events: Iterable[Event],
    *,
    rate: float,
    stop: threading.Event | None = None,
    limit: int | None = None,
    tick: float = 0.01,
) -> int:
    """Append `rate` events a second until `stop` is set, `limit` are appended, or `events` ends;
    return how many. A slow tick is made up in the next one, so the average holds."""
    if rate <= 0:
        raise ValueError(f"rate must be > 0 events/s, not {rate}")
    stop = stop or threading.Event()
    iterator = iter(events)
    appended = 0
    started = time.monotonic()
    while not stop.is_set() and (limit is None or appended < limit):
        due = int((time.monotonic() - started) * rate) - appended
        if limit is not None:
            due = min(due, limit - appended)
        if due > 0:
            chunk = list(itertools.islice(iterator, due))
            if not chunk:
                break
            writer.append(chunk)
            appended += len(chunk)
        stop.wait(tick)
    return appended


class LiveReport(msgspec.Struct):
    """What `roost simulate --live` appended before it was stopped."""

    events: int
    seconds: float
    events_per_s: float
    head: int


def run_live(ws: Workspace, events: Iterable[Event], *, rate: float, stop: threading.Event) -> LiveReport:
    """Append `events` to the workspace's log at `rate` per second until `stop` is set."""
    with open_writer(ws) as writer:
        started = time.monotonic()
        appended = append_live(writer, events, rate=rate, stop=stop)
        seconds = time.monotonic() - started
        return LiveReport(appended, round(seconds, 3), round(appended / max(seconds, 1e-9), 1), writer.head)
