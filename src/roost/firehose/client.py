"""The resilient firehose consumer: read the stream into a sink, exactly once, whatever crashes.

A sink is anything with `apply(events, cursor=(name, seq))`, which stores a batch and the cursor it
reaches in one transaction, and `cursor(name) -> int | None`, the last seq committed (the raw store
is one; a search index can be another). The consumer asks the sink where it stands, asks the
server for the next seq on, and commits each received block with its last seq. A crash of the
consumer loses at most an uncommitted block, which the server sends again; a crash of the server
ends the connection, and the consumer reconnects with exponential back-off and full jitter and
resumes from its cursor. Events at or below the committed cursor are never applied again.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import msgspec

from roost.firehose.protocol import CONTROL_PREFIX, Final, Heartbeat, decode_control, has_control
from roost.posts import Event

logger = logging.getLogger("roost.firehose.client")

_event_decoder = msgspec.json.Decoder(Event)
STREAM_PATH = "/firehose/stream"


class Sink(Protocol):
    """Where a consumer writes. `apply` must store the events and the cursor atomically."""

    def apply(self, events: list[Event], *, cursor: tuple[str, int]) -> Any: ...

    def cursor(self, name: str) -> int | None: ...


class FirehoseError(RuntimeError):
    """The stream refused us in a way that retrying will not fix."""


class StreamRefused(FirehoseError):
    """An HTTP error from the server: `status`, and the JSON body's `error` and `message`."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


class CredentialRevoked(FirehoseError):
    """This consumer's key was revoked."""


class CursorTooOld(FirehoseError):
    """The events after our cursor are past the log's retention; resuming would leave a gap."""

    def __init__(self, final: Final) -> None:
        super().__init__(f"cursor too old: {final.message}; the log is whole from seq {final.next}")
        self.final = final


@dataclass
class Batch:
    """Events received in one read, in seq order."""

    events: list[Event]


StreamItem = Batch | Heartbeat | Final


def stream_url(url: str) -> str:
    """The stream endpoint for a server's base URL (or the endpoint itself)."""
    url = url.rstrip("/")
    return url if urlsplit(url).path.endswith(STREAM_PATH) else url + STREAM_PATH


def read_stream(
    client: httpx.Client,
    url: str,
    key: str,
    *,
    cursor: int | None,
    filters: dict[str, str] | None = None,
    compress: bool = False,
) -> Iterator[StreamItem]:
    """One connection's stream, as batches of decoded events and control frames. Returns when the
    server ends the stream; raises StreamRefused for an HTTP error, httpx errors for transport ones."""
    params = dict(filters or {})
    if cursor is not None:
        params["cursor"] = str(cursor)
    if compress:
        params["compress"] = "zstd"
    headers = {"authorization": f"Bearer {key}", "accept-encoding": "zstd" if compress else "identity"}
    with client.stream("GET", stream_url(url), params=params, headers=headers) as response:
        if response.status_code != 200:
            response.read()
            raise _refusal(response)
        rest = b""
        for data in response.iter_bytes():
            rest += data
            cut = rest.rfind(b"\n") + 1
            if cut:
                block, rest = rest[:cut], rest[cut:]
                yield from _parse_block(block)


def _parse_block(block: bytes) -> Iterator[StreamItem]:
    if not has_control(block):
        yield Batch(_event_decoder.decode_lines(block))
        return
    events: list[Event] = []
    for line in block.splitlines():
        if line.startswith(CONTROL_PREFIX):
            if events:
                yield Batch(events)
                events = []
            yield decode_control(line)
        elif line:
            events.append(_event_decoder.decode(line))
    if events:
        yield Batch(events)


def _refusal(response: httpx.Response) -> StreamRefused:
    try:
        body = response.json()
        code, message = str(body.get("error", "")), str(body.get("message", ""))
    except ValueError:
        code, message = "", response.text[:200]
    retry = response.headers.get("retry-after")
    return StreamRefused(response.status_code, code, message, float(retry) if retry else None)


@dataclass
class Backoff:
    """Exponential back-off with full jitter: wait uniformly in [0, min(cap, initial * 2**n)]."""

    initial: float = 0.2
    cap: float = 30.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        return self.rng.uniform(0, min(self.cap, self.initial * 2**attempt))


@dataclass
class ConsumeStats:
    """What a `StreamConsumer.run()` did."""

    events: int = 0
    batches: int = 0
    connections: int = 0
    cursor: int | None = None
    finals: dict[str, int] = field(default_factory=dict)
    skipped: int = 0  # events at or below the committed cursor, received again and not applied


