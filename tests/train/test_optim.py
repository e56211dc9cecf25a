"""Learning-rate schedules and AdamW's decay groups."""

from __future__ import annotations

import pytest

from roost.model.config import preset
from roost.model.llama import Llama
from roost.train.optim import build_optimizer, lr_multiplier
from tests.train.conftest import tiny


def test_warmup_then_cosine_to_the_floor() -> None:
    f = lr_multiplier(tiny(schedule="cosine", warmup_steps=10, max_steps=110, min_lr_ratio=0.1))
    assert [f(s) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert f(10) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.55)  # half way: the mean of 1 and the floor
    assert f(110) == pytest.approx(0.1)
    assert all(f(s) >= f(s + 1) for s in range(10, 120))


def test_wsd_holds_then_decays_linearly() -> None:
    f = lr_multiplier(
        tiny(schedule="wsd", warmup_steps=10, max_steps=100, decay_fraction=0.2, min_lr_ratio=0.0)
    )
    assert f(10) == f(50) == f(79) == 1.0
    assert f(90) == pytest.approx(0.5)
    assert f(100) == pytest.approx(0.0)


def test_constant_after_warmup() -> None:
    f = lr_multiplier(tiny(schedule="constant", warmup_steps=4, max_steps=50))
    assert f(1) == pytest.approx(0.5) and f(4) == f(49) == 1.0


def test_decay_applies_to_matrices_not_norms() -> None:
    model = Llama(preset("tiny"))
    optimizer = build_optimizer(model, tiny(weight_decay=0.1))
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim == 2 for p in decay["params"]) and all(p.ndim == 1 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    assert decay["fused"]  # one fused kernel for plain tensors


def test_a_tied_matrix_is_one_parameter() -> None:
    model = Llama(preset("tiny", tie_embeddings=True))
    optimizer = build_optimizer(model, tiny())
    params = [p for group in optimizer.param_groups for p in group["params"]]
    assert len(params) == len({id(p) for p in params})
    assert any(p is model.output.weight for p in params)
