"""`roost index serve` as real processes: it follows a `roost firehose serve` stream over HTTP and
serves /search on a free port behind the API keys; a post appended to the log reaches a query."""

from __future__ import annotations

import itertools
import subprocess
import time
from pathlib import Path

import httpx

from roost.apikeys import ApiKeyStore
from roost.firehose.log import LogWriter
from roost.firehose.simulate import SimConfig, simulate
from roost.posts import Event
from roost.workspace import Workspace
from tests.firehose.conftest import ROOST, TEST_CONFIG, add_consumer, free_port, running_server
from tests.search.conftest import post


def _wait_healthy(url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "roost index serve exited"
        try:
            if httpx.get(url + "/search/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not become healthy within {timeout} s")


def test_index_serve_follows_the_stream_and_answers_over_http(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "home").ensure()
    ws.config_path.write_text(TEST_CONFIG + '\n[search]\nembedder = "none"\ngenerator = "none"\n')
    with LogWriter(ws.firehose_dir) as writer:
        head = writer.append(list(itertools.islice(simulate(SimConfig(seed=4)), 500)))
    consumer_key = add_consumer(ws, "search")
    keys = ApiKeyStore(ws.api_keys_db)
    _, api_key = keys.add("tests")
    keys.close()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running_server(ws) as firehose:
        command = [*ROOST, "--home", str(ws.home), "index", "serve", "--port", str(port)]
        command += ["--url", firehose.url, "--key", consumer_key, "--log-level", "warning"]
        stderr = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - the process holds it
        search = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            _wait_healthy(url, search)
            auth = {"Authorization": f"Bearer {api_key}"}
            assert httpx.get(url + "/search/query", params={"q": "match"}).status_code == 401
            deadline = time.monotonic() + 30
            while httpx.get(url + "/search/health").json()["posts"] == 0:
                assert time.monotonic() < deadline, "the stream's posts never reached the index"
                time.sleep(0.1)

            started = time.perf_counter()
            with LogWriter(ws.firehose_dir) as writer:
                writer.append([Event.of_post(post("fresh", "a wombat crossed the stadium car park"))])
            while True:
                body = httpx.get(url + "/search/query", params={"q": "wombat"}, headers=auth).json()
                if [h["post"]["id"] for h in body["hits"]] == ["fresh"]:
                    break
                assert time.perf_counter() - started < 30, "the appended post never became searchable"
                time.sleep(0.02)
            took = time.perf_counter() - started
            print(f"\nappend -> firehose stream -> index -> /search/query: {took:.3f} s")

            bad = httpx.get(url + "/search/query", params={"q": "x", "limit": "-1"}, headers=auth)
            assert bad.status_code == 400 and "limit" in bad.json()["error"]["message"]
        finally:
            search.terminate()
            code = search.wait(30)
            stderr.close()
            assert code == 0, (tmp_path / "serve.log").read_text()
    assert head == 499
