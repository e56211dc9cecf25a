"""The throughput model's pieces (pipeline bubble, collectives) and the layout search."""

from __future__ import annotations

import itertools

import pytest

from roost.model.config import PRESETS
from roost.plan.calibration import calibration
from roost.plan.hardware import GPUS, gpu
from roost.plan.job import Job
from roost.plan.layout import evaluate, search
from roost.plan.memory import USABLE_FRACTION
from roost.plan.mesh import Layout
from roost.plan.shape import Shape
from roost.plan.throughput import collective_seconds, critical_stage

H100 = gpu("h100")
LLAMA_8B = Shape.from_model(PRESETS["8b"])


@pytest.mark.parametrize("pp,m", [(2, 8), (4, 16), (8, 8), (16, 64)])
def test_bubble_is_p_minus_1_over_m_plus_p_minus_1(pp, m):
    job = Job(LLAMA_8B, 4096, m)
    step = evaluate(job, Layout(pp=pp, dp=1, micro_batch=1), H100).step
    pipeline = step.compute + step.tensor_comm + step.context_comm + step.pipeline_comm + step.bubble
    assert step.bubble / pipeline == pytest.approx((pp - 1) / (m + pp - 1))


def test_interleaving_divides_the_bubble():
    job = Job(LLAMA_8B, 4096, 32)
    plain = evaluate(job, Layout(pp=4, micro_batch=1), H100).step
    chunked = evaluate(job, Layout(pp=4, micro_batch=1, interleave=4), H100).step
    assert chunked.bubble == pytest.approx(plain.bubble / 4, rel=0.05)  # sends grow a little
    assert chunked.pipeline_comm == pytest.approx(4 * plain.pipeline_comm)


def test_collectives_nvlink_beats_network_and_all_reduce_is_two_passes():
    calib = calibration("hopper")
    inside = collective_seconds("all_reduce", 1e9, 8, 1, H100, calib)
    across = collective_seconds("all_reduce", 1e9, 8, 8, H100, calib)
    assert inside < across
    assert collective_seconds("all_gather", 1e9, 64, 8, H100, calib) * 2 == pytest.approx(
        collective_seconds("all_reduce", 1e9, 64, 8, H100, calib)
    )
    assert collective_seconds("all_reduce", 1e9, 1, 1, H100, calib) == 0.0


def test_output_layer_goes_where_the_stages_balance():
    assert critical_stage(32, 1, 1.0, 0.5) == (32, True)
    layers, with_head = critical_stage(32, 4, 1.0, 3.0)
    assert layers * 1.0 + (3.0 if with_head else 0) <= 9 + 1e-9  # the last stage sheds layers


def test_layout_problems_say_what_to_change():
    job = Job(LLAMA_8B, 4096, 64)
    problems = Layout(tp=3, dp=1).problems(job)
    assert any("tensor parallel degree 3 does not divide 32 heads" in p for p in problems)
    assert Layout(dp=3, micro_batch=2).problems(job) == [
        "global batch 64 is not a multiple of dp 3 × micro-batch 2"
    ]
    with pytest.raises(ValueError, match="needs a pipeline"):
        Layout(interleave=2)


@pytest.mark.parametrize("gpus", [64, 96, 1000])
def test_search_returns_layouts_that_fit_and_use_every_gpu(gpus):
    job = Job(LLAMA_8B, 8192, 512)
    found = search(job, gpus, H100, top=20, flexible_batch=True)
    assert found
    for cand in found:
        assert cand.layout.gpus == gpus
        assert cand.memory.total <= USABLE_FRACTION * H100.hbm_bytes
        assert not cand.layout.problems(cand.job)
        assert abs(cand.job.global_batch / 512 - 1) <= 0.25
    rates = [c.tokens_per_s for c in found]
    assert all(later <= earlier * (1 + 1e-4) for earlier, later in itertools.pairwise(rates))


def test_search_honours_pinned_knobs_and_partial_recompute():
    job = Job(Shape.from_model(PRESETS["70b"]), 8192, 64)
    found = search(job, 64, H100, top=50, tp=8, pp=8)
    assert found and all(c.layout.tp == 8 and c.layout.pp == 8 for c in found)
    partial = [c for c in found if c.layout.recompute == "full" and c.layout.recompute_layers]
    for cand in partial:  # just enough: one layer fewer would not fit
        assert 0 < cand.layout.recompute_layers < cand.layout.layers_per_stage(job)


def test_nothing_fits_when_the_model_is_too_big():
    job = Job(Shape.from_model(PRESETS["405b"]), 8192, 16)
    assert search(job, 8, gpu("a100-40gb")) == []


def test_more_memory_never_hurts():
    """H200 is an H100 with more and faster HBM: the best layout is at least as fast."""
    job = Job(Shape.from_model(PRESETS["70b"]), 8192, 256)
    h100 = search(job, 256, H100, top=1, flexible_batch=True)[0]
    h200 = search(job, 256, GPUS["h200"], top=1, flexible_batch=True)[0]
    assert h200.tokens_per_s >= h100.tokens_per_s
