"""Reproduce published cases (`scale_cases/*.json`) in each source's own conventions.

A case gives a run's published `inputs` and `outputs`; `reproduce(case)` predicts every output it
can with the planner's models and returns one `Comparison` per published number. A case is read
by what it holds, never by its id:
- a training run (`gpu_type`, `gpu_count`): `published.read_run` turns it into a job and the
  layout knobs it states; the search fills in the rest; rates (TFLOP/s, MFU, iteration time,
  tokens/s) and training days are compared in the run's FLOP convention. Days are checked twice:
  from the published rate (the FLOP accounting, to 5%) and from the predicted rate (to the
  throughput tolerance, since days scale inversely with it);
- Korthikanti et al. Figure 1 memory (GiB: transformer layers, 18 bytes per parameter, the first
  pipeline stage's activations) and ZeRO Figure 1 model states (GB, K = 12);
- Chinchilla Table 3 / §4 allocations and Approach 3's closed form; Daly's worked intervals.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roost.plan import flops, reliability, sizing
from roost.plan.calibration import Calibration, calibrate, calibration
from roost.plan.job import MEGATRON_MIXED, ZERO_MIXED
from roost.plan.layout import Candidate, search
from roost.plan.memory import GIB, interleave_factor, layer_activation_bytes, model_states
from roost.plan.published import GPT_VOCAB, PublishedRun, gpu_of, read_run
from roost.plan.shape import Shape

# Tolerances the checks hold predictions to, by what is compared.
TOLERANCE = {"memory": 0.05, "throughput": 0.15, "days": 0.05, "compute_optimal": 0.05, "interval": 0.0}
Case = dict[str, Any]


@dataclass(frozen=True)
class Comparison:
    case_id: str
    kind: str  # memory, throughput, days, compute_optimal, interval
    quantity: str
    predicted: float
    published: float
    detail: str = ""  # the layout chosen, the convention used
    alternative: float | None = None  # a second reading of the published figure (see `error`)

    @property
    def error(self) -> float:
        """Relative error; where the source offers two readings of one figure, the nearer one."""
        errors = [self.predicted / self.published - 1]
        if self.alternative is not None:
            errors.append(self.predicted / self.alternative - 1)
        return min(errors, key=abs)

    @property
    def ok(self) -> bool:
        if self.kind == "interval":  # "exactly": equal at the precision it was published to
            return round(self.predicted, decimals(self.published)) == self.published
        return abs(self.error) <= TOLERANCE[self.kind]


def decimals(value: float) -> int:
    """Decimal places a published figure was given to (117 → 0, 9.1 → 1)."""
    text = repr(float(value)).rstrip("0").rstrip(".")
    return len(text.split(".")[1]) if "." in text else 0


def load_cases(path: Path) -> list[Case]:
    return json.loads(Path(path).read_text())


# -- training runs ----------------------------------------------------------------------------


def predict_run(run: PublishedRun, calib: Calibration | None = None) -> Candidate:
    """The fastest layout with the source's stated knobs pinned. Knobs it leaves out (micro-batch,
    interleaving, recompute) must fit the memory model; a fully stated layout is taken as having
    fitted (sources ran with tricks the model leaves out, such as offloading)."""
    assert run.job is not None
    calib = calib or calibration(run.gpu.generation)
    chosen_here = not {"micro_batch", "recompute"} <= run.pinned.keys()
    found = search(
        run.job,
        run.gpus,
        run.gpu,
        calib,
        top=1,
        check_memory=chosen_here,
        flexible_batch=not run.exact_batch,
        **run.pinned,
    )
    if not found:
        raise ValueError(f"no layout of {run.gpus} GPUs with {run.pinned} runs {run.job.shape}")
    return found[0]


def training_run(case: Case, calib: Calibration | None) -> list[Comparison]:
    run = read_run(case)
    inputs, out, cid = case["inputs"], case["outputs"], case["id"]
    found: list[Comparison] = []
    per_token = run.convention.per_token(run.job) if run.job else run.convention.per_token_of(run.params)
    rate_label = f"TFLOP/s per GPU ({run.convention.name})"

    predicted_tflops = None
    if run.job is not None:
        cand = predict_run(run, calib)
        predicted_tflops = cand.tokens_per_s * per_token / run.gpus / 1e12
        layout = cand.layout.describe()
        peak = run.gpu.peak_flops(run.job.fp8) / 1e12
        published_rates = {
            "tflops_per_gpu": out.get("tflops_per_gpu", out.get("tflops_per_gpu_up_to")),
            "mfu": out.get("mfu", out.get("percent_of_peak")),
            "iteration_time_s": out.get("iteration_time_s"),
            "tokens_per_s": out.get("tokens_per_s"),
            "tokens_per_s_per_gpu": out.get("tokens_per_s_per_gpu"),
        }
        if published_rates["tflops_per_gpu"] is not None:
            found.append(
                Comparison(
                    cid, "throughput", rate_label, predicted_tflops, published_rates["tflops_per_gpu"], layout
                )
            )
        elif published_rates["mfu"] is not None:
            found.append(
                Comparison(
                    cid,
                    "throughput",
                    f"fraction of peak ({run.convention.name})",
                    predicted_tflops / peak,
                    published_rates["mfu"],
                    layout,
                )
            )
        elif published_rates["iteration_time_s"] is not None:
            published = run.job.tokens_per_step * per_token / published_rates["iteration_time_s"] / run.gpus
            found.append(
                Comparison(
                    cid,
                    "throughput",
                    f"{rate_label}, from iteration time",
                    predicted_tflops,
                    published / 1e12,
                    layout,
                )
            )
        elif published_rates["tokens_per_s"] is not None:
            found.append(
                Comparison(
                    cid, "throughput", "tokens/s", cand.tokens_per_s, published_rates["tokens_per_s"], layout
                )
            )
        elif published_rates["tokens_per_s_per_gpu"] is not None:
            found.append(
                Comparison(
                    cid,
                    "throughput",
                    "tokens/s per GPU",
                    cand.tokens_per_s / run.gpus,
                    published_rates["tokens_per_s_per_gpu"],
                    layout,
                )
            )

    tokens = inputs.get("train_tokens")
    published_tflops = (
        inputs.get("tflops_per_gpu") or out.get("tflops_per_gpu") or out.get("tflops_per_gpu_up_to")
    )
    days_key = next((k for k in out if k.startswith("training_time_days")), None)
    if tokens and days_key:
        total = per_token * tokens
        if published_tflops:
            found.append(
                Comparison(
                    cid,
                    "days",
                    f"days at the published rate ({run.convention.name})",
                    flops.training_days(total, run.gpus, published_tflops * 1e12),
                    out[days_key],
                )
            )
        if predicted_tflops:
            found.append(
                Comparison(
                    cid,
                    "throughput",
                    "days at the predicted rate",
                    flops.training_days(total, run.gpus, predicted_tflops * 1e12),
                    out[days_key],
                    "days scale inversely with the rate: held to the throughput tolerance",
                )
            )
    if tokens and "total_flops" in out:
        found.append(
            Comparison(
                cid, "days", f"training FLOPs ({run.convention.name})", per_token * tokens, out["total_flops"]
            )
        )
    for key, value in out.items():  # "ideal_days_on_1024_a100": the total at the published rate
        if key.startswith("ideal_days_on_") and "total_flops" in out and published_tflops:
            n = int(key.split("_")[3])
            found.append(
                Comparison(
                    cid,
                    "days",
                    f"days on {n} GPUs at the published rate",
                    flops.training_days(out["total_flops"], n, published_tflops * 1e12),
                    value,
                )
            )
    if "gpu_hours" in out and tokens and predicted_tflops:
        hours = per_token * tokens / (predicted_tflops * 1e12) / 3600
        found.append(
            Comparison(cid, "throughput", "GPU-hours at the predicted rate", hours, out["gpu_hours"])
        )
    return found


# -- memory -------------------------------------------------------------------------------------


def korthikanti_memory(case: Case, calib: Calibration | None) -> list[Comparison]:
    """Figure 1: the first stage's memory, transformer layers only, 18 bytes per parameter."""
    i, out = case["inputs"], case["outputs"]
    shape = Shape.gpt(i["layers"], i["hidden"], i["heads"], i.get("vocab", GPT_VOCAB), i["seq_len"])
    tp, pp, v = i["tp"], i["pp"], i["pipeline_interleave_chunks"]
    layers = shape.layers // pp
    states = model_states(layers * shape.layer_params() / tp, MEGATRON_MIXED, "ddp", 1)
    in_flight = layers * pp * interleave_factor(pp, v)  # p micro-batches on the first stage

    def activations(**kw: Any) -> float:
        per_layer = layer_activation_bytes(
            shape, i["seq_len"], i["microbatch_size"], tp=tp, flash_attention=False, dropout=True, **kw
        )
        return per_layer * in_flight / GIB

    return [
        Comparison(
            case["id"],
            "memory",
            "GiB weights+grads+optimizer (18 B/param)",
            states.total / GIB,
            out["params_and_optimizer_gib"],
        ),
        Comparison(
            case["id"],
            "memory",
            "GiB activations, tensor parallel, no recompute",
            activations(),
            out["activations_gib_tp_only_no_recompute"],
        ),
        Comparison(
            case["id"],
            "memory",
            "GiB activations, sequence parallel + selective",
            activations(sp=True, recompute="selective"),
            out["activations_gib_sp_plus_selective_recompute"],
        ),
    ]


