"""Every published development case, reproduced in its source's conventions, within tolerance:
memory 5%, TFLOP/s 15% (after Ampere's one calibration), days 5%, Daly's intervals exactly.
Run with `-s` to see the predicted-vs-published table."""

from __future__ import annotations

import dataclasses

import pytest
from rich.console import Console

from roost.plan import sizing
from roost.plan.calibration import CALIBRATIONS
from roost.plan.cases import TOLERANCE, calibrate_generation, load_cases, reproduce, reproduce_all
from roost.plan.report import render_comparisons
from tests.conftest import SCALE_CASES, need


@pytest.fixture(scope="module")
def cases() -> list[dict]:
    return load_cases(need(SCALE_CASES))


@pytest.fixture(scope="module")
def comparisons(cases):
    return reproduce_all(cases)


def test_every_published_number_is_within_tolerance(comparisons):
    # The table goes to the test's stdout: shown with -s, and on failure.
    render_comparisons(comparisons, Console(width=160, force_terminal=False))
    off = [
        f"{c.case_id}: {c.quantity} {c.predicted:.4g} vs {c.published:.4g} ({c.error:+.1%})"
        for c in comparisons
        if not c.ok
    ]
    assert not off, "\n".join(off)


def test_every_case_yields_comparisons_of_its_kind(cases):
    kinds = {
        "throughput": {"throughput"},
        "training_time": {"days", "throughput"},
        "memory": {"memory"},
        "compute_optimal": {"compute_optimal"},
        "checkpoint_interval": {"interval"},
    }
    for case in cases:
        found = reproduce(case)
        assert found, case["id"]
        assert {c.kind for c in found} & kinds[case["kind"]], case["id"]


def test_throughput_cases_compare_a_rate(comparisons, cases):
    """Each of the runs publishing a rate gets one rate comparison: nothing is silently skipped."""
    rated = {c.case_id for c in comparisons if c.kind == "throughput" and not c.quantity.startswith("days")}
    publishing = {c["id"] for c in cases if c["kind"] == "throughput" or "tflops_per_gpu" in c["outputs"]}
    assert publishing <= rated


def test_ampere_constant_is_the_fit_to_the_published_runs(cases):
    fitted = calibrate_generation(cases, "ampere")
    assert fitted.matmul == pytest.approx(CALIBRATIONS["ampere"].matmul, abs=0.01)


def test_a_worse_calibration_fails_the_tolerance(cases):
    """The throughput check can fail: a 25% lower matmul efficiency breaks it."""
    runs = [c for c in cases if "gpu_type" in c["inputs"]]
    worse = dataclasses.replace(CALIBRATIONS["ampere"], matmul=CALIBRATIONS["ampere"].matmul * 0.75)
    rates = [c for c in reproduce_all(runs, {"ampere": worse}) if c.kind == "throughput"]
    assert max(abs(c.error) for c in rates) > TOLERANCE["throughput"]


def test_chinchilla_constants_are_the_fit_to_table3(cases):
    rows = [c for c in cases if "optimal_tokens" in c["outputs"]]
    laws = sizing.fit_approach1(
        [c["inputs"]["params"] for c in rows],
        [c["outputs"]["optimal_flops"] for c in rows],
        [c["outputs"]["optimal_tokens"] for c in rows],
    )
    assert dataclasses.astuple(laws) == pytest.approx(dataclasses.astuple(sizing.APPROACH1), rel=1e-9)
    assert laws.params_exponent + laws.tokens_exponent == pytest.approx(1.0, abs=1e-3)
