"""The demo's server and the life around it: the keys a person uses (new each run, the previous
run's revoked), the simulated platform still posting (appended to the log at a steady rate), and
the firehose consumers streaming from the server (the workspace's raw store, and two partners with
narrower entitlements, each into a store of its own).

Consumer keys are the consumers' own credentials, kept on their side as a partner keeps its key in
its config: `<home>/demo/keys/<name>.key`, readable by the owner only. The server stores only
their hashes. A consumer revoked in the web UI stays revoked; the next run grants a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roost.workspace import Workspace

log = logging.getLogger(__name__)
DEMO_LABEL = "roost demo"


@dataclass(frozen=True)
class ConsumerSpec:
    name: str
    languages: tuple[str, ...] = ()
    sample_rate: float = 1.0
    reposts: bool = True


RAW_STORE = ConsumerSpec("raw-store")
# Two partners a platform might grant the stream to, each keeping what it may read in its own store.
PARTNERS = (
    ConsumerSpec("acme-research", ("en",), sample_rate=0.25, reposts=False),
    ConsumerSpec("presse-fr", ("fr",)),
)


# -- keys -----------------------------------------------------------------------------------------
def consumer_key(ws: Workspace, spec: ConsumerSpec) -> tuple[str, str]:
    """(name, key) of the demo's consumer for `spec`: the one whose key is on file if it still
    works, else a new one (named `spec.name`, or `-2`, `-3`... once that name was revoked)."""
    from roost.firehose.consumers import Registry
    from roost.firehose.filters import Entitlements

    keys_dir = ws.home / "demo" / "keys"
    registry = Registry(ws.consumers_db)
    try:
        for path in sorted(keys_dir.glob(f"{spec.name}*.key")):
            consumer = registry.authenticate(path.read_text(encoding="utf-8").strip())
            if consumer is not None and not consumer.revoked and _base(consumer.name) == spec.name:
                return consumer.name, path.read_text(encoding="utf-8").strip()
        entitlements = Entitlements(
            languages=list(spec.languages), sample_rate=spec.sample_rate, reposts=spec.reposts
        )
        taken = {c.name for c in registry.list()}
        name = next(n for n in _names(spec.name) if n not in taken)
        _, key = registry.add(name, entitlements, by="demo")
    finally:
        registry.close()
    keys_dir.mkdir(parents=True, exist_ok=True)
    path = keys_dir / f"{name}.key"
    path.touch(mode=0o600)
    path.write_text(key + "\n", encoding="utf-8")
    return name, key


def _names(base: str) -> itertools.chain[str]:
    return itertools.chain([base], (f"{base}-{i}" for i in itertools.count(2)))


def _base(name: str) -> str:
    head, _, tail = name.rpartition("-")
    return head if head and tail.isdigit() else name


def person_keys(ws: Workspace) -> tuple[str, str]:
    """A new API key and firehose admin key for this run's person; the previous run's are revoked
    (they were printed once and are not needed again)."""
    from roost.apikeys import ApiKeyStore
    from roost.firehose.consumers import Registry

    store = ApiKeyStore(ws.api_keys_db)
    try:
        for old in store.list():
            if old.label == DEMO_LABEL and not old.revoked:
                store.revoke(old.key_id)
        _, api_key = store.add(DEMO_LABEL)
    finally:
        store.close()
    registry = Registry(ws.consumers_db)
    try:
        for old_admin in registry.admin_keys():
            if old_admin.label == DEMO_LABEL and old_admin.revoked_at is None:
                registry.revoke_admin_key(old_admin.key_id)
        _, admin_key = registry.add_admin_key(DEMO_LABEL)
    finally:
        registry.close()
    return api_key, admin_key


# -- a server on a thread -------------------------------------------------------------------------
class ServerThread:
    """An ASGI app under uvicorn on a thread of this process (127.0.0.1, a free port unless
    given), for the build stages; `url` is its address once entered."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app, self.host, self.port = app, host, port
        self.url = ""

    def __enter__(self) -> ServerThread:
        import uvicorn

        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.url = f"http://{self.host}:{sock.getsockname()[1]}"
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_until_complete, args=(self.server.serve([sock]),), name="demo-server"
        )
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError(f"the server at {self.url} did not start")
            self.thread.join(0.02)
        return self

    def end_streams(self) -> None:
        """Tell open firehose streams the server is stopping (on the server's own loop)."""
        hub = getattr(self.app.state, "hub", None)
        if hub is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(hub.begin_shutdown)

    def __exit__(self, *exc: object) -> None:
        self.end_streams()
        self.server.should_exit = True
        self.thread.join()
        self.loop.close()


# -- while serving: the platform keeps posting, consumers keep reading -----------------------------
def live_feed(
    ws: Workspace, plan: Any, rate: float, stop: threading.Event, note: Callable[[str], None]
) -> None:
    """Append the simulated platform's next events to the log at `rate` per second until `stop`:
    the same stream the demo started (`plan`'s), going on from where the log ends."""
    from roost.demo.stages import simulated_platform
    from roost.firehose.live import append_live, open_writer
    from roost.firehose.log import LogBusyError

    try:
        writer = open_writer(ws)
    except LogBusyError as exc:
        note(f"[yellow]the simulated platform is not posting[/]: {exc}")
        return
    with writer:
        events = iter(simulated_platform(ws, plan))
        for _ in itertools.islice(events, writer.head + 1):
            if stop.is_set():
                return
        append_live(writer, events, rate=rate, stop=stop)


def live_consumer(
    ws: Workspace, url: str, spec: ConsumerSpec, stop: threading.Event, note: Callable[[str], None]
) -> None:
    """Stream from the demo's server into this consumer's store until `stop`, or until an admin
    revokes it (then say so and end)."""
    from roost.firehose.client import CredentialRevoked, StreamConsumer
    from roost.firehose.config import FirehoseConfig
    from roost.rawstore import RawStore

    name, key = consumer_key(ws, spec)
    store_dir = store_dir_of(ws, spec)
    store_dir.mkdir(parents=True, exist_ok=True)
    cursor_name = ws.config("firehose", FirehoseConfig).consumer_name
    with RawStore.in_dir(store_dir) as store:
        try:
            StreamConsumer(url, key, store, name=cursor_name).run(stop=stop)
        except CredentialRevoked:
            note(f"[yellow]consumer {name} was revoked[/]: its stream ended and it stops reading")
        except Exception as exc:  # the demo goes on without this consumer
            note(f"[red]consumer {name} stopped[/]: {exc}")


def store_dir_of(ws: Workspace, spec: ConsumerSpec) -> Path:
    """Where a consumer keeps what it reads: the workspace's raw store, or a partner's own."""
    return ws.raw_dir if spec is RAW_STORE else ws.home / "demo" / "partners" / spec.name


@contextlib.contextmanager
def stop_on_sigterm() -> Any:
    """SIGTERM ends the demo as Ctrl-C does (uvicorn re-raises the signal once it has shut down;
    left at its default, SIGTERM would kill the process before the cleanup)."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
