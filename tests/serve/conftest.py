"""Fixtures for the serving tests: the tiny model's workspace (built once), an API key, and real
`roost serve` processes on free ports, as llama.cpp's server tests do."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from roost.apikeys import ApiKeyStore
from roost.workspace import Workspace
from tests.serve.fixtures import RUN, build_served_workspace


@dataclass
class Served:
    ws: Workspace
    run_dir: Path
    export_dir: Path
    key: str


@dataclass
class Server:
    url: str
    key: str
    process: subprocess.Popen

    def client(self, *, strict: bool = True, **options: object) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=self.url + "/v1",
            api_key=self.key,
            max_retries=0,
            _strict_response_validation=strict,
            **options,
        )

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=30)

    def metric(self, name: str, labels: str = "") -> float:
        """One sample's value from /metrics (`labels` as written there, e.g. 'finish_reason="abort"')."""
        with self.http() as http:
            text = http.get("/metrics").text
        wanted = f"{name}{{{labels}}}" if labels else name
        for line in text.splitlines():
            if line.startswith(wanted + " "):
                return float(line.split()[-1])
        return 0.0


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    ws = Workspace(tmp_path_factory.mktemp("serve") / "home").ensure()
    run_dir, export_dir = build_served_workspace(ws)
    store = ApiKeyStore(ws.api_keys_db)
    _, key = store.add("tests")
    store.close()
    return Served(ws, run_dir, export_dir, key)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(served: Served, *options: str) -> Server:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "roost",
        "--home",
        str(served.ws.home),
        "serve",
        RUN,
        "--port",
        str(port),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([*command, "--log-level", "warning", *options], env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"roost serve exited with {process.returncode}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return Server(url, served.key, process)
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("roost serve did not become healthy within 60 s")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session")
def server(served: Served) -> Iterator[Server]:
    """The shared server: 8 slots and room for 64 more requests in the queue."""
    running = start_server(served, "--max-batch", "8", "--max-queue", "64")
    yield running
    stop_server(running)
