"""The sampler on hand-made logits: each parameter does what OpenAI and vLLM say it does."""

from __future__ import annotations

import collections

import pytest
import torch

from roost.serve.sampling import SamplingParams, SequenceSampler, prompt_logprobs, sample

V = 8


def samplers(*params: SamplingParams, prompt: tuple[int, ...] = (0,)) -> list[SequenceSampler]:
    return [SequenceSampler(p, prompt, 0, V, torch.device("cpu")) for p in params]


def logits(*rows: list[float]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def draw_many(params: SamplingParams, row: list[float], n: int = 400) -> collections.Counter:
    generator = torch.Generator().manual_seed(0)
    batch = logits(*[row] * n)
    tokens, _ = sample(batch, samplers(*[params] * n), generator)
    return collections.Counter(tokens)


def test_greedy_takes_the_argmax_per_row() -> None:
    tokens, logprobs = sample(
        logits([0, 3, 1, 0, 0, 0, 0, 0], [5, 0, 0, 0, 0, 0, 0, 9]),
        samplers(*[SamplingParams(temperature=0)] * 2),
    )
    assert tokens == [1, 7]
    assert logprobs == [None, None]


def test_top_k_and_top_p_and_min_p_cut_the_tail() -> None:
    row = [4.0, 3.9, 3.8, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert set(draw_many(SamplingParams(top_k=2), row)) == {0, 1}
    assert set(draw_many(SamplingParams(top_p=0.01), row)) == {0}
    assert set(draw_many(SamplingParams(min_p=0.5), row)) == {0, 1, 2}
    assert len(draw_many(SamplingParams(), row)) > 3  # nothing cut: the tail is drawn too


def test_sampling_follows_the_distribution() -> None:
    counts = draw_many(SamplingParams(), [0.0, 1.0986, -50, -50, -50, -50, -50, -50], n=4000)  # p = 1/4, 3/4
    assert abs(counts[1] / 4000 - 0.75) < 0.03


def test_temperature_sharpens() -> None:
    row = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert draw_many(SamplingParams(temperature=0.05), row)[0] == 400
    assert draw_many(SamplingParams(temperature=2.0), row)[0] < 200


def test_logit_bias_forces_and_bans() -> None:
    row = [5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert set(draw_many(SamplingParams(logit_bias={3: 100.0}), row)) == {3}
    assert 0 not in draw_many(SamplingParams(temperature=0, logit_bias={0: -100.0}), row)


def test_penalties_discourage_what_was_said() -> None:
    row = logits([2.0, 1.9, 0, 0, 0, 0, 0, 0])
    for params in (
        SamplingParams(temperature=0, presence_penalty=1.0),
        SamplingParams(temperature=0, frequency_penalty=1.0),
        SamplingParams(temperature=0, repetition_penalty=2.0),
    ):
        (s,) = samplers(params, prompt=(5,))
        first, _ = sample(row.clone(), [s])
        second, _ = sample(row.clone(), [s])
        assert (first, second) == ([0], [1]), params
    # repetition also counts the prompt
    (s,) = samplers(SamplingParams(temperature=0, repetition_penalty=2.0), prompt=(0,))
    assert sample(row.clone(), [s])[0] == [1]


def test_a_seed_gives_the_same_draws_whatever_shares_the_batch() -> None:
    row = [0.5, 0.4, 0.3, 0.2, 0.1, 0.0, 0.0, 0.0]
    seeded = SamplingParams(seed=42)

    def run(batch_size: int, position: int) -> list[int]:
        group = samplers(*[SamplingParams()] * batch_size)
        group[position] = samplers(seeded)[0]
        generator = torch.Generator().manual_seed(batch_size)
        return [sample(logits(*[row] * batch_size), group, generator)[0][position] for _ in range(30)]

    alone = run(1, 0)
    assert run(5, 3) == alone
    assert run(3, 0) == alone
    assert len(set(alone)) > 1


def test_logprobs_are_the_models_own() -> None:
    row = logits([2.0, 1.0, 0.0, 0, 0, 0, 0, 0])
    tokens, entries = sample(
        row.clone(), samplers(SamplingParams(temperature=0, logprobs=2, logit_bias={2: 50.0}))
    )
    expected = torch.log_softmax(row[0], -1)
    assert tokens == [2]
    assert entries[0].token_id == 2
    assert entries[0].logprob == pytest.approx(expected[2].item())
    assert [t for t, _ in entries[0].top] == [0, 1]


def test_prompt_logprobs_score_each_token_given_its_past() -> None:
    rows = torch.randn(4, V)
    entries = prompt_logprobs(rows, [3, 1, 4, 1], 1)
    assert entries[0] is None
    assert entries[2].logprob == pytest.approx(torch.log_softmax(rows[1], -1)[4].item())


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"top_p": 0.0}, "top_p"),
        ({"temperature": -1.0}, "temperature"),
        ({"logit_bias": {99: 1.0}}, "logit_bias"),
        ({"logprobs": 21}, "logprobs"),
        ({"stop": ("",)}, "stop"),
    ],
)
def test_impossible_parameters_are_refused_by_name(changes: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        SamplingParams(**changes).check(V)
