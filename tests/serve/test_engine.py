"""The engine in-process: cached, batched decoding gives the tokens a plain forward gives; requests
join, leave, abort and overflow as promised; embeddings are unit vectors independent of batching."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import torch

from roost.serve.config import ServeConfig
from roost.serve.engine import Engine, EngineFull
from roost.serve.graphs import DecodeRunner
from roost.serve.kv_cache import SlotKVCache
from roost.serve.loader import load_served_model
from roost.serve.sampling import SamplingParams

GREEDY = SamplingParams(temperature=0.0, max_tokens=24, ignore_eos=True)
PROMPTS = ["the cat", "my neighbour painted the old bike at dawn and", "a", "grandma wrote about pizza"]


@pytest.fixture(scope="module")
def loaded(served):
    return load_served_model(served.ws, "tiny")


@pytest.fixture(scope="module")
def engine(loaded):
    with Engine(
        loaded.model, loaded.tokenizer, ServeConfig(max_batch=6, max_queue=8), name="tiny"
    ) as running:
        yield running


@torch.inference_mode()
def plain_greedy(model, ids: list[int], steps: int) -> list[int]:
    """Greedy decoding with a full forward per token: no cache, no batch."""
    ids = list(ids)
    for _ in range(steps):
        ids.append(int(model(torch.tensor([ids]))[0, -1].argmax()))
    return ids[-steps:]


def test_batched_cached_greedy_equals_plain_forward(engine) -> None:
    results = engine.generate(PROMPTS, GREEDY)  # all four decode together
    for prompt, result in zip(PROMPTS, results, strict=True):
        assert result.choices[0].token_ids == plain_greedy(engine.model, engine.encode(prompt), 24), prompt
        assert result.choices[0].finish_reason == "length"


def test_requests_join_and_leave_mid_batch(engine) -> None:
    """Different lengths finish at different steps (slots are refilled by moving the last one) and
    requests arrive while others decode; every greedy result still matches the plain forward."""
    lengths = [3, 30, 9, 17, 1, 25, 12, 6, 20, 2]  # more requests than the 6 slots

    async def run() -> list[list[int]]:
        streams = []
        for i, length in enumerate(lengths):
            params = SamplingParams(temperature=0.0, max_tokens=length, ignore_eos=True)
            streams.append(engine.submit(engine.encode(PROMPTS[i % len(PROMPTS)]), params))
            await asyncio.sleep(0.002 * (i % 3))
        results = []
        for stream in streams:
            tokens = []
            async for outputs in stream:
                tokens += [o.token_id for o in outputs]
            results.append(tokens)
        return results

    results = asyncio.run(run())
    for i, (length, tokens) in enumerate(zip(lengths, results, strict=True)):
        assert tokens == plain_greedy(engine.model, engine.encode(PROMPTS[i % len(PROMPTS)]), length)


def mixed_logits(
    model, cache: SlotKVCache, decode: list[tuple[int, int]], prompts: list[list[int]], first_slot: int
) -> torch.Tensor:
    """One mixed forward: (token, position) of each running slot 0..B-1, then `prompts` written to
    slots first_slot, first_slot + 1, ...; logits (N, V) of every token in the row."""
    tokens = [t for t, _ in decode] + [t for ids in prompts for t in ids]
    positions = [p for _, p in decode] + [p for ids in prompts for p in range(len(ids))]
    slots = list(range(first_slot, first_slot + len(prompts)))
    view = cache.mixed([p for _, p in decode], slots, [len(ids) for ids in prompts])
    return model(torch.tensor([tokens]), torch.tensor([positions]), cache=view)[0]


def new_cache(model) -> SlotKVCache:
    return SlotKVCache(model.config, 8, model.config.max_seq_len, torch.device("cpu"), torch.float32)


PROMPT_IDS = [[5, 9, 13, 2], [7, 3], [11, 12, 13]]


def test_static_shape_decoding_equals_dynamic(loaded) -> None:
    """The padded, bucketed path that CUDA graphs capture gives the same logits as the exact one."""
    model = loaded.model
    outputs = []
    for static in (False, True):
        cache = new_cache(model)
        with torch.inference_mode():
            mixed_logits(model, cache, [], PROMPT_IDS, 0)
            runner = DecodeRunner(model, cache, use_graphs=False, static_shapes=static)
            outputs.append(runner.step([1, 2, 3], [len(p) for p in PROMPT_IDS]))
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-5, atol=1e-5)


@torch.inference_mode()
def test_a_mixed_forward_equals_separate_decode_and_prefill(loaded) -> None:
    """Prompts prefilled in the running batch's decode forward give the logits, and leave the cache,
    that a decode step and a separate prefill give, and both match a plain forward of each sequence."""
    model = loaded.model
    running, arriving = PROMPT_IDS[:2], [[4, 8, 15, 16, 23], [42]]
    next_tokens = [(1, len(running[0])), (2, len(running[1]))]
    fused, apart = new_cache(model), new_cache(model)
    for cache in (fused, apart):
        mixed_logits(model, cache, [], running, 0)
    together = mixed_logits(model, fused, next_tokens, arriving, 2)
    decode = DecodeRunner(model, apart, use_graphs=False).step([1, 2], [p for _, p in next_tokens])
    prefill = mixed_logits(model, apart, [], arriving, 2)
    torch.testing.assert_close(together, torch.cat([decode, prefill]), rtol=1e-5, atol=1e-5)
    for k_or_v in ("k_LSKMd", "v_LSKMd"):
        torch.testing.assert_close(getattr(fused, k_or_v), getattr(apart, k_or_v), rtol=1e-5, atol=1e-5)
    sequences = [running[0] + [1], running[1] + [2], *arriving]
    plain = torch.cat(
        [model(torch.tensor([ids]))[0, -1:] for ids in sequences[:2]]
        + [model(torch.tensor([ids]))[0] for ids in sequences[2:]]
    )
    torch.testing.assert_close(together, plain, rtol=1e-4, atol=1e-4)


def test_a_request_joining_a_running_batch_gets_the_tokens_it_gets_alone(engine) -> None:
    """A request that arrives while others decode is prefilled inside their decode forward; greedy
    and seeded, with n choices and logprobs, its output is what it is when it runs alone."""
    prompt = engine.encode("my neighbour painted the old bike")
    requests = [
        SamplingParams(temperature=0.0, max_tokens=20, ignore_eos=True, logprobs=2),
        SamplingParams(max_tokens=20, n=2, seed=7, ignore_eos=True, logprobs=1, prompt_logprobs=1),
    ]
    busy = SamplingParams(max_tokens=100, ignore_eos=True)

    async def collect(stream) -> list[list]:
        outputs: list[list] = [[] for _ in range(stream.request.params.n)]
        async for step in stream:
            for o in step:
                outputs[o.index].append((o.token_id, o.logprob))
        return outputs

    async def run(params: SamplingParams, crowded: bool):
        others = []
        if crowded:  # two long requests are decoding when ours arrives
            others = [engine.submit(engine.encode(p), busy).__aiter__() for p in PROMPTS[:2]]
            for other in others:
                await other.__anext__()
        stream = engine.submit(prompt, params)
        result = await collect(stream), stream.request.prompt_logprobs
        for other in others:
            await other.aclose()  # aborts them
        return result

    for params in requests:
        alone, alone_prompt = asyncio.run(run(params, crowded=False))
        joined, joined_prompt = asyncio.run(run(params, crowded=True))
        for a, b in zip(alone, joined, strict=True):
            assert [t for t, _ in a] == [t for t, _ in b]
            for (_, la), (_, lb) in zip(a, b, strict=True):
                assert la.top[0][0] == lb.top[0][0] and la.logprob == pytest.approx(lb.logprob, abs=1e-4)
        if params.prompt_logprobs is not None:
            assert [p and p.token_id for p in alone_prompt] == [p and p.token_id for p in joined_prompt]
            for pa, pb in zip(alone_prompt[1:], joined_prompt[1:], strict=True):
                assert pa.logprob == pytest.approx(pb.logprob, abs=1e-4)
    assert engine.generate(["x"], requests[0])[0].choices[0].token_ids  # the engine still serves


def test_n_choices_with_a_seed_are_reproducible_and_independent_of_the_batch(engine) -> None:
    params = SamplingParams(max_tokens=16, n=3, seed=1234, ignore_eos=True)
    alone = engine.generate(["the cat"], params)[0]
    busy = engine.generate(["the cat", "a robot", "our bus"], params)[0]
    texts = [c.token_ids for c in alone.choices]
    assert texts == [c.token_ids for c in busy.choices]
    assert len({tuple(t) for t in texts}) == 3  # the three choices differ


def test_stop_strings_end_the_text_before_them(engine) -> None:
    full = engine.generate(["the cat"], GREEDY)[0].text
    stop = full[6:10]
    result = engine.generate(["the cat"], SamplingParams(temperature=0.0, max_tokens=24, stop=(stop,)))[0]
    assert result.text == full[: full.index(stop)]
    assert result.choices[0].finish_reason == "stop"


def test_end_tokens_stop_unless_ignored(engine) -> None:
    end = min(engine.end_ids)
    forced = SamplingParams(temperature=0.0, max_tokens=5, logit_bias={end: 100.0})
    assert engine.generate(["x"], forced)[0].choices[0].token_ids == [end]
    ignoring = SamplingParams(temperature=0.0, max_tokens=5, logit_bias={end: 100.0}, ignore_eos=True)
    assert engine.generate(["x"], ignoring)[0].choices[0].token_ids == [end] * 5


def test_a_request_longer_than_the_context_is_refused(engine) -> None:
    with pytest.raises(ValueError, match="context"):
        engine.generate(["the cat"], SamplingParams(max_tokens=engine.max_len))


def test_abort_frees_the_slot_and_a_full_queue_refuses(loaded) -> None:
    config = ServeConfig(max_batch=1, max_queue=1)
    long = SamplingParams(max_tokens=100, ignore_eos=True)

    async def run(engine: Engine) -> None:
        first = engine.submit([5, 6], long)
        second = engine.submit([5, 6], long)  # waits for the one slot
        with pytest.raises(EngineFull):
            engine.submit([5, 6], long)
        async for _ in first:
            break  # leaving the loop aborts the running request
        second.abort()  # and this one, still queued
        for _ in range(200):
            if engine.stats() == {"running": 0, "waiting": 0, "in_flight": 0}:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"slots not freed: {engine.stats()}")

    with Engine(loaded.model, loaded.tokenizer, config) as engine:
        asyncio.run(run(engine))
        assert engine.metrics.finished.labels("abort")._value.get() == 2


def test_embeddings_are_unit_vectors_whatever_the_batching(engine) -> None:
    texts = [
        "the cat loves pizza",
        "a",
        "my neighbour painted the old bike at dawn",
        "",
        "the cat loves pizza",
    ]
    together = engine.embed(texts)
    apart = np.stack([engine.embed([t])[0] for t in texts])
    assert together.shape == (5, engine.model.config.dim)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(together, apart, atol=1e-5)
    np.testing.assert_array_equal(together[0], together[4])


def test_generate_takes_more_prompts_than_the_queue_holds(loaded) -> None:
    params = SamplingParams(temperature=0.0, max_tokens=4, ignore_eos=True)
    with Engine(loaded.model, loaded.tokenizer, ServeConfig(max_batch=2, max_queue=1)) as small:
        results = small.generate([f"the cat {i}" for i in range(7)], params)
        assert [len(r.choices[0].token_ids) for r in results] == [4] * 7
        assert small.stats()["in_flight"] == 0
