"""Greedy output of the engine equals `transformers` `generate()` on the exported model, token for
token (fp32), alone and inside a busy batch of sampled requests of other lengths."""

from __future__ import annotations

import asyncio

import pytest
import torch

from roost.serve.config import ServeConfig
from roost.serve.engine import Engine
from roost.serve.loader import load_served_model
from roost.serve.sampling import SamplingParams

transformers = pytest.importorskip("transformers")

PROMPTS = ["the cat", "grandma sold the match", "<|user|>our bus broke my keys<|endofturn|><|assistant|>"]
STEPS = 40


@pytest.fixture(scope="module")
def hf_outputs(served) -> list[list[int]]:
    model = transformers.LlamaForCausalLM.from_pretrained(served.export_dir, dtype=torch.float32).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(served.export_dir)
    outputs = []
    for prompt in PROMPTS:
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
        with torch.inference_mode():
            out = model.generate(
                ids, max_new_tokens=STEPS, do_sample=False, attention_mask=torch.ones_like(ids)
            )
        outputs.append(out[0, ids.shape[1] :].tolist())
    return outputs


@pytest.fixture(scope="module")
def engine(served):
    loaded = load_served_model(served.ws, str(served.export_dir), dtype="float32")  # the HF files
    with Engine(loaded.model, loaded.tokenizer, ServeConfig(max_batch=8), name="tiny") as running:
        yield running


GREEDY = SamplingParams(temperature=0.0, max_tokens=STEPS)


def test_batch_of_one_matches_transformers(engine, hf_outputs) -> None:
    for prompt, expected in zip(PROMPTS, hf_outputs, strict=True):
        assert engine.generate([prompt], GREEDY)[0].choices[0].token_ids == expected, prompt


def test_inside_a_busy_batch_matches_transformers(engine, hf_outputs) -> None:
    async def run() -> list[list[int]]:
        noise = [
            engine.submit(engine.encode(text), SamplingParams(max_tokens=k, seed=k, ignore_eos=True))
            for k, text in [
                (7, "a robot"),
                (55, "the band fixed"),
                (23, "x"),
                (31, "this city loves the rain"),
            ]
        ]
        await asyncio.sleep(0.01)  # the targets join a batch that is already decoding
        targets = [engine.submit(engine.encode(p), GREEDY) for p in PROMPTS]
        results = []
        for stream in [*targets, *noise]:
            tokens = []
            async for outputs in stream:
                tokens += [o.token_id for o in outputs]
            results.append(tokens)
        return results[: len(PROMPTS)]

    assert asyncio.run(run()) == hf_outputs


def test_the_comparison_covers_real_continuations(hf_outputs) -> None:
    assert all(len(tokens) >= 5 for tokens in hf_outputs)  # not a trivial immediate stop