def zero_memory(case: Case, calib: Calibration | None) -> list[Comparison]:
    """ZeRO Figure 1: model states per GPU for Ψ parameters and optimizer bytes K over N_d replicas."""
    i, out = case["inputs"], case["outputs"]
    precision = dataclasses.replace(ZERO_MIXED, optimizer_bytes=i["optimizer_bytes_K"])
    rows = (
        ("ddp", "baseline_GB"),
        ("zero1", "zero1_os_GB"),
        ("zero2", "zero2_os_g_GB"),
        ("zero3", "zero3_os_g_p_GB"),
    )
    return [
        Comparison(
            case["id"],
            "memory",
            f"GB model states, {sharding}",
            model_states(i["params"], precision, sharding, i["dp"]).total / 1e9,
            out[key],
        )
        for sharding, key in rows
        if key in out
    ]


# -- sizing and checkpoints -----------------------------------------------------------------------


def chinchilla_table3(case: Case, calib: Calibration | None) -> list[Comparison]:
    """A model size's compute-optimal FLOPs and tokens (Approach 1).

    The table rounds tokens; where a row's tokens and FLOPs disagree under C = 6ND (67B: 1.5T
    against 5.76e23/(6·67e9) = 1.43T), the tokens its FLOPs imply count as a second reading.
    """
    n, out = case["inputs"]["params"], case["outputs"]
    compute = sizing.optimal_compute_for(n)
    return [
        Comparison(case["id"], "compute_optimal", "optimal FLOPs", compute, out["optimal_flops"]),
        Comparison(
            case["id"],
            "compute_optimal",
            "optimal tokens",
            sizing.optimal_tokens(compute),
            out["optimal_tokens"],
            alternative=out["optimal_flops"] / (6 * n),
        ),
    ]