class StreamConsumer:
    """Keeps a sink up to date with a firehose server until stopped.

    `start` is where a sink with no cursor yet begins: "earliest" (the oldest whole event) or
    "latest" (only what arrives from now on). With `accept_gap`, a consumer whose cursor fell
    behind retention jumps to the oldest whole event instead of stopping with CursorTooOld.
    """

    def __init__(
        self,
        url: str,
        key: str,
        sink: Sink,
        *,
        name: str = "firehose",
        filters: dict[str, str] | None = None,
        compress: bool = False,
        start: str = "earliest",
        accept_gap: bool = False,
        backoff: Backoff | None = None,
        read_timeout: float = 45.0,
    ) -> None:
        if start not in ("earliest", "latest"):
            raise ValueError(f"start must be 'earliest' or 'latest', not {start!r}")
        self.url, self.key, self.sink, self.name = url, key, sink, name
        self.filters, self.compress, self.start, self.accept_gap = filters, compress, start, accept_gap
        self.backoff = backoff or Backoff()
        self.timeout = httpx.Timeout(10.0, read=read_timeout)
        self.stats = ConsumeStats()
        self._fresh = False

    def run(self, *, stop: threading.Event | None = None, until: int | None = None) -> ConsumeStats:
        """Consume until `stop` is set or the cursor reaches `until`; reconnect on every failure
        that a retry can fix, and raise the ones it cannot (revoked key, bad request, gap)."""
        stop = stop or threading.Event()
        attempt = 0
        with httpx.Client(timeout=self.timeout) as client:
            while not stop.is_set() and not self._reached(until):
                wait = None
                try:
                    if self._connect_once(client, stop, until):
                        attempt = 0
                except StreamRefused as refused:
                    if refused.status != 429 and refused.status < 500:
                        if refused.code == "credential_revoked":
                            raise CredentialRevoked(refused.message) from refused
                        raise
                    wait = refused.retry_after
                except (httpx.TransportError, httpx.RemoteProtocolError, msgspec.DecodeError) as exc:
                    logger.info("stream interrupted (%s); reconnecting", exc)
                if stop.is_set() or self._reached(until):
                    break
                delay = wait if wait is not None else self.backoff.delay(attempt)
                attempt += 1
                stop.wait(delay)
        return self.stats

    def _reached(self, until: int | None) -> bool:
        return until is not None and (self.stats.cursor or -1) >= until

    def _connect_once(self, client: httpx.Client, stop: threading.Event, until: int | None) -> bool:
        """Read one connection to its end; True if it delivered anything (the back-off resets)."""
        committed = self.sink.cursor(self.name)
        self.stats.cursor = committed
        if committed is not None:
            cursor: int | None = committed + 1
        else:
            cursor = 0 if self.start == "earliest" else None
        self.stats.connections += 1
        self._fresh = committed is None
        progressed = False
        for item in read_stream(
            client, self.url, self.key, cursor=cursor, filters=self.filters, compress=self.compress
        ):
            if isinstance(item, Batch):
                progressed |= self._apply(item.events)
            elif isinstance(item, Heartbeat):
                self._advance(item.next - 1)
            else:
                self.stats.finals[item.reason] = self.stats.finals.get(item.reason, 0) + 1
                self._final(item)
                return progressed
            if stop.is_set() or self._reached(until):
                return progressed
        return progressed

    def _apply(self, events: list[Event]) -> bool:
        committed = self.stats.cursor
        if committed is not None and events and events[0].seq <= committed:
            fresh = [e for e in events if e.seq > committed]
            self.stats.skipped += len(events) - len(fresh)
            events = fresh
        if not events:
            return False
        last = events[-1].seq
        self.sink.apply(events, cursor=(self.name, last))
        self.stats.cursor = last
        self.stats.events += len(events)
        self.stats.batches += 1
        return True

    def _advance(self, seq: int) -> None:
        """Commit a cursor the server vouches for (everything up to it was sent or filtered)."""
        if seq >= 0 and seq > (self.stats.cursor if self.stats.cursor is not None else -1):
            self.sink.apply([], cursor=(self.name, seq))
            self.stats.cursor = seq

    def _final(self, final: Final) -> None:
        if final.reason == "credential_revoked":
            raise CredentialRevoked(final.message)
        if final.reason == "cursor_too_old":
            # The deletes below the horizon have been applied by now. A sink that held nothing
            # before this connection loses nothing by starting at the oldest whole event.
            if self._fresh or self.accept_gap:
                logger.warning("%s; resuming at seq %d", final.message, final.next)
                self._advance(final.next - 1)
                return
            raise CursorTooOld(final)
        self._advance(final.next - 1)
        logger.info("server ended the stream (%s); resuming at %d", final.reason, final.next)


def wait_until_healthy(url: str, *, timeout: float = 10.0) -> None:
    """Poll a server's `/health` until it answers 200 (for scripts and tests that start one)."""
    base = url.rstrip("/").removesuffix(STREAM_PATH)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(base + "/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{base} did not become healthy within {timeout} s")
        time.sleep(0.05)
