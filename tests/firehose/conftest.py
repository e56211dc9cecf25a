"""Helpers for the firehose tests: a seeded log, keys, and a real server process on a free port."""

from __future__ import annotations

import contextlib
import itertools
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from roost.firehose.client import wait_until_healthy
from roost.firehose.consumers import Registry
from roost.firehose.filters import Entitlements
from roost.firehose.log import LogWriter
from roost.workspace import Workspace
from tests.firehose.events import make_events

ROOST = [sys.executable, "-m", "roost"]

# Short heartbeats and a small "too slow" threshold so the tests see them within seconds.
SEEDED = 3000

TEST_CONFIG = """
[firehose]
heartbeat_seconds = 0.5
slow_lag_events = 2000
slow_stall_seconds = 1.0
backoff_initial_seconds = 0.05
backoff_max_seconds = 0.5
read_timeout_seconds = 5.0
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A `roost firehose serve` process."""

    home: Path
    port: int
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        self.process = subprocess.Popen(
            [*ROOST, "--home", str(self.home), "firehose", "serve", "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.home / "server.log", "ab"),  # noqa: SIM115 - the process holds it
        )
        wait_until_healthy(self.url, timeout=20)
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def terminate(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(20)


@pytest.fixture
def fh_ws(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path / "home").ensure()
    ws.config_path.write_text(TEST_CONFIG)
    return ws


@contextlib.contextmanager
def running_server(ws: Workspace, port: int | None = None) -> Iterator[Server]:
    server = Server(ws.home, port or free_port())
    try:
        yield server.start()
    finally:
        server.kill()


def seed_log(ws: Workspace, n: int, *, seed: int = 0) -> int:
    """Append the first n events of `make_events(seed)`; return the head seq."""
    with LogWriter(ws.firehose_dir) as writer:
        return writer.append(list(itertools.islice(make_events(seed), n)))


def add_consumer(ws: Workspace, name: str, **entitlements: object) -> str:
    """A new consumer's key."""
    registry = Registry(ws.consumers_db)
    try:
        _, key = registry.add(name, Entitlements(**entitlements), rate_limit=0, max_connections=0)
    finally:
        registry.close()
    return key


def admin_key(ws: Workspace) -> str:
    registry = Registry(ws.consumers_db)
    try:
        return registry.add_admin_key("tests")[1]
    finally:
        registry.close()


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    """One server over a seeded log of SEEDED events, shared by the tests that do not change the log."""
    ws = Workspace(tmp_path_factory.mktemp("served") / "home").ensure()
    ws.config_path.write_text(TEST_CONFIG)
    seed_log(ws, SEEDED)
    keys = {
        "all": add_consumer(ws, "all"),
        "en": add_consumer(ws, "en-only", languages=["en"]),
        "admin": admin_key(ws),
    }
    registry = Registry(ws.consumers_db)
    keys["capped"] = registry.add("capped", rate_limit=0, max_connections=1)[1]
    keys["limited"] = registry.add("limited", rate_limit=2, max_connections=0)[1]
    registry.close()
    with running_server(ws) as server:
        yield server, keys, ws
