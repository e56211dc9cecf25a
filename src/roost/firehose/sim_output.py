"""Writing simulated events as JSON lines: to stdout, a file, or a zstd-compressed file (`.zst`).

A file is written under a temporary name and renamed when complete, so a half-written file never
looks like a finished one.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import msgspec
import zstandard

from roost.posts import Event, decode_event, encode

_FLUSH_BYTES = 1 << 20


class SimReport(msgspec.Struct, frozen=True):
    """What `write_events` wrote."""

    posts: int
    deletes: int
    bytes: int  # of JSON lines, before any compression
    seconds: float
    posts_per_s: float
    out: str  # a path, or "-" for stdout
    first_created_at: str | None
    last_created_at: str | None


def write_events(
    events: Iterable[Event],
    out: Path | None,
    posts: int,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 10_000,
) -> SimReport:
    """Write events, one JSON line each, until `posts` post events are out (deletes in between too).

    `out=None` writes to stdout; a path ending in `.zst` is zstd-compressed.
    """
    lines = ((encode(event), event.post is not None) for event in events)
    return write_lines(lines, out, posts, progress, progress_every)


def write_lines(
    lines: Iterable[tuple[bytes, bool]],
    out: Path | None,
    posts: int,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 10_000,
) -> SimReport:
    """`write_events` for events already encoded: (JSON line, is a post) pairs.

    `lines` is closed at the end (a generator's cleanup runs then: `parallel_lines` stops its workers).
    """
    started = time.perf_counter()
    n_posts = n_deletes = size = 0
    first = last = None
    try:
        with _sink(out) as sink:
            buffer = bytearray()
            for line, is_post in _until(lines, posts):
                buffer += line
                buffer += b"\n"
                if is_post:
                    n_posts += 1
                    if first is None:
                        first = line
                    last = line
                    if progress is not None and n_posts % progress_every == 0:
                        progress(n_posts)
                else:
                    n_deletes += 1
                if len(buffer) >= _FLUSH_BYTES:
                    size += len(buffer)
                    sink.write(buffer)
                    buffer.clear()
            size += len(buffer)
            sink.write(buffer)
    finally:
        close = getattr(lines, "close", None)
        if close is not None:
            close()
    seconds = time.perf_counter() - started
    return SimReport(
        posts=n_posts,
        deletes=n_deletes,
        bytes=size,
        seconds=round(seconds, 3),
        posts_per_s=round(n_posts / seconds, 1) if seconds > 0 else 0.0,
        out=str(out) if out is not None else "-",
        first_created_at=_created_at(first),
        last_created_at=_created_at(last),
    )


def _created_at(line: bytes | None) -> str | None:
    if line is None:
        return None
    return decode_event(line).post.created_at.isoformat()  # type: ignore[union-attr]


def _until(lines: Iterable[tuple[bytes, bool]], posts: int) -> Iterator[tuple[bytes, bool]]:
    if posts <= 0:
        return
    seen = 0
    for line, is_post in lines:
        yield line, is_post
        if is_post:
            seen += 1
            if seen >= posts:
                return


@contextlib.contextmanager
def _sink(out: Path | None) -> Iterator[BinaryIO]:
    if out is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    try:
        with open(partial, "wb") as raw:
            if out.suffix == ".zst":
                # Single-threaded zstd is deterministic: the same events give the same bytes.
                with zstandard.ZstdCompressor(level=3).stream_writer(raw, closefd=False) as compressed:
                    yield compressed  # type: ignore[misc]
            else:
                yield raw
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
