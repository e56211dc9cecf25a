"""The stream server's shared state: the newest committed events held once in memory for every
connection, the open connections, and the watchers that end them.

One task polls the log and reads each newly committed run of events once, as the bytes the writer
encoded; every connection at the live edge sends those same bytes (sliced, or joined with other
blocks, never re-encoded). A connection that is behind reads the log from disk in large chunks.
Filters need a few fields of each event; those are decoded once per block, on first need, and
shared by every filtered connection. Other watchers apply revocations and entitlement changes made
by another process (the CLI) within a fraction of a second, and end connections that are far behind
and not moving.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import datetime as dt
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import msgspec

from roost.firehose.config import FirehoseConfig
from roost.firehose.consumers import Consumer, Registry
from roost.firehose.filters import (
    EventFilter,
    EventView,
    NotEntitledError,
    StreamRequest,
    decode_views,
    narrow,
)
from roost.firehose.log import Chunk, Log
from roost.firehose.protocol import FinalReason, Heartbeat, encode_control

logger = logging.getLogger("roost.firehose")

_RATE_WINDOW = 60.0  # rate limits count connects over the last minute
_REGISTRY_POLL = 0.2  # revocations made elsewhere take effect within this (+ one write)


class Refused(Exception):
    """A request turned down: its HTTP status, and the error code and message of the JSON body."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


@dataclass
class _Block:
    chunk: Chunk
    _views: list[EventView] | None = None

    def views(self) -> list[EventView]:
        if self._views is None:
            self._views = decode_views(self.chunk)
        return self._views


@dataclass(eq=False)
class Connection:
    """One open stream."""

    id: int
    consumer: str
    request: StreamRequest
    filter: EventFilter
    next: int  # the cursor to resume at: everything before it was sent or filtered out
    remote: str
    compress: bool
    connected_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    delivered: int = 0
    progress_at: float = field(default_factory=time.monotonic)
    stop_reason: FinalReason | None = None
    stop_message: str = ""
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    rate: float = 0.0
    _counted: int = 0

    def stop(self, reason: FinalReason, message: str = "") -> None:
        if self.stop_reason is None:
            self.stop_reason, self.stop_message = reason, message
            self.stopped.set()


class ConnectionStats(msgspec.Struct):
    id: int
    consumer: str
    remote: str
    next: int
    lag: int
    delivered: int
    rate: float
    connected_at: dt.datetime
    compress: bool


class HubStats(msgspec.Struct):
    """`GET /firehose/admin/stats`."""

    head: int
    horizon: int
    append_rate: float  # events/s committed to the log, over the last few seconds
    delivered_rate: float  # events/s sent, all connections together
    consumers_connected: list[str]
    connections: list[ConnectionStats]


