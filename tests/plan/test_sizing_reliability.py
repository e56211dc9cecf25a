"""Compute-optimal and data-constrained sizing; failures, checkpoint intervals and goodput."""

from __future__ import annotations

import math

import pytest

from roost.plan import reliability, sizing
from roost.plan.hardware import GPUS, gpu


@pytest.mark.parametrize("compute", [1e20, 5.76e23, 1e25, 1e27])
def test_compute_optimal_is_about_twenty_tokens_per_parameter(compute):
    n, d = sizing.optimal_params(compute), sizing.optimal_tokens(compute)
    assert 6 * n * d == pytest.approx(compute, rel=0.03)
    assert 19 < d / n < 23
    assert sizing.optimal_compute_for(n) == pytest.approx(compute, rel=1e-9)


def test_approach3_rounded_constants_allocate_very_differently():
    n, d = sizing.approach3_optimum(5.76e23, 1.69, 406.4, 410.7, 0.34, 0.28)
    assert d / n > 80  # vs ~20 for Approaches 1 and 2: why the planner does not use it


def test_firehose_volume_and_repeats():
    unique = sizing.unique_tokens(posts_per_day=500e6, tokens_per_post=40, days=365, curation_loss=0.5)
    assert unique == pytest.approx(500e6 * 40 * 365 * 0.5)
    assert sizing.effective_tokens(unique, 1) == unique
    four = sizing.effective_tokens(unique, 4)
    assert 3.5 * unique < four < 4 * unique  # four epochs are worth nearly four times the data
    assert sizing.effective_tokens(unique, 40) < 20 * unique  # forty are not worth forty
    with pytest.raises(ValueError, match="fraction"):
        sizing.unique_tokens(1, 1, 1, 1.5)


def test_data_constrained_sizing_caps_epochs_and_grows_the_model():
    compute = 1e25
    free = sizing.size_for_compute(compute)
    assert not free.data_constrained and free.epochs is None
    scarce = sizing.size_for_compute(compute, unique=free.tokens / 10)
    assert scarce.data_constrained
    assert scarce.epochs == pytest.approx(sizing.MAX_USEFUL_EPOCHS)
    assert scarce.params > free.params and 6 * scarce.params * scarce.tokens == pytest.approx(compute)
    plenty = sizing.size_for_compute(compute, unique=free.tokens * 10)
    assert not plenty.data_constrained and plenty.params == free.params


def test_llama3_interruption_rate():
    assert reliability.LLAMA3.per_gpu_day == pytest.approx(419 / (54 * 16384))
    # 10,000 GPUs: an interruption every ~5 hours.
    assert reliability.mtbf_seconds(10_000) / 3600 == pytest.approx(5.07, rel=0.01)


def test_young_and_daly_agree_when_checkpoints_are_cheap():
    mtbf = 24 * 3600.0
    young, daly = reliability.young_interval(10.0, mtbf), reliability.daly_interval(10.0, mtbf)
    assert daly == pytest.approx(young, rel=0.01) and daly < young
    assert reliability.daly_interval(5.0, 2.0) == 2.0  # δ ≥ 2M: checkpoint every M


def test_daly_interval_minimises_expected_time():
    mtbf, dump, restart, work = 3600.0 * 5, 60.0, 600.0, 86_400.0 * 30
    best = reliability.daly_interval(dump, mtbf)
    at_best = reliability.expected_wall_seconds(work, best, dump, restart, mtbf)
    for factor in (0.5, 0.8, 1.25, 2.0):
        assert reliability.expected_wall_seconds(work, best * factor, dump, restart, mtbf) > at_best


def test_goodput_falls_with_scale_and_checkpoint_size():
    small = reliability.reliability(1_000, 1e12, 86_400 * 30)
    big = reliability.reliability(100_000, 1e12, 86_400 * 30)
    heavy = reliability.reliability(100_000, 1e14, 86_400 * 30)
    assert 0 < heavy.goodput < big.goodput < small.goodput < 1
    assert big.interval_s < small.interval_s
    assert big.expected_interruptions == pytest.approx(86_400 * 30 / big.goodput / big.mtbf_s, rel=1e-9)


def test_every_gpu_cites_its_datasheet():
    for entry in GPUS.values():
        assert entry.datasheet.url.startswith("https://") and entry.datasheet.date[:2] == "20"
        assert entry.system.url.startswith("https://")
        assert entry.bf16_tflops > 0 and entry.hbm_gib > 0 and entry.network_gbps > 0
        if entry.fp8_tflops is not None:
            assert entry.fp8_tflops == pytest.approx(2 * entry.bf16_tflops, rel=0.01)
    assert gpu("H100") is GPUS["h100-sxm"] and gpu("a100").hbm_gib == 80
    with pytest.raises(ValueError, match="fp8"):
        gpu("a100").peak_flops(fp8=True)
    with pytest.raises(ValueError, match="unknown GPU"):
        gpu("tpu-v5")
    assert math.isclose(GPUS["b200"].bf16_tflops / GPUS["h100-sxm"].bf16_tflops, 2.27, rel_tol=0.01)