def chinchilla_allocation(case: Case, calib: Calibration | None) -> list[Comparison]:
    """At a compute budget, the compute-optimal parameters and tokens (Chinchilla itself at Gopher's)."""
    c, out = case["inputs"]["compute_flops"], case["outputs"]
    return [
        Comparison(
            case["id"],
            "compute_optimal",
            f"params at {c:.3g} FLOPs",
            sizing.optimal_params(c),
            out["chinchilla_params"],
        ),
        Comparison(
            case["id"],
            "compute_optimal",
            f"tokens at {c:.3g} FLOPs",
            sizing.optimal_tokens(c),
            out["chinchilla_tokens"],
        ),
    ]


def chinchilla_approach3(case: Case, calib: Calibration | None) -> list[Comparison]:
    """Approach 3's closed form with the published, rounded constants, against the case's own
    derivation: reproduced to show why the planner allocates with Approach 1 instead."""
    i, derived = case["inputs"], case["derived"]
    found = []
    for key, entry in derived.items():
        if not key.startswith("optimal_params_at_"):
            continue
        compute = float(key.removeprefix("optimal_params_at_"))
        params, tokens = sizing.approach3_optimum(compute, i["E"], i["A"], i["B"], i["alpha"], i["beta"])
        found.append(
            Comparison(
                case["id"], "compute_optimal", f"Approach 3 params at {compute:.3g}", params, entry["value"]
            )
        )
        ratio = derived.get(f"tokens_per_param_at_{key.removeprefix('optimal_params_at_')}")
        if ratio:
            found.append(
                Comparison(
                    case["id"],
                    "compute_optimal",
                    "Approach 3 tokens per parameter",
                    tokens / params,
                    ratio["value"],
                )
            )
    return found


