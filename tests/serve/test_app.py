"""The app in-process (ASGI), for what a healthy server process cannot show: a failure after the
stream started arrives as an error event that OpenAI's client raises, and unknown fields are
logged rather than refused."""

from __future__ import annotations

import asyncio
import logging

import httpx
import openai
import pytest

from roost.apikeys import ApiKeyStore
from roost.serve.config import ServeConfig
from roost.serve.engine import Engine
from roost.serve.loader import load_served_model
from roost.serve.openai_api import create_app


@pytest.fixture
def app_and_engine(served, tmp_path):
    loaded = load_served_model(served.ws, "tiny")
    keys = ApiKeyStore(tmp_path / "keys.db")
    _, key = keys.add("test")
    engine = Engine(loaded.model, loaded.tokenizer, ServeConfig(max_batch=2), name="tiny")
    yield create_app(engine, keys), engine, key
    engine.close()
    keys.close()


def client_for(app, key: str) -> openai.AsyncOpenAI:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://roost")
    return openai.AsyncOpenAI(base_url="http://roost/v1", api_key=key, http_client=http, max_retries=0)


def test_a_failure_mid_stream_is_an_error_event(app_and_engine) -> None:
    app, engine, key = app_and_engine

    def broken_step(tokens, positions):
        raise RuntimeError("CUDA out of memory (simulated)")

    engine.decoder.step = broken_step  # prefill (the first token) works; the first decode step fails

    async def run() -> list[str]:
        seen = []
        async with client_for(app, key) as client:
            stream = await client.chat.completions.create(
                model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=10, stream=True
            )
            with pytest.raises(openai.APIError, match="simulated"):
                async for chunk in stream:
                    seen.append(chunk.choices[0].delta.content or "")
        return seen

    seen = asyncio.run(run())
    assert len(seen) >= 1  # the role chunk (and maybe the first token) came before the error
    assert engine.stats()["in_flight"] == 0  # and the failed request left the engine


def test_unknown_fields_are_logged_not_refused(app_and_engine, caplog) -> None:
    app, _, key = app_and_engine

    async def run() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://roost") as http:
            body = {"prompt": "the cat", "max_tokens": 2, "reasoning_effort": "high", "store": True}
            return await http.post("/v1/completions", json=body, headers={"Authorization": f"Bearer {key}"})

    with caplog.at_level(logging.INFO, logger="roost.serve.protocol"):
        response = asyncio.run(run())
    assert response.status_code == 200
    assert "reasoning_effort" in caplog.text and "store" in caplog.text
