"""Under load: 64 concurrent streaming clients all complete correctly; with the queue capped the
excess gets 429 with Retry-After, never a 5xx; a client that disconnects frees its slot."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import openai
import pytest

from tests.serve.conftest import start_server, stop_server

MODEL = "tiny"
PROMPTS = ["the cat", "a robot", "our bus", "grandma", "this city", "the band", "my neighbour", "the team"]


def chat(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


async def stream_text(client: openai.AsyncOpenAI, prompt: str, **options: object) -> tuple[str, str]:
    stream = await client.chat.completions.create(
        model=MODEL, messages=chat(prompt), temperature=0, max_tokens=24, stream=True, **options
    )
    parts, finish = [], None
    async for chunk in stream:
        for choice in chunk.choices:
            parts.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    return "".join(parts), finish


def test_64_concurrent_streams_all_complete_correctly(server) -> None:
    sync = server.client()
    expected = {
        p: sync.chat.completions.create(model=MODEL, messages=chat(p), temperature=0, max_tokens=24).choices[
            0
        ]
        for p in PROMPTS
    }

    async def run() -> list[tuple[str, str]]:
        client = openai.AsyncOpenAI(
            base_url=server.url + "/v1", api_key=server.key, max_retries=0, _strict_response_validation=True
        )
        async with client:
            return await asyncio.gather(*(stream_text(client, PROMPTS[i % 8]) for i in range(64)))

    begin = time.perf_counter()
    results = asyncio.run(run())
    print(f"64 concurrent streams in {time.perf_counter() - begin:.2f} s")
    for i, (text, finish) in enumerate(results):
        want = expected[PROMPTS[i % 8]]
        assert (text, finish) == (want.message.content, want.finish_reason), i
    assert server.metric("roost_requests_running") == 0


@pytest.fixture(scope="module")
def capped(served):
    """2 slots and 2 places in the queue: a fifth request at once is one too many."""
    running = start_server(served, "--max-batch", "2", "--max-queue", "2")
    yield running
    stop_server(running)


def test_beyond_the_queue_is_429_never_5xx(capped) -> None:
    async def one(client: httpx.AsyncClient, i: int) -> tuple[int, str | None, bool]:
        body = {"messages": chat(PROMPTS[i % 8]), "max_tokens": 100, "stream": True, "ignore_eos": True}
        async with client.stream("POST", "/v1/chat/completions", json=body) as response:
            text = (await response.aread()).decode()
        return response.status_code, response.headers.get("retry-after"), text.endswith("data: [DONE]\n\n")

    async def run() -> list[tuple[int, str | None, bool]]:
        headers = {"Authorization": f"Bearer {capped.key}"}
        async with httpx.AsyncClient(base_url=capped.url, headers=headers, timeout=60) as client:
            return await asyncio.gather(*(one(client, i) for i in range(24)))

    results = asyncio.run(run())
    statuses = [status for status, _, _ in results]
    assert set(statuses) <= {200, 429}, statuses
    assert statuses.count(200) >= 4 and statuses.count(429) >= 1
    assert all(done for status, _, done in results if status == 200)
    assert all(retry == "1" for status, retry, _ in results if status == 429)
    assert capped.metric("roost_requests_rejected_total") == statuses.count(429)


def _wait_until_idle(server, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.metric("roost_requests_running") == 0 and server.metric("roost_requests_waiting") == 0:
            return
        time.sleep(0.05)
    raise AssertionError("the engine did not go idle")


def _until_generated_text(lines) -> None:
    """Read a chat stream up to its first generated text (the role chunk comes before any token)."""
    for line in lines:
        if line.startswith("data: {") and any(
            c["delta"].get("content") for c in json.loads(line[6:])["choices"]
        ):
            return
    raise AssertionError("the stream ended before any text")


def test_a_client_that_disconnects_mid_stream_frees_its_slot(capped) -> None:
    _wait_until_idle(capped)
    aborted = capped.metric("roost_requests_finished_total", 'finish_reason="abort"')
    generated = capped.metric("roost_generation_tokens_total")
    body = {"messages": chat("the cat"), "max_tokens": 110, "stream": True, "ignore_eos": True}
    with capped.http() as http, http.stream("POST", "/v1/chat/completions", json=body) as response:
        _until_generated_text(response.iter_lines())
        # leaving the block closes the connection mid-stream
    _wait_until_idle(capped)
    assert capped.metric("roost_requests_finished_total", 'finish_reason="abort"') == aborted + 1
    assert capped.metric("roost_generation_tokens_total") - generated < 110


def test_a_client_that_disconnects_while_queued_leaves_the_queue(capped) -> None:
    _wait_until_idle(capped)
    aborted = capped.metric("roost_requests_finished_total", 'finish_reason="abort"')
    first_tokens = capped.metric("roost_time_to_first_token_seconds_count")
    body = {"messages": chat("a robot"), "max_tokens": 110, "stream": True, "ignore_eos": True}
    with capped.http() as http:
        holders = [http.stream("POST", "/v1/chat/completions", json=body) for _ in range(2)]
        readers = [h.__enter__().iter_lines() for h in holders]  # (kept: a dropped reader disconnects)
        for lines in readers:  # both slots are busy generating
            _until_generated_text(lines)
        with http.stream("POST", "/v1/chat/completions", json=body) as queued:
            assert next(queued.iter_lines()).startswith("data: ")  # the role chunk; no slot yet
        for h in holders:
            h.__exit__(None, None, None)
    _wait_until_idle(capped)
    assert capped.metric("roost_requests_finished_total", 'finish_reason="abort"') == aborted + 3
    assert capped.metric("roost_time_to_first_token_seconds_count") == first_tokens + 2  # never ran