def daly_example(case: Case, calib: Calibration | None) -> list[Comparison]:
    i = case["inputs"]
    interval = reliability.daly_interval(i["checkpoint_time_min"], i["mtbf_min"])
    return [
        Comparison(
            case["id"],
            "interval",
            "optimal checkpoint interval (min)",
            interval,
            case["outputs"]["optimal_interval_min"],
        )
    ]


Reproducer = Callable[[Case, Calibration | None], list[Comparison]]


def reproducer(case: Case) -> Reproducer:
    """Which comparison a case calls for, read from what it publishes."""
    i, out = case["inputs"], case["outputs"]
    if "optimal_interval_min" in out:
        return daly_example
    if any(k.startswith("zero") and k.endswith("_GB") for k in out):
        return zero_memory
    if "params_and_optimizer_gib" in out:
        return korthikanti_memory
    if "optimal_tokens" in out:
        return chinchilla_table3
    if "chinchilla_params" in out:
        return chinchilla_allocation
    if "law" in i:
        return chinchilla_approach3
    if "gpu_type" in i and "gpu_count" in i:
        return training_run
    raise ValueError(f"case {case.get('id')!r}: nothing here reproduces outputs {sorted(out)}")


def reproduce(case: Case, calib: Calibration | None = None) -> list[Comparison]:
    """Predicted against published, for every number a case publishes."""
    return reproducer(case)(case, calib)


def reproduce_all(
    cases: Sequence[Case], calibrations: dict[str, Calibration] | None = None
) -> list[Comparison]:
    """Every case, each training run with its generation's calibration from `calibrations` when given."""
    result = []
    for case in cases:
        gpu_type = case["inputs"].get("gpu_type")
        calib = calibrations.get(gpu_of(gpu_type).generation) if calibrations and gpu_type else None
        result.extend(reproduce(case, calib))
    return result


def error_summary(comparisons: Sequence[Comparison]) -> dict[str, tuple[int, float, float]]:
    """Per kind: how many comparisons, the largest and the mean absolute relative error."""
    summary = {}
    for kind in dict.fromkeys(c.kind for c in comparisons):
        errors = [abs(c.error) for c in comparisons if c.kind == kind]
        summary[kind] = (len(errors), max(errors), sum(errors) / len(errors))
    return summary


def rate_comparisons(comparisons: Sequence[Comparison]) -> list[Comparison]:
    """The throughput comparisons that are rates (one per run), not days derived from them."""
    return [
        c for c in comparisons if c.kind == "throughput" and not c.quantity.startswith(("days", "GPU-hours"))
    ]


def calibrate_generation(
    cases: Sequence[Case], generation: str, base: Calibration | None = None
) -> Calibration:
    """One calibration for a hardware generation: `matmul` fitted to every run of it that
    publishes a rate (a single run is enough)."""
    runs = [
        c
        for c in cases
        if "gpu_type" in c["inputs"] and gpu_of(c["inputs"]["gpu_type"]).generation == generation
    ]
    observed = [c.published for c in rate_comparisons(reproduce_all(runs))]
    if not observed:
        raise ValueError(f"no run on {generation} hardware publishes a rate to calibrate with")

    def predict(calib: Calibration) -> list[float]:
        return [c.predicted for c in rate_comparisons(reproduce_all(runs, {generation: calib}))]

    return calibrate(base or calibration(generation), predict, observed)
