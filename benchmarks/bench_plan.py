"""The planner's benchmark: every published development case predicted against its published
numbers, with error statistics per kind; the throughput model next to the rule of thumb a user
would otherwise reach for (a constant share of peak, fitted to the same runs); how robust one
calibration is (fitted to each single run in turn); and how fast a 10,000-GPU plan is made.

    python -m benchmarks.bench_plan [CASES.json]
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from pathlib import Path

from rich.console import Console

from roost.plan.cases import (
    calibrate_generation,
    error_summary,
    load_cases,
    predict_run,
    rate_comparisons,
    reproduce_all,
)
from roost.plan.layout import layouts
from roost.plan.planner import make_plan
from roost.plan.published import gpu_of, read_run
from roost.plan.report import render_comparisons

DEV_CASES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scale_cases" / "dev_cases.json"


def main(path: Path) -> None:
    console = Console(width=150)
    cases = load_cases(path)
    by_id = {c["id"]: c for c in cases}
    comparisons = reproduce_all(cases)
    render_comparisons(comparisons, console)

    # The rule of thumb: TFLOP/s = u × peak, with the one u that fits these runs best (log mean).
    rates = [c for c in rate_comparisons(comparisons) if c.quantity.startswith("TFLOP/s")]
    peaks = [gpu_of(by_id[c.case_id]["inputs"]["gpu_type"]).bf16_tflops for c in rates]
    u = math.exp(statistics.fmean(math.log(c.published / p) for c, p in zip(rates, peaks, strict=True)))
    rule = [abs(u * p / c.published - 1) for c, p in zip(rates, peaks, strict=True)]
    model = [abs(c.error) for c in rates]
    model_mean, rule_mean = statistics.fmean(model), statistics.fmean(rule)
    print(
        f"\nTFLOP/s per GPU on {len(rates)} published runs: roost planner mean error {model_mean:.1%} "
        f"(max {max(model):.1%}) vs constant-utilisation rule (u = {u:.3f} of peak, fitted to the same "
        f"runs) mean {rule_mean:.1%} (max {max(rule):.1%}): {rule_mean / model_mean:.1f}x lower mean error"
    )

    # One calibration per generation: how the errors look when it is fitted to one run only. A
    # reference whose step is mostly communication says little about matmul speed, so the spread
    # is shown for all references and for compute-bound ones (compute >= 60% of the step).
    runs = [c for c in cases if "gpu_type" in c["inputs"] and read_run(c).job is not None]
    single = []
    for run in runs:
        step = predict_run(read_run(run)).step
        calib = calibrate_generation([run], "ampere")
        errors = [abs(c.error) for c in rate_comparisons(reproduce_all(runs, {"ampere": calib}))]
        single.append(
            (max(errors), statistics.fmean(errors), calib.matmul, step.compute / step.total, run["id"])
        )
    for label, refs in (("one run", single), ("one compute-bound run", [r for r in single if r[3] >= 0.6])):
        refs = sorted(refs)
        worst, mean = statistics.median(r[0] for r in refs), statistics.median(r[1] for r in refs)
        print(
            f"calibrated on {label} ({len(refs)} choices) instead of all {len(runs)}: matmul "
            f"{min(r[2] for r in refs):.3f}-{max(r[2] for r in refs):.3f}; worst error over all runs: "
            f"median {worst:.1%}, best reference {refs[0][0]:.1%} ({refs[0][4]}), worst {refs[-1][0]:.1%} "
            f"({refs[-1][4]}); mean error median {mean:.1%}"
        )

    print("\nerror by kind (absolute, relative):")
    for kind, (count, top, mean) in error_summary(comparisons).items():
        print(f"  {kind:16s} {count:3d} comparisons  max {top:6.1%}  mean {mean:6.1%}")

    # Planning speed: the whole plan (layout search, reliability, sizing) for 10,000 H100s.
    print()
    for model_name in ("70b", "405b"):
        seconds = []
        for _ in range(3):
            start = time.perf_counter()
            plan = make_plan("h100", 10_000, days=90, model=model_name)
            seconds.append(time.perf_counter() - start)
        considered = sum(1 for _ in layouts(plan.best.job, 10_000, flexible_batch=True))
        print(
            f"plan {model_name} on 10,000 H100: {min(seconds):.2f} s ({considered:,} layouts considered, "
            f"{considered / min(seconds):,.0f}/s); best {plan.best.layout.describe()}, MFU {plan.mfu:.1%}, "
            f"{plan.days:.0f} days, {plan.tokens / 1e12:.1f}T tokens, goodput {plan.reliability.goodput:.1%}"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEV_CASES)