class Hub:
    """Everything the stream routes share. Create it, `await start()`, and `await close()`."""

    def __init__(self, log: Log, registry: Registry, config: FirehoseConfig) -> None:
        self.log = log
        self.registry = registry
        self.config = config
        self.head = log.refresh()
        self.closing = False
        self.append_rate = 0.0
        self._blocks: list[_Block] = []
        self._firsts: list[int] = []
        self._cached_bytes = 0
        self._wake = asyncio.Event()
        self._connections: dict[int, Connection] = {}
        self._ids = itertools.count(1)
        self._connects: dict[str, deque[float]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._follow_log(), name="firehose-follow-log"),
            asyncio.create_task(self._watch_registry(), name="firehose-watch-registry"),
            asyncio.create_task(self._watch_connections(), name="firehose-watch-connections"),
        ]

    async def close(self) -> None:
        self.begin_shutdown()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def begin_shutdown(self) -> None:
        """Refuse new streams and end the open ones with `server_shutdown`."""
        self.closing = True
        for conn in list(self._connections.values()):
            conn.stop("server_shutdown", "the server is stopping; reconnect and resume from `next`")

    # -- admission --------------------------------------------------------------------------
    def admit(
        self, consumer: Consumer, request: StreamRequest, cursor: int | None, *, remote: str, compress: bool
    ) -> Connection:
        """Open a connection for an authenticated consumer, or raise Refused."""
        try:
            if self.closing:
                raise Refused(503, "server_shutdown", "the server is stopping; retry shortly")
            if consumer.revoked:
                raise Refused(403, "credential_revoked", f"consumer {consumer.name!r} has been revoked")
            try:
                effective = narrow(consumer.entitlements, request)
            except NotEntitledError as exc:
                raise Refused(403, "not_entitled", str(exc)) from None
            next_seq = self.head + 1
            if cursor is not None and cursor > next_seq:
                raise Refused(400, "bad_cursor", f"cursor {cursor} is past the log's next seq {next_seq}")
            self._check_limits(consumer)
        except Refused as refused:
            self.registry.audit(
                consumer.name, "refuse", {"remote": remote, "status": refused.status, "error": refused.code}
            )
            raise
        conn = Connection(
            id=next(self._ids),
            consumer=consumer.name,
            request=request,
            filter=EventFilter(effective),
            next=next_seq if cursor is None else cursor,
            remote=remote,
            compress=compress,
        )
        self._connections[conn.id] = conn
        self.registry.audit(
            consumer.name,
            "connect",
            {
                "connection": conn.id,
                "remote": remote,
                "cursor": cursor,
                "start": conn.next,
                "filters": effective,
                "compress": compress,
            },
        )
        return conn

    def _check_limits(self, consumer: Consumer) -> None:
        now = time.monotonic()
        if consumer.rate_limit:
            recent = self._connects.setdefault(consumer.name, deque())
            while recent and recent[0] < now - _RATE_WINDOW:
                recent.popleft()
            if len(recent) >= consumer.rate_limit:
                retry = recent[0] + _RATE_WINDOW - now
                raise Refused(
                    429,
                    "rate_limited",
                    f"at most {consumer.rate_limit} connects a minute; retry in {retry:.0f} s",
                    retry_after=retry,
                )
            recent.append(now)
        if consumer.max_connections:
            open_now = sum(1 for c in self._connections.values() if c.consumer == consumer.name)
            if open_now >= consumer.max_connections:
                raise Refused(
                    429,
                    "connection_cap",
                    f"{consumer.name!r} may hold {consumer.max_connections} streams; {open_now} are open",
                    retry_after=1.0,
                )

    def release(self, conn: Connection, *, sent_final: bool) -> None:
        """Forget a connection that has ended, and write its disconnect to the audit log."""
        self._connections.pop(conn.id, None)
        self.registry.audit(
            conn.consumer,
            "disconnect",
            {
                "connection": conn.id,
                "reason": conn.stop_reason or "client_closed",
                "final_sent": sent_final,
                "next": conn.next,
                "delivered": conn.delivered,
                "seconds": round((dt.datetime.now(dt.UTC) - conn.connected_at).total_seconds(), 3),
            },
        )

    def revoke(self, name: str) -> int:
        """End the consumer's open streams with `credential_revoked`; return how many."""
        conns = [c for c in self._connections.values() if c.consumer == name]
        for conn in conns:
            conn.stop("credential_revoked", f"consumer {name!r} has been revoked")
        return len(conns)

    def apply_consumer(self, consumer: Consumer) -> None:
        """Bring a consumer's open streams in line with its current record (revoked or re-entitled)."""
        if consumer.revoked:
            self.revoke(consumer.name)
            return
        for conn in self._connections.values():
            if conn.consumer == consumer.name:
                try:
                    conn.filter = EventFilter(narrow(consumer.entitlements, conn.request))
                except NotEntitledError as exc:
                    conn.stop("credential_revoked", f"entitlements changed: {exc}")

    def connected(self, name: str) -> int:
        return sum(1 for c in self._connections.values() if c.consumer == name)

    # -- streaming --------------------------------------------------------------------------
    async def payloads(self, conn: Connection) -> AsyncIterator[bytes]:
        """What to write to a connection, in order, until it must end. `conn.next` moves past a
        payload only once the caller asks for the next one, i.e. after it was written."""
        heartbeat = self.config.heartbeat_seconds
        last_write = time.monotonic()
        while conn.stop_reason is None:
            horizon = self.log.horizon
            if conn.next < horizon:
                # Below the horizon retention kept only the deletes: send those (a late consumer
                # must still hear of every deletion), then say that posts are missing.
                body, last = await self._read_disk(conn, before=horizon)
                if last is None:
                    conn.next = horizon
                    conn.stop(
                        "cursor_too_old", f"posts before seq {horizon} are past retention; deletes were sent"
                    )
                    return
            else:
                body, last = await self._read(conn)
            if last is not None:
                if body:
                    yield body
                    conn.delivered += body.count(b"\n")
                    last_write = time.monotonic()
                conn.next = last + 1
                conn.progress_at = time.monotonic()
                continue
            idle = time.monotonic() - last_write
            if idle >= heartbeat:
                yield encode_control(Heartbeat(head=self.head, next=conn.next))
                last_write = time.monotonic()
                continue
            wake = self._wake
            # asyncio.timeout, not wait_for: in 3.11 wait_for can swallow a cancellation that
            # arrives as the event fires, and the stream would outlive its revocation.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(heartbeat - idle):
                    await wake.wait()

    async def _read(self, conn: Connection) -> tuple[bytes, int | None]:
        """The next bytes for `conn` (filtered) and the last seq they cover; (b"", None) when
        the connection is caught up."""
        seq = conn.next
        if seq > self.head:
            return b"", None
        budget = self.config.write_bytes
        if self._firsts and seq >= self._firsts[0]:
            pieces: list[bytes] = []
            last = seq
            i = bisect.bisect_right(self._firsts, seq) - 1
            for block in self._blocks[i:]:
                chunk = block.chunk
                start = bisect.bisect_left(chunk.seqs, seq) if not pieces else 0
                views = None if conn.filter.passes_all else block.views()
                pieces.append(conn.filter.select(chunk, views, start))
                last = chunk.last_seq
                budget -= len(chunk.data)
                if budget <= 0:
                    break
            return b"".join(pieces), last
        return await self._read_disk(conn)

    async def _read_disk(self, conn: Connection, before: int | None = None) -> tuple[bytes, int | None]:
        """Like `_read`, from the log files (in a thread), optionally only seqs below `before`."""
        chunk = await asyncio.to_thread(self.log.read_chunk, conn.next, self.config.write_bytes)
        if chunk is not None and before is not None:
            chunk = chunk.head_before(before)
        if chunk is None:
            return b"", None
        views = None if conn.filter.passes_all else decode_views(chunk)
        return conn.filter.select(chunk, views), chunk.last_seq

    # -- watchers ---------------------------------------------------------------------------
    async def _follow_log(self) -> None:
        """Take newly committed events into the shared cache and wake the waiting connections."""
        while True:
            try:
                if self.log.refresh() > self.head:
                    self._take_new()
            except Exception:  # a bad moment on disk must not stop every stream; try again
                logger.exception("reading the log failed; retrying")
            await asyncio.sleep(self.config.poll_seconds)

    def _take_new(self) -> None:
        seq = self.head + 1
        while (chunk := self.log.read_chunk(seq, self.config.write_bytes)) is not None:
            self._blocks.append(_Block(chunk))
            self._firsts.append(chunk.first_seq)
            self._cached_bytes += len(chunk.data)
            seq = chunk.last_seq + 1
        self.head = seq - 1
        if self._cached_bytes > self.config.cache_bytes:
            drop = 0
            while self._cached_bytes > self.config.cache_bytes * 3 // 4:
                self._cached_bytes -= len(self._blocks[drop].chunk.data)
                drop += 1
            del self._blocks[:drop]
            del self._firsts[:drop]
        wake, self._wake = self._wake, asyncio.Event()
        wake.set()

    async def _watch_registry(self) -> None:
        """Apply what another process changed in consumers.db: revocations end streams at once."""
        version = self.registry.data_version()
        while True:
            await asyncio.sleep(_REGISTRY_POLL)
            try:
                now_version = self.registry.data_version()
                if now_version != version:
                    version = now_version
                    for name in {c.consumer for c in self._connections.values()}:
                        self.apply_consumer(self.registry.get(name))
            except Exception:
                logger.exception("reading consumers.db failed; retrying")

    async def _watch_connections(self) -> None:
        """Once a second: rates for the stats, and end streams far behind that are not moving."""
        last_head, last_time = self.head, time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            elapsed = now - last_time
            self.append_rate = 0.5 * self.append_rate + 0.5 * (self.head - last_head) / elapsed
            last_head, last_time = self.head, now
            for conn in list(self._connections.values()):
                conn.rate = 0.5 * conn.rate + 0.5 * (conn.delivered - conn._counted) / elapsed
                conn._counted = conn.delivered
                behind = self.head - conn.next
                stalled = now - conn.progress_at
                if behind > self.config.slow_lag_events and stalled > self.config.slow_stall_seconds:
                    conn.stop(
                        "consumer_too_slow",
                        f"{behind} events behind and no progress for {stalled:.0f} s",
                    )

    def stats(self) -> HubStats:
        conns = list(self._connections.values())
        return HubStats(
            head=self.head,
            horizon=self.log.horizon,
            append_rate=round(self.append_rate, 1),
            delivered_rate=round(sum(c.rate for c in conns), 1),
            consumers_connected=sorted({c.consumer for c in conns}),
            connections=[
                ConnectionStats(
                    id=c.id,
                    consumer=c.consumer,
                    remote=c.remote,
                    next=c.next,
                    lag=max(self.head + 1 - c.next, 0),
                    delivered=c.delivered,
                    rate=round(c.rate, 1),
                    connected_at=c.connected_at,
                    compress=c.compress,
                )
                for c in conns
            ],
        )
