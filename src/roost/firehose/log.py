"""The firehose log: durable, append-only, one writer; every event gets the next integer `seq`.

On disk (`<home>/firehose/`) the log is a run of segments. A segment is a pair of files named by the
first seq it may hold and a generation (bumped when compaction rewrites it):

- `<base:020d>.<gen>.log`: the events as NDJSON, one `roost.posts.Event` per line with its `seq`,
  encoded once at append time; the stream server sends these bytes as they are.
- `<base:020d>.<gen>.idx`: one little-endian (seq, end offset) int64 pair per line.

The writer appends a batch as one write to the `.log`, `fdatasync`s it (group commit: one flush per
batch, not per event), then appends the batch's index entries. The index is the commit record:
readers, in this process or another, see only events whose entries are in the `.idx`, so they never
see an event that a crash could take back. After a crash the writer rebuilds the last segment's
index from its data, which is the source of truth, dropping a torn last line.

Retention (by age and size) turns whole old segments into tombstone-only segments: their posts go,
their deletes stay forever. `horizon` is the first seq from which the log is whole again; a reader
asking for less is told so. Compaction also drops the body of every post deleted later in the log.
Both rewrite a segment as a new generation and leave the seq numbers of what remains unchanged.
"""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import os
import re
import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec

from roost.posts import Event

_NAME = re.compile(r"^(\d{20})\.(\d+)\.(log|idx)$")
_ENTRY_BYTES = 16  # one (seq, end) pair of int64
_HORIZON_FILE = "horizon"
_LOCK_FILE = "writer.lock"
# A reader notices compaction's new generations and retention's new horizon this often.
_RELIST_SECONDS = 1.0
# Sealed segments whose index a reader keeps in memory (about 2.5 MB each at 64 MiB segments).
_INDEXES_KEPT = 16
_DECODE_BYTES = 64 << 10  # how much of the log iter_events decodes at a time


class LogError(RuntimeError):
    """The log cannot be opened or written as asked."""


class LogBusyError(LogError):
    """Another process holds the log's writer lock (the log has exactly one writer)."""


class _Head(msgspec.Struct):
    """The fields of a log line that recovery and compaction look at; the rest is skipped."""

    type: str
    id: str
    seq: int


_head_decoder = msgspec.json.Decoder(_Head)
_event_decoder = msgspec.json.Decoder(Event)


def _seg_name(base: int, gen: int, ext: str) -> str:
    return f"{base:020d}.{gen}.{ext}"


@dataclass(frozen=True)
class Chunk:
    """A run of consecutive committed log lines: `data` is their bytes, `seqs[i]` the seq of line
    i and `ends[i] - offset` where line i ends inside `data` (line i starts where i-1 ended)."""

    data: bytes
    seqs: array
    ends: array
    offset: int

    @property
    def first_seq(self) -> int:
        return self.seqs[0]

    @property
    def last_seq(self) -> int:
        return self.seqs[-1]

    def __len__(self) -> int:
        return len(self.seqs)

    def start_of(self, i: int) -> int:
        """Byte position in `data` where line i starts."""
        return (self.ends[i - 1] if i else self.offset) - self.offset

    def end_of(self, i: int) -> int:
        return self.ends[i] - self.offset

    def line(self, i: int) -> bytes:
        return self.data[self.start_of(i) : self.end_of(i)]

    def tail_from(self, seq: int) -> Chunk | None:
        """The lines with seq >= `seq`, sharing this chunk's bytes where it can."""
        i = bisect.bisect_left(self.seqs, seq)
        if i == 0:
            return self
        if i == len(self.seqs):
            return None
        start = self.start_of(i)
        return Chunk(self.data[start:], self.seqs[i:], self.ends[i:], self.offset + start)

    def head_before(self, seq: int) -> Chunk | None:
        """The lines with seq < `seq`."""
        i = bisect.bisect_left(self.seqs, seq)
        if i == len(self.seqs):
            return self
        if i == 0:
            return None
        return Chunk(self.data[: self.end_of(i - 1)], self.seqs[:i], self.ends[:i], self.offset)

    def events(self) -> list[Event]:
        return _event_decoder.decode_lines(self.data)


