"""The real `roost serve` process driven by OpenAI's own Python client, every route and parameter,
streamed and not. Responses are validated strictly against OpenAI's types, except streamed
/v1/completions (OpenAI's chunk type requires a finish_reason on every chunk) and base64
embeddings (the client checks the type before decoding base64)."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import openai
import pytest

from roost.apikeys import ApiKeyStore

MODEL = "tiny"
USER = [{"role": "user", "content": "the band loves pizza"}]


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return server.client()


# -- models ---------------------------------------------------------------------------------------
def test_models(client) -> None:
    assert [m.id for m in client.models.list().data] == [MODEL]
    assert client.models.retrieve(MODEL).owned_by == "roost"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4")


# -- completions ----------------------------------------------------------------------------------
def test_completion_greedy_is_deterministic_and_counts_usage(client) -> None:
    first = client.completions.create(model=MODEL, prompt="the cat", max_tokens=12, temperature=0)
    second = client.completions.create(model=MODEL, prompt="the cat", max_tokens=12, temperature=0)
    assert first.choices[0].text == second.choices[0].text != ""
    assert first.choices[0].finish_reason in ("stop", "length")
    assert first.usage.prompt_tokens == 2
    assert 0 < first.usage.completion_tokens <= 12


def test_completion_prompt_shapes_and_n(client) -> None:
    texts = client.completions.create(model=MODEL, prompt=["the cat", "a robot"], n=2, max_tokens=6, seed=3)
    assert [c.index for c in texts.choices] == [0, 1, 2, 3]
    ids = client.completions.create(model=MODEL, prompt="the cat", max_tokens=6, temperature=0)
    as_tokens = client.completions.create(model=MODEL, prompt=[264, 407], max_tokens=6, temperature=0)
    nested = client.completions.create(model=MODEL, prompt=[[264, 407]], max_tokens=6, temperature=0)
    assert as_tokens.usage.prompt_tokens == 2
    assert as_tokens.choices[0].text == nested.choices[0].text
    assert ids.choices[0].text  # (token ids here are the tiny tokenizer's, checked in test_engine)


def test_completion_echo_logprobs_stop_and_seed(client) -> None:
    greedy = client.completions.create(
        model=MODEL, prompt="the cat", max_tokens=10, temperature=0, logprobs=3
    )
    lp = greedy.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == greedy.usage.completion_tokens
    assert all(
        len(top) <= 3 and max(top.values()) >= chosen - 1e-6
        for top, chosen in zip(lp.top_logprobs, lp.token_logprobs, strict=True)
    )
    echoed = client.completions.create(model=MODEL, prompt="the cat", max_tokens=10, temperature=0, echo=True)
    assert echoed.choices[0].text == "the cat" + greedy.choices[0].text
    text = greedy.choices[0].text
    stop = text[3:7]
    stopped = client.completions.create(
        model=MODEL, prompt="the cat", max_tokens=10, temperature=0, stop=[stop, "zzz"]
    )
    assert stopped.choices[0].text == text[: text.index(stop)]
    assert stopped.choices[0].finish_reason == "stop"
    seeded = [
        client.completions.create(model=MODEL, prompt="a", max_tokens=12, temperature=1.0, seed=99)
        .choices[0]
        .text
        for _ in range(2)
    ]
    assert seeded[0] == seeded[1]


def test_completion_stream(server, client) -> None:
    whole = client.completions.create(model=MODEL, prompt="our bus", max_tokens=10, temperature=0)
    loose = server.client(strict=False)
    chunks = list(
        loose.completions.create(
            model=MODEL,
            prompt="our bus",
            max_tokens=10,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole.choices[0].text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.choices[0].finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_sampling_parameters_beyond_openai(client) -> None:
    """top_k, min_p, repetition_penalty and ignore_eos go through extra_body, as with vLLM."""
    result = client.completions.create(
        model=MODEL,
        prompt="the cat",
        max_tokens=30,
        temperature=0.8,
        top_p=0.9,
        presence_penalty=0.5,
        frequency_penalty=0.5,
        seed=5,
        extra_body={"top_k": 5, "min_p": 0.05, "repetition_penalty": 1.2, "ignore_eos": True},
    )
    assert result.usage.completion_tokens == 30 and result.choices[0].finish_reason == "length"


def test_logit_bias_can_end_the_turn_at_once(client) -> None:
    result = client.chat.completions.create(model=MODEL, messages=USER, logit_bias={"5": 100}, max_tokens=5)
    assert result.choices[0].message.content == ""
    assert result.choices[0].finish_reason == "stop" and result.usage.completion_tokens == 1


# -- chat -----------------------------------------------------------------------------------------
def test_chat_with_roles_ends_its_turn(client) -> None:
    messages = [
        {"role": "system", "content": "you write short posts"},
        {"role": "user", "content": "the cat"},
        {"role": "assistant", "content": "the cat loves pizza!"},
        {"role": "user", "content": [{"type": "text", "text": "our bus"}]},
    ]
    result = client.chat.completions.create(model=MODEL, messages=messages, temperature=0)
    choice = result.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason == "stop"  # the tiny model learned to end its turn


def test_chat_n_seed_logprobs(client) -> None:
    result = client.chat.completions.create(
        model=MODEL, messages=USER, n=3, seed=7, max_completion_tokens=12, logprobs=True, top_logprobs=2
    )
    assert [c.index for c in result.choices] == [0, 1, 2]
    for choice in result.choices:
        entries = choice.logprobs.content
        assert all(len(e.top_logprobs) == 2 and e.bytes == list(e.token.encode()) for e in entries)
    again = client.chat.completions.create(
        model=MODEL, messages=USER, n=3, seed=7, max_completion_tokens=12, logprobs=True, top_logprobs=2
    )
    assert [c.message.content for c in again.choices] == [c.message.content for c in result.choices]


def test_chat_stream_is_openais_sequence(server, client) -> None:
    whole = client.chat.completions.create(model=MODEL, messages=USER, temperature=0, max_tokens=20)
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=USER,
            temperature=0,
            max_tokens=20,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == whole.choices[0].message.content
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finish) == 1 and finish[0].choices[0].finish_reason == whole.choices[0].finish_reason
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage
    with server.http() as http:  # and the wire ends as OpenAI's does
        body = {"messages": USER, "max_tokens": 3, "stream": True}
        lines = [line for line in http.post("/v1/chat/completions", json=body).text.split("\n") if line]
    assert all(line.startswith("data: ") for line in lines) and lines[-1] == "data: [DONE]"


def test_chat_stop_and_stream_with_logprobs(client) -> None:
    whole = client.chat.completions.create(model=MODEL, messages=USER, temperature=0, max_tokens=20)
    text = whole.choices[0].message.content
    stop = text[4:8]
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=USER,
            temperature=0,
            max_tokens=20,
            stop=stop,
            stream=True,
            logprobs=True,
            top_logprobs=1,
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == text[: text.index(stop)]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert any(c.choices[0].logprobs and c.choices[0].logprobs.content for c in chunks)


# -- embeddings -----------------------------------------------------------------------------------
def test_embeddings_float_and_base64(server, client) -> None:
    texts = ["the cat loves pizza", "a robot fixed the fence"]
    floats = client.embeddings.create(model=MODEL, input=texts, encoding_format="float")
    vectors = np.array([d.embedding for d in floats.data])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    decoded = server.client(strict=False).embeddings.create(model=MODEL, input=texts)  # base64 by default
    np.testing.assert_allclose(np.array([d.embedding for d in decoded.data]), vectors, rtol=1e-6)
    with server.http() as http:
        raw = http.post("/v1/embeddings", json={"input": texts, "encoding_format": "base64"}).json()
    as_bytes = base64.b64decode(raw["data"][1]["embedding"])
    np.testing.assert_allclose(np.frombuffer(as_bytes, dtype="<f4"), vectors[1], rtol=1e-6)
    tokens = client.embeddings.create(model=MODEL, input=[[264, 407]], encoding_format="float")
    assert tokens.usage.prompt_tokens == 2 and len(tokens.data[0].embedding) == vectors.shape[1]
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model=MODEL, input="x", dimensions=3)


# -- errors, keys, health, metrics ----------------------------------------------------------------
def test_keys_are_required_and_revocable(server, served) -> None:
    assert httpx.get(server.url + "/health").json() == {"status": "ok"}
    anonymous = httpx.get(server.url + "/v1/models")
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "invalid_api_key"
    store = ApiKeyStore(served.ws.api_keys_db)
    record, key = store.add("short-lived")
    other = openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0)
    assert other.models.list().data
    store.revoke(record.key_id)
    store.close()
    with pytest.raises(openai.AuthenticationError):
        other.models.list()
    for path in ("/metrics", "/ready"):
        assert httpx.get(server.url + path).status_code == 401


def test_bad_requests_get_openai_errors(server, client) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.completions.create(model="gpt-4", prompt="x")
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model=MODEL, messages=USER, temperature=5)
    assert bad.value.param == "temperature"
    with pytest.raises(openai.BadRequestError, match="context"):
        client.completions.create(model=MODEL, prompt="the cat", max_tokens=10_000)
    with server.http() as http:
        broken = http.post(
            "/v1/completions", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert broken.status_code == 400 and broken.json()["error"]["type"] == "invalid_request_error"
        unknown = http.post(
            "/v1/completions", json={"prompt": "a", "max_tokens": 2, "some_future_field": {"x": 1}}
        )
        assert unknown.status_code == 200  # logged, not fatal
        tools = http.post("/v1/chat/completions", json={"messages": USER, "tools": [{"type": "function"}]})
        assert tools.status_code == 400 and tools.json()["error"]["param"] == "tools"


def test_ready_and_metrics(server) -> None:
    with server.http() as http:
        ready = http.get("/ready").json()
        assert ready["status"] == "ready" and ready["model"] == MODEL
        text = http.get("/metrics").text
    for name in (
        "roost_requests_running",
        "roost_requests_waiting",
        "roost_time_to_first_token_seconds_bucket",
        "roost_inter_token_latency_seconds_bucket",
        "roost_e2e_request_latency_seconds_bucket",
        "roost_request_queue_time_seconds_bucket",
        "roost_prompt_tokens_total",
        "roost_generation_tokens_total",
    ):
        assert name in text, name
    assert server.metric("roost_generation_tokens_total") > 0
