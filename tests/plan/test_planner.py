"""The planner end to end: 10,000 H100s and the 70B / 405B presets, sizing, data limits, errors."""

from __future__ import annotations

import pytest

from roost.plan.memory import USABLE_FRACTION
from roost.plan.planner import DataBudget, make_plan, model_for_params


@pytest.fixture(scope="module", params=["70b", "405b"])
def plan(request):
    return make_plan("h100", 10_000, days=90, model=request.param, price_per_gpu_hour=2.5)


def test_ten_thousand_h100s_get_a_sensible_plan(plan):
    best = plan.best
    assert best.layout.gpus == 10_000
    assert best.memory.total <= USABLE_FRACTION * plan.gpu.hbm_bytes
    assert best.layout.tp in (4, 8)  # tensor parallel within the server, as every large run does
    assert 0.25 < plan.mfu < 0.6
    assert plan.days == pytest.approx(90, rel=1e-6)  # the days budget is spent
    assert plan.gpu_hours == pytest.approx(10_000 * 90 * 24, rel=1e-6)
    assert plan.cost == pytest.approx(plan.gpu_hours * 2.5)
    assert 0.85 < plan.reliability.goodput < 1
    assert 60 < plan.reliability.interval_s < 6 * 3600
    assert 3 < plan.reliability.interruptions_per_day < 7  # Llama 3's rate at 10,000 GPUs
    assert plan.tokens == pytest.approx(plan.tokens_per_s * 90 * 86_400 * plan.reliability.goodput, rel=1e-6)
    assert plan.trainer is not None and plan.trainer.layout.pp == 1
    assert plan.trainer.tokens_per_s <= plan.tokens_per_s * (1 + 1e-9)
    assert all(alt.tokens_per_s <= best.tokens_per_s * (1 + 1e-4) for alt in plan.alternatives)


def test_tokens_given_days_follow():
    plan = make_plan("h100", 10_000, model="405b", tokens=15e12)
    assert plan.tokens == 15e12
    # Llama 3 405B took ~54 days for 15.6T tokens on 16,384 H100s; 10,000 need longer.
    assert 60 < plan.days < 200
    assert plan.days * 86_400 * plan.tokens_per_s * plan.reliability.goodput == pytest.approx(15e12, rel=1e-6)


def test_without_a_model_it_sizes_a_compute_optimal_one():
    plan = make_plan("h100", 2_048, days=30)
    assert plan.model_name.startswith("compute-optimal")
    assert 14 < plan.tokens / plan.params < 30
    assert plan.days == pytest.approx(30, rel=1e-6)


def test_the_firehose_caps_the_tokens():
    data = DataBudget(posts_per_day=500e6, tokens_per_post=40, days=365, curation_loss=0.5)
    plan = make_plan("h100", 10_000, days=90, model="70b", data=data)
    assert plan.tokens == pytest.approx(4 * data.unique_tokens)
    assert plan.days < 90 and plan.data_limited
    # The budget's compute-optimal model needs fewer tokens than four epochs hold: not constrained.
    assert not plan.sizing.data_constrained
    starved = make_plan("h100", 10_000, days=90, model="70b", data=DataBudget(50e6, 40, 365, 0.5))
    assert starved.sizing.data_constrained and starved.sizing.epochs == pytest.approx(4)
    assert starved.sizing.params > starved.sizing.compute_optimal_params


def test_model_for_params_is_llama_shaped():
    for params in (1e9, 8e9, 70e9, 400e9):
        cfg = model_for_params(params)
        assert cfg.num_params() == pytest.approx(params, rel=0.15)
        assert cfg.dim % 128 == 0 and cfg.kv_heads == 8


def test_errors_say_what_to_change():
    with pytest.raises(ValueError, match="no layout of 406B parameters fits 8"):
        make_plan("a100-40gb", 8, model="405b", tokens=1e9)
    with pytest.raises(ValueError, match="not both"):
        make_plan("h100", 64, model="8b", params=8e9)
    with pytest.raises(ValueError, match="unknown model preset"):
        make_plan("h100", 64, model="9b", days=1)
    with pytest.raises(ValueError, match="unknown GPU"):
        make_plan("v100", 64, model="8b", days=1)
    with pytest.raises(ValueError, match="--days"):
        make_plan("h100", 64)