@dataclass
class LogStats:
    """`roost firehose status`: the last seq, where the log is whole from, and its size."""

    head: int
    horizon: int
    segments: int
    bytes: int


class _Segment:
    """What a reader knows of one segment: its committed index, read from the `.idx` file in
    increments (the last segment grows while it is read) and dropped again when memory asks."""

    def __init__(self, directory: Path, base: int, gen: int) -> None:
        self.directory, self.base, self.gen = directory, base, gen
        self.seqs, self.ends = array("q"), array("q")
        self.loaded_bytes = 0
        self.loaded = False

    @property
    def data_path(self) -> Path:
        return self.directory / _seg_name(self.base, self.gen, "log")

    @property
    def idx_path(self) -> Path:
        return self.directory / _seg_name(self.base, self.gen, "idx")

    @property
    def next_seq(self) -> int:
        """The seq the writer gives the event after this segment's last one."""
        return self.seqs[-1] + 1 if self.seqs else self.base

    def load_more(self) -> bool:
        """Read index entries committed since the last call; True if there were any."""
        self.loaded = True
        try:
            size = os.stat(self.idx_path).st_size
        except FileNotFoundError:
            return False
        size -= size % _ENTRY_BYTES  # the writer may be half-way through appending an entry
        if size <= self.loaded_bytes:
            return False
        with open(self.idx_path, "rb") as f:
            raw = os.pread(f.fileno(), size - self.loaded_bytes, self.loaded_bytes)
        pairs = array("q")
        pairs.frombytes(raw[: len(raw) - len(raw) % _ENTRY_BYTES])
        self.seqs.extend(pairs[0::2])
        self.ends.extend(pairs[1::2])
        self.loaded_bytes += len(pairs) * 8
        return True

    def drop(self) -> None:
        """Forget the index (new arrays: a reader holding the old ones keeps valid data)."""
        self.seqs, self.ends = array("q"), array("q")
        self.loaded_bytes = 0
        self.loaded = False


def _list_segments(directory: Path) -> dict[int, int]:
    """{base: newest complete generation}; a generation is complete once both files exist."""
    found: dict[tuple[int, int], set[str]] = {}
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return {}
    for name in names:
        m = _NAME.match(name)
        if m:
            found.setdefault((int(m[1]), int(m[2])), set()).add(m[3])
    newest: dict[int, int] = {}
    for (base, gen), kinds in found.items():
        if kinds == {"log", "idx"} and gen >= newest.get(base, -1):
            newest[base] = gen
    return newest


def _read_horizon(directory: Path) -> int:
    try:
        return int((directory / _HORIZON_FILE).read_text().strip() or 0)
    except FileNotFoundError:
        return 0


