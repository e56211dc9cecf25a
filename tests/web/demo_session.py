"""The demo the web and demo tests share (a pytest plugin: `pytest_plugins = ["tests.web.demo_session"]`
in each test module, so the session fixture is built once for both).

`demo_home` runs `roost demo --no-serve` with a tiny time budget on a fresh home, as a newcomer
would (but without serving), pressing Ctrl-C once during pretraining and running it again;
`launch_demo(home)` then starts `roost demo` on it, which reuses every stage and serves on a free
port, and reads the URL and keys it prints.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from roost.workspace import Workspace

BUDGET_S = 45  # the tiny plan: ~2,500 events, the tiny preset, seconds of training
LINK = re.compile(r"(http://127\.0\.0\.1:\d+)/#key=(rk_[\w-]+)&admin=(rfa_[\w-]+)")


def roost(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "roost", "--home", str(home), *args]


def env() -> dict[str, str]:
    # Wide, plain output (the URL on one line) and one thread per torch process on 2 shared cores.
    return {**os.environ, "COLUMNS": "240", "NO_COLOR": "1", "OMP_NUM_THREADS": "1"}


@dataclass
class DemoHome:
    ws: Workspace
    summaries: dict
    output: str  # what the build that finished printed
    seconds: float
    interrupted: str  # what the first build, stopped by Ctrl-C during pretraining, printed


@dataclass
class DemoServer:
    url: str
    api_key: str
    admin_key: str
    process: subprocess.Popen
    lines: list[str] = field(default_factory=list)
    startup_seconds: float = 0.0

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def http(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key or self.api_key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def stop(self, timeout: float = 60) -> int:
        """Ctrl-C, as a person would; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise
        return self.process.returncode


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_demo(home: Path, timeout: float = 180) -> DemoServer:
    """`roost demo --port <free>` on a built home, once it printed its link and answers /health."""
    started = time.monotonic()
    process = subprocess.Popen(
        roost(home, "demo", "--port", str(free_port())),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env(),
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = LINK.search("".join(lines))
        if found:
            server = DemoServer(*found.groups(), process=process, lines=lines)
            _wait_healthy(server.url, deadline)
            server.startup_seconds = time.monotonic() - started
            return server
        if process.poll() is not None:
            reader.join(5)
            raise RuntimeError(f"roost demo exited with {process.returncode}:\n{''.join(lines)[-4000:]}")
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"roost demo printed no link within {timeout} s:\n{''.join(lines)[-4000:]}")


def _wait_healthy(url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url}/health did not answer")


def interrupt_build(home: Path, timeout: float = 300) -> str:
    """Start `roost demo --no-serve` on `home` and press Ctrl-C once pretraining has taken a step;
    what it printed. It must stop within the timeout, with exit code 130."""
    process = subprocess.Popen(
        roost(home, "demo", "--time-budget", str(BUDGET_S), "--no-serve"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env(),
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True)
    reader.start()
    metrics = home / "runs" / "demo" / "metrics.jsonl"
    deadline = time.monotonic() + timeout
    try:
        while not (metrics.exists() and '"loss"' in metrics.read_text(encoding="utf-8")):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"roost demo ended before pretraining began:\n{''.join(lines)[-4000:]}")
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reader.join(5)
    output = "".join(lines)
    assert process.returncode == 130, output[-4000:]
    return output


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> DemoHome:
    """A home built by `roost demo --no-serve --time-budget 45` from nothing, with one Ctrl-C on
    the way: the first run is interrupted during pretraining, and a second goes on from there."""
    home = tmp_path_factory.mktemp("demo") / "home"
    started = time.monotonic()
    interrupted = interrupt_build(home)
    result = subprocess.run(
        roost(home, "demo", "--time-budget", str(BUDGET_S), "--no-serve", "--json"),
        capture_output=True,
        text=True,
        env=env(),
        timeout=600,
    )
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-4000:]
    print(f"\nroost demo --time-budget {BUDGET_S} built its home in {seconds:.0f} s (with one Ctrl-C)")
    return DemoHome(Workspace(home), json.loads(result.stdout), result.stderr, seconds, interrupted)


@pytest.fixture(scope="session")
def launch_demo() -> Callable[[Path], DemoServer]:
    """`start_demo`, for test modules (which take it as a fixture rather than importing this
    plugin module, so that pytest can rewrite its asserts)."""
    return start_demo
