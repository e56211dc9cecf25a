"""FLOP conventions and the memory model: closed forms from the papers, and properties."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roost.model.config import PRESETS
from roost.plan import flops
from roost.plan.job import MEGATRON_MIXED, ZERO_MIXED, Job
from roost.plan.memory import (
    interleave_factor,
    layer_activation_bytes,
    memory_per_gpu,
    model_states,
)
from roost.plan.mesh import SHARDINGS, Layout
from roost.plan.shape import Shape

GPT3 = Shape.gpt(96, 12288, 96)


def test_megatron_eq3_is_hardware_flops_with_full_recompute():
    b, s, lay, h, v = 1, 2048, GPT3.layers, GPT3.hidden, GPT3.vocab
    eq3 = 96 * b * s * lay * h**2 * (1 + s / (6 * h) + v / (16 * lay * h))
    assert flops.hardware_flops_per_token(GPT3, s, "full", "full") * s == pytest.approx(eq3, rel=1e-12)


def test_conventions_order_and_6n():
    s = 2048
    full, causal, none = (flops.model_flops_per_token(GPT3, s, a) for a in ("full", "causal", "none"))
    assert full > causal > none
    assert full - causal == pytest.approx(causal - none)
    assert none == pytest.approx(6 * (GPT3.layers * GPT3.layer_matmul_params() + GPT3.vocab * GPT3.hidden))
    hw = [flops.hardware_flops_per_token(GPT3, s, "full", r) for r in ("none", "selective", "full")]
    assert hw[0] == full and hw[0] < hw[1] < hw[2]


@pytest.mark.parametrize("name", ["125m", "8b", "70b", "405b"])
def test_shape_agrees_with_model_config(name):
    cfg = PRESETS[name]
    shape = Shape.from_model(cfg)
    assert shape.num_params() == cfg.num_params()
    for attention in ("full", "causal", "none"):
        mine = flops.model_flops_per_token(shape, 4096, attention)
        # ModelConfig also counts the norm weights in its 6N (parts in 10⁴ for the smallest).
        assert mine == pytest.approx(cfg.flops_per_token(4096, attention), rel=3e-4)


def test_utilization_and_days():
    per_token = flops.model_flops_per_token(GPT3, 2048)
    assert flops.utilization(1000.0, per_token, 8, 312e12) == pytest.approx(1000 * per_token / (8 * 312e12))
    # Megatron-LM §5.1: 175B on 300B tokens, 1,024 GPUs at 140 TFLOP/s: 34 days by 8TP/(nX).
    assert flops.training_days(8 * 300e9 * 175e9, 1024, 140e12) == pytest.approx(34, rel=0.01)
    with pytest.raises(ValueError, match="attention convention"):
        flops.forward_flops(GPT3, 2048, "square")  # type: ignore[arg-type]


def test_korthikanti_closed_forms():
    s, b, t = 2048, 1, 8
    h, a = GPT3.hidden, GPT3.heads
    sbh = s * b * h
    common = dict(flash_attention=False, dropout=True)
    assert layer_activation_bytes(GPT3, s, b, tp=t, **common) == pytest.approx(
        sbh * (10 + 24 / t + 5 * a * s / (h * t))
    )
    assert layer_activation_bytes(GPT3, s, b, tp=t, sp=True, **common) == pytest.approx(
        sbh * (34 + 5 * a * s / h) / t
    )
    assert layer_activation_bytes(
        GPT3, s, b, tp=t, sp=True, recompute="selective", **common
    ) == pytest.approx(sbh * 34 / t)
    assert layer_activation_bytes(GPT3, s, b, tp=t, recompute="full", **common) == pytest.approx(2 * sbh)
    assert interleave_factor(8, 1) == 1 and interleave_factor(8, 3) == pytest.approx(1 + 7 / 24)


def test_flash_attention_swiglu_and_gqa_change_what_is_stored():
    llama = Shape.from_model(PRESETS["70b"])
    s = 8192
    flash = layer_activation_bytes(llama, s, 1, tp=8, sp=True)
    unfused = layer_activation_bytes(llama, s, 1, tp=8, sp=True, flash_attention=False)
    assert unfused - flash > llama.heads * s * s * 2 / 8 * 0.99  # the s×s scores per head
    mha = Shape.from_model(PRESETS["70b"].replace(n_kv_heads=None))
    assert layer_activation_bytes(mha, s, 1, tp=8, sp=True) > flash  # bigger K and V
    gelu = Shape(llama.layers, llama.hidden, llama.heads, llama.ffn, llama.vocab, kv_heads=8, gated_ffn=False)
    assert layer_activation_bytes(gelu, s, 1, tp=8, sp=True) == pytest.approx(flash - 2 * s * llama.ffn / 8)


@settings(max_examples=60, deadline=None)
@given(
    params=st.floats(1e6, 1e12),
    dp=st.integers(1, 4096),
    recipe=st.sampled_from([ZERO_MIXED, MEGATRON_MIXED]),
)
def test_memory_falls_with_each_zero_stage(params, dp, recipe):
    totals = [model_states(params, recipe, sharding, dp).total for sharding in SHARDINGS]
    assert all(a >= b for a, b in itertools.pairwise(totals))
    if dp > 1:
        assert totals[0] > totals[-1] * (dp - 1)


@settings(max_examples=40, deadline=None)
@given(
    micro_batch=st.sampled_from([1, 2, 4]),
    tp=st.sampled_from([1, 2, 4, 8]),
    pp=st.sampled_from([1, 2, 4, 8]),
)
def test_recompute_and_sequence_parallel_only_save_memory(micro_batch, tp, pp):
    job = Job(Shape.from_model(PRESETS["8b"]), 4096, 64 * micro_batch)
    base = Layout(tp=tp, pp=pp, dp=1, micro_batch=micro_batch, sequence_parallel=False)
    none = memory_per_gpu(job, base).activations
    selective = memory_per_gpu(job, Layout(**{**base.__dict__, "recompute": "selective"})).activations
    full = memory_per_gpu(job, Layout(**{**base.__dict__, "recompute": "full"})).activations
    sp = memory_per_gpu(job, Layout(**{**base.__dict__, "sequence_parallel": True})).activations
    assert full < selective <= none
    assert sp < none if tp > 1 else sp == none


def test_fsdp_holds_gathered_layers_while_others_do_not():
    job = Job(Shape.from_model(PRESETS["8b"]), 4096, 64)
    fsdp = memory_per_gpu(job, Layout(dp=8, sharding="zero3"))
    zero1 = memory_per_gpu(job, Layout(dp=8, sharding="zero1"))
    assert fsdp.transient > 0 == zero1.transient
    assert fsdp.weights == pytest.approx(zero1.weights / 8)