class Log:
    """A reader of the log, in this process or next to a writer in another one.

    `refresh()` picks up newly committed events; `head` is the last committed seq (-1 when empty).
    Reads (`read_chunk`, `read`, `iter_events`) are safe from several threads.
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._segments: list[_Segment] = []
        self._bases: list[int] = []
        self._loaded: OrderedDict[int, _Segment] = OrderedDict()  # sealed segments, least recent first
        self._head = -1
        self._horizon = 0
        self._listed_at = -1e9
        self.refresh(relist=True)

    # -- state ------------------------------------------------------------------------------
    @property
    def head(self) -> int:
        """The last committed seq, or -1 when the log holds nothing yet."""
        return self._head

    @property
    def next_seq(self) -> int:
        """The seq the next appended event will get."""
        return self._segments[-1].next_seq if self._segments else 0

    @property
    def horizon(self) -> int:
        """Events from this seq on are whole; below it retention kept only the deletes."""
        return self._horizon

    def refresh(self, *, relist: bool = False) -> int:
        """Load what the writer committed since the last call; return the head seq."""
        with self._lock:
            now = time.monotonic()
            grew = bool(self._segments) and self._segments[-1].load_more()
            if not grew and self._segments:
                # The writer starts a new segment at exactly the next seq; one stat notices it.
                active = self._segments[-1]
                relist = relist or (self.directory / _seg_name(active.next_seq, 0, "idx")).exists()
            if relist or not self._segments or now - self._listed_at > _RELIST_SECONDS:
                self._relist()
                self._listed_at = now
            self._head = self._find_head()
        return self._head

    def _relist(self) -> None:
        newest = _list_segments(self.directory)
        if self._segments:
            # If the writer has moved on to a new segment, it finished this one before creating
            # that: read the rest of its index now, or its last entries would never be seen.
            self._segments[-1].load_more()
        known = {(s.base, s.gen): s for s in self._segments}
        self._segments = [
            known.get((b, newest[b])) or _Segment(self.directory, b, newest[b]) for b in sorted(newest)
        ]
        self._bases = [s.base for s in self._segments]
        for base in [b for b, seg in self._loaded.items() if known.get((b, newest.get(b))) is not seg]:
            del self._loaded[base]  # replaced by a newer generation, or gone
        if self._segments:
            self._segments[-1].load_more()
        self._horizon = _read_horizon(self.directory)

    def _find_head(self) -> int:
        for seg in reversed(self._segments):
            seqs = self._index(seg)[0]
            if seqs:
                return seqs[-1]
        return -1

    def _index(self, seg: _Segment) -> tuple[array, array]:
        """A segment's (seqs, ends), loading a sealed one's on first use. Hold `_lock`."""
        if seg is self._segments[-1]:
            return seg.seqs, seg.ends  # the active segment, kept current by refresh()
        if not seg.loaded:
            seg.load_more()
        self._loaded[seg.base] = seg
        self._loaded.move_to_end(seg.base)
        while len(self._loaded) > _INDEXES_KEPT:
            self._loaded.popitem(last=False)[1].drop()
        return seg.seqs, seg.ends

    def stats(self) -> LogStats:
        with self._lock:
            segments = list(self._segments)
        size = 0
        for seg in segments:
            with contextlib.suppress(FileNotFoundError):
                size += seg.data_path.stat().st_size
        return LogStats(head=self.head, horizon=self.horizon, segments=len(segments), bytes=size)

    # -- reading ----------------------------------------------------------------------------
    def read_chunk(self, from_seq: int, max_bytes: int = 1 << 20) -> Chunk | None:
        """Committed lines with seq >= `from_seq`, at most about `max_bytes` of them (always at
        least one line), from one segment; None when there is nothing at or after `from_seq`."""
        try:
            return self._read_chunk(from_seq, max_bytes)
        except FileNotFoundError:
            # Compaction replaced a generation after we listed it: list again and retry once.
            self.refresh(relist=True)
            return self._read_chunk(from_seq, max_bytes)

    def _read_chunk(self, from_seq: int, max_bytes: int) -> Chunk | None:
        with self._lock:
            segments = list(self._segments)
            bases = list(self._bases)
        first = max(bisect.bisect_right(bases, from_seq) - 1, 0)
        for seg in segments[first:]:
            with self._lock:
                seqs, ends = self._index(seg)
                n = len(seqs)  # the active segment's entries past n may arrive meanwhile; use these
            j = bisect.bisect_left(seqs, from_seq, 0, n)
            if j == n:
                continue
            start = ends[j - 1] if j else 0
            k = max(bisect.bisect_right(ends, start + max_bytes, j, n), j + 1)
            end = ends[k - 1]
            with open(seg.data_path, "rb") as f:
                data = os.pread(f.fileno(), end - start, start)
            return Chunk(data, seqs[j:k], ends[j:k], start)
        return None

    def iter_chunks(self, from_seq: int = 0, *, max_bytes: int = 1 << 20) -> Iterator[Chunk]:
        """Every committed chunk from `from_seq` up to the head as it is when each is read."""
        seq = from_seq
        while (chunk := self.read_chunk(seq, max_bytes)) is not None:
            yield chunk
            seq = chunk.last_seq + 1

    def iter_events(self, from_seq: int = 0) -> Iterator[Event]:
        """Every committed event with seq >= `from_seq`, decoded."""
        # Small chunks: decoding thousands of events at once keeps them all alive through the
        # garbage collector's young-generation passes, which then cost more than the decoding.
        for chunk in self.iter_chunks(from_seq, max_bytes=_DECODE_BYTES):
            yield from chunk.events()

    def read(self, from_seq: int = 0, limit: int = 1000) -> list[Event]:
        """Up to `limit` committed events with seq >= `from_seq`."""
        events: list[Event] = []
        for chunk in self.iter_chunks(from_seq, max_bytes=_DECODE_BYTES):
            events.extend(chunk.events()[: limit - len(events)])
            if len(events) >= limit:
                break
        return events


@dataclass
class CompactionReport:
    """What one `LogWriter.compact()` did."""

    horizon: int
    segments_rewritten: int = 0
    segments_removed: int = 0
    posts_dropped: int = 0
    bytes_before: int = 0
    bytes_after: int = 0


class LogWriter:
    """The log's one writer. Opening it takes an exclusive lock and recovers the last segment.

    `segment_bytes`: a new segment starts once the active one is this big. `retention_bytes` and
    `retention_seconds` (0 = no limit) bound what is kept whole; deletes are kept regardless.
    Retention is applied when a segment fills up; dropping deleted posts' bodies reads the whole
    log, so it runs at most every `compact_seconds` then (and whenever `compact()` is called).
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        segment_bytes: int = 64 << 20,
        retention_bytes: int = 0,
        retention_seconds: float = 0,
        compact_seconds: float = 3600,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        self.retention_bytes = retention_bytes
        self.retention_seconds = retention_seconds
        self.compact_seconds = compact_seconds
        self._lock_fd = os.open(self.directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._lock_fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(self._lock_fd)
            raise LogBusyError(
                f"{self.directory} is being written by another process (pid {holder}); "
                "the log has one writer: stop it, or append through it"
            ) from None
        os.ftruncate(self._lock_fd, 0)
        os.pwrite(self._lock_fd, str(os.getpid()).encode(), 0)
        self._encoder = msgspec.json.Encoder()
        # The active segment as (base, gen, committed size): replaced whole, so the compaction
        # thread always reads a consistent triple.
        self._active = (0, 0, 0)
        self._next = 0
        self._compacting = threading.Lock()
        self._compactor: threading.Thread | None = None
        self._compacted_at = time.monotonic()
        self._remove_leftovers()
        self._open_active()

    # -- opening ----------------------------------------------------------------------------
    def _remove_leftovers(self) -> None:
        """Drop temporary files and superseded or half-written generations from earlier runs."""
        newest = _list_segments(self.directory)
        for name in os.listdir(self.directory):
            m = _NAME.match(name)
            if name.endswith(".tmp") or (m and newest.get(int(m[1])) != int(m[2])):
                (self.directory / name).unlink()

    def _open_active(self) -> None:
        newest = _list_segments(self.directory)
        if not newest:
            self._create_segment(0)
            return
        base = max(newest)
        size, self._next = self._recover(base, newest[base])
        self._active = (base, newest[base], size)
        self._data_fd = os.open(self._path("log"), os.O_WRONLY | os.O_APPEND)
        self._idx_fd = os.open(self._path("idx"), os.O_WRONLY | os.O_APPEND)

    def _recover(self, base: int, gen: int) -> tuple[int, int]:
        """Make the last segment end on a whole line and its index match its data exactly;
        return (size, next seq)."""
        data_path = self.directory / _seg_name(base, gen, "log")
        idx_path = self.directory / _seg_name(base, gen, "idx")
        data = data_path.read_bytes()
        keep = data.rfind(b"\n") + 1
        try:
            heads = _head_decoder.decode_lines(data[:keep])
        except (msgspec.DecodeError, msgspec.ValidationError):
            heads, keep = _decodable_prefix(data[:keep])
        if keep < len(data):
            # A torn write from a crash: keep the bytes for a person to look at, out of the log.
            with open(data_path.with_suffix(".torn"), "ab") as f:
                f.write(data[keep:])
            os.truncate(data_path, keep)
        pairs = array("q")
        end = 0
        for head, line in zip(heads, data[:keep].split(b"\n"), strict=False):
            end += len(line) + 1
            if pairs and head.seq <= pairs[-2]:
                raise LogError(f"{data_path}: seq {head.seq} follows {pairs[-2]}; the segment is damaged")
            pairs.extend((head.seq, end))
        if idx_path.read_bytes() != pairs.tobytes():
            _write_atomic(idx_path, pairs.tobytes())
        for path in (data_path, idx_path):
            fd = os.open(path, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
        return keep, (pairs[-2] + 1 if pairs else base)

    def _path(self, ext: str) -> Path:
        base, gen, _ = self._active
        return self.directory / _seg_name(base, gen, ext)

    def _create_segment(self, base: int) -> None:
        self._active = (base, 0, 0)
        self._next = base
        # Data file first: a reader only takes a segment once both files exist.
        self._data_fd = os.open(self._path("log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
        self._idx_fd = os.open(self._path("idx"), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
        _fsync_dir(self.directory)

    # -- appending --------------------------------------------------------------------------
    @property
    def next_seq(self) -> int:
        return self._next

    @property
    def head(self) -> int:
        """The last committed seq, -1 when the log is empty."""
        return self._next - 1

    def append(self, events: Iterable[Event]) -> int:
        """Append a batch durably (one fsync) and return the last seq given; each event's `seq`
        is set to its place in the log, whatever it held before."""
        base, gen, size = self._active
        if size >= self.segment_bytes:
            self._roll()
            base, gen, size = self._active
        buf = bytearray()
        pairs = array("q")
        seq = self._next
        encode_into = self._encoder.encode_into
        for event in events:
            event.seq = seq
            encode_into(event, buf, -1)
            buf += b"\n"
            pairs.append(seq)
            pairs.append(size + len(buf))
            seq += 1
        if not pairs:
            return self.head
        _write_all(self._data_fd, buf)
        os.fdatasync(self._data_fd)
        _write_all(self._idx_fd, pairs.tobytes())  # the commit: readers now see the batch
        self._active = (base, gen, size + len(buf))
        self._next = seq
        return seq - 1

    def _roll(self) -> None:
        """Seal the active segment, start the next one at the next seq, and apply retention."""
        os.fsync(self._idx_fd)
        os.close(self._data_fd)
        os.close(self._idx_fd)
        self._create_segment(self._next)
        full = time.monotonic() - self._compacted_at >= self.compact_seconds
        if full or self.retention_bytes or self.retention_seconds:
            self.compact_in_background(drop_deleted=full)

    def close(self) -> None:
        if self._compactor is not None:
            self._compactor.join()
        os.fsync(self._idx_fd)
        os.close(self._data_fd)
        os.close(self._idx_fd)
        os.close(self._lock_fd)

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- retention and compaction -----------------------------------------------------------
    def compact_in_background(self, *, drop_deleted: bool = True) -> None:
        """Run `compact()` in a thread unless one is running; appends carry on meanwhile."""
        if self._compactor is None or not self._compactor.is_alive():
            self._compactor = threading.Thread(
                target=self.compact, kwargs={"drop_deleted": drop_deleted}, name="log-compaction", daemon=True
            )
            self._compactor.start()

    def compact(self, *, drop_deleted: bool = True, now: float | None = None) -> CompactionReport:
        """Apply retention to sealed segments, and (with `drop_deleted`) drop the bodies of posts
        deleted anywhere in the log. The active segment is left alone."""
        with self._compacting:
            report = self._compact(drop_deleted, time.time() if now is None else now)
            if drop_deleted:
                self._compacted_at = time.monotonic()
            return report

    def _compact(self, drop_deleted: bool, now: float) -> CompactionReport:
        active_base, active_gen, active_size = self._active
        newest = _list_segments(self.directory)
        sealed = sorted(b for b in newest if b < active_base)
        paths = {b: self.directory / _seg_name(b, newest[b], "log") for b in sealed}
        stats = {b: paths[b].stat() for b in sealed}
        report = CompactionReport(
            horizon=_read_horizon(self.directory), bytes_before=sum(s.st_size for s in stats.values())
        )

        # Retention: the oldest whole segments past the limits keep only their deletes. The
        # horizon moves first, so a crash half-way leaves segments whole below it (harmless),
        # never a segment cut down above it.
        horizon = report.horizon
        whole = [b for b in sealed if b >= horizon]
        kept_bytes = sum(stats[b].st_size for b in whole) + active_size
        for i, b in enumerate(whole):
            too_old = self.retention_seconds and stats[b].st_mtime < now - self.retention_seconds
            too_big = self.retention_bytes and kept_bytes > self.retention_bytes
            if not (too_old or too_big):
                break
            kept_bytes -= stats[b].st_size
            horizon = whole[i + 1] if i + 1 < len(whole) else active_base
        if horizon > report.horizon:
            _write_atomic(self.directory / _HORIZON_FILE, str(horizon).encode())
            report.horizon = horizon

        deleted: set[str] = set()
        if drop_deleted:
            active_path = self.directory / _seg_name(active_base, active_gen, "log")
            with open(active_path, "rb") as f:
                active_data = os.pread(f.fileno(), active_size, 0)
            for data in [*(paths[b].read_bytes() for b in sealed), active_data]:
                deleted.update(h.id for h in _head_decoder.decode_lines(data) if h.type == "delete")

        for b in sealed:
            if not drop_deleted and b >= horizon:
                report.bytes_after += stats[b].st_size
                continue
            data = paths[b].read_bytes()
            heads = _head_decoder.decode_lines(data)
            keep = [h.type != "post" or (b >= horizon and h.id not in deleted) for h in heads]
            if all(keep):
                report.bytes_after += len(data)
                continue
            report.posts_dropped += keep.count(False)
            lines = data.split(b"\n")
            kept = [(h, lines[i]) for i, h in enumerate(heads) if keep[i]]
            if kept:
                report.bytes_after += self._rewrite(b, newest[b], kept, stats[b].st_mtime)
                report.segments_rewritten += 1
            else:
                for ext in ("log", "idx"):
                    (self.directory / _seg_name(b, newest[b], ext)).unlink()
                report.segments_removed += 1
        return report

    def _rewrite(self, base: int, gen: int, kept: list[tuple[_Head, bytes]], mtime: float) -> int:
        """Write generation gen+1 of a segment holding `kept`, then remove generation gen."""
        data = bytearray()
        pairs = array("q")
        for head, line in kept:
            data += line
            data += b"\n"
            pairs.extend((head.seq, len(data)))
        new_log = self.directory / _seg_name(base, gen + 1, "log")
        _write_atomic(new_log, bytes(data), fsync_dir=False)
        os.utime(new_log, (mtime, mtime))  # retention by age reads the segment's last append time
        _write_atomic(self.directory / _seg_name(base, gen + 1, "idx"), pairs.tobytes())
        for ext in ("log", "idx"):
            (self.directory / _seg_name(base, gen, ext)).unlink()
        return len(data)


def _decodable_prefix(data: bytes) -> tuple[list[_Head], int]:
    """The lines that decode, up to the first that does not, and how many bytes they span."""
    heads, keep = [], 0
    for line in data.split(b"\n")[:-1]:
        try:
            heads.append(_head_decoder.decode(line))
        except (msgspec.DecodeError, msgspec.ValidationError):
            break
        keep += len(line) + 1
    return heads, keep


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, content: bytes, *, fsync_dir: bool = True) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    if fsync_dir:
        _fsync_dir(path.parent)
