"""Search for the fastest way to lay a job out on a cluster: every tensor, pipeline, context and
data parallel degree that divides the GPU count, with micro-batch, state sharding, recompute and
pipeline interleaving, kept when it fits in memory and ranked by the throughput model.

Any knob can be pinned (`tp=8`, `recompute="full"`, ...), which is how a published run with a few
unpublished settings (micro-batch, interleaving) is reproduced: the search fills in the rest.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

from roost.plan.calibration import Calibration, calibration
from roost.plan.flops import RECOMPUTE_MODES, Recompute, model_flops_per_token, utilization
from roost.plan.hardware import GPU
from roost.plan.job import Job
from roost.plan.memory import USABLE_FRACTION, MemoryBreakdown, fits, memory_per_gpu
from roost.plan.mesh import SHARDINGS, Layout, Sharding
from roost.plan.throughput import StepTime, step_time

TP_DEGREES = (1, 2, 4, 8)  # within one server's NVLink domain
CP_DEGREES = (1, 2, 4, 8, 16, 32)
# Context parallelism splits a sequence only while each rank keeps this many tokens of it: shorter
# slices make short matmuls, which the model's single matmul efficiency would flatter.
MIN_CP_TOKENS = 4096
MICRO_BATCHES = (1, 2, 4, 8, 16)
INTERLEAVES = (1, 2, 3, 4, 6, 8)
MAX_PP = 128
# A flexible batch may move this far from the target to fit the data-parallel degree.
BATCH_SLACK = 0.25


@dataclass(frozen=True)
class Candidate:
    layout: Layout
    job: Job  # the job as laid out: its global batch rounded to dp × micro-batch × micro-batches
    memory: MemoryBreakdown
    step: StepTime

    @property
    def tokens_per_s(self) -> float:
        return self.job.tokens_per_step / self.step.total

    def mfu(self, gpu: GPU) -> float:
        """Model FLOPs utilisation, attention counted causal (what the model needs with a mask)."""
        per_token = model_flops_per_token(self.job.shape, self.job.seq_len, "causal")
        return utilization(self.tokens_per_s, per_token, self.layout.gpus, gpu.peak_flops(self.job.fp8))


def evaluate(job: Job, layout: Layout, gpu: GPU, calib: Calibration | None = None) -> Candidate:
    """Memory and step time of one fully stated layout (it need not fit; see `fits`)."""
    problems = layout.problems(job)
    if problems:
        raise ValueError("; ".join(problems))
    calib = calib or calibration(gpu.generation)
    return Candidate(layout, job, memory_per_gpu(job, layout), step_time(job, layout, gpu, calib))


def just_enough_recompute(job: Job, layout: Layout, gpu: GPU) -> Layout | None:
    """`layout` recomputing the fewest layers per stage that makes it fit (None: not even all)."""
    budget = USABLE_FRACTION * gpu.hbm_bytes
    stage = layout.layers_per_stage(job)
    everything = memory_per_gpu(job, layout).total
    if everything > budget:
        return None
    one = memory_per_gpu(job, dataclasses.replace(layout, recompute_layers=1)).total
    if stage == 1 or one <= budget:
        return layout if stage == 1 else dataclasses.replace(layout, recompute_layers=1)
    # Memory falls by the same amount with each further recomputed layer.
    saved_per_layer = (one - everything) / (stage - 1)
    layers = 1 + math.ceil((one - budget) / saved_per_layer - 1e-9)
    while (
        layers < stage
        and memory_per_gpu(job, dataclasses.replace(layout, recompute_layers=layers)).total > budget
    ):
        layers += 1  # guards the rounding
    return layout if layers >= stage else dataclasses.replace(layout, recompute_layers=layers)


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def rounded_batch(target: int, dp: int, micro_batch: int, multiple: int) -> int | None:
    """The global batch nearest `target` that dp × micro-batch × (a multiple of `multiple`) makes,
    or None when the nearest is more than BATCH_SLACK away."""
    unit = dp * micro_batch * multiple
    batch = max(1, round(target / unit)) * unit
    return batch if abs(batch / target - 1) <= BATCH_SLACK else None


def layouts(
    job: Job,
    gpus: int,
    *,
    flexible_batch: bool = False,
    tp: int | None = None,
    pp: int | None = None,
    cp: int | None = None,
    dp: int | None = None,
    micro_batch: int | None = None,
    sharding: Sharding | None = None,
    recompute: Recompute | None = None,
    interleave: int | None = None,
    sequence_parallel: bool = True,
) -> Iterator[tuple[Layout, Job]]:
    """Every valid layout of `gpus` GPUs for `job` with the pinned knobs, each with its job (the
    global batch rounded to fit when `flexible_batch`)."""
    tps = [tp] if tp else TP_DEGREES
    cps = [cp] if cp else [c for c in CP_DEGREES if c == 1 or job.seq_len // c >= MIN_CP_TOKENS]
    mbs = [micro_batch] if micro_batch else MICRO_BATCHES
    # Unpinned, two options are left out because another always beats them in this model: DDP
    # (ZeRO-1 moves the same bytes and holds less), and selective recompute under fused attention
    # (it keeps no scores to drop, so it only adds time).
    shardings = [sharding] if sharding else [s for s in SHARDINGS if s != "ddp"]
    recomputes = (
        [recompute]
        if recompute
        else [r for r in RECOMPUTE_MODES if not (r == "selective" and job.flash_attention)]
    )
    for t, c in itertools.product(tps, cps):
        if gpus % (t * c):
            continue
        pps = [pp] if pp else [p for p in divisors(gpus // (t * c)) if p <= min(MAX_PP, job.shape.layers)]
        for p in pps:
            if gpus % (t * c * p):
                continue
            d = gpus // (t * c * p)
            if dp and d != dp:
                continue
            vs = [interleave] if interleave else ([1] if p == 1 else INTERLEAVES)
            for mb, v in itertools.product(mbs, vs):
                if p * v > job.shape.layers:
                    continue
                laid_out = job
                if flexible_batch:
                    batch = rounded_batch(job.global_batch, d, mb, p if v > 1 else 1)
                    if batch is None:
                        continue
                    laid_out = dataclasses.replace(job, global_batch=batch)
                for sh, rc in itertools.product(shardings, recomputes):
                    layout = Layout(
                        tp=t,
                        pp=p,
                        cp=c,
                        dp=d,
                        micro_batch=mb,
                        sharding=sh,
                        recompute=rc,
                        interleave=v,
                        sequence_parallel=sequence_parallel,
                    )
                    if not layout.problems(laid_out):
                        yield layout, laid_out


def search(
    job: Job,
    gpus: int,
    gpu: GPU,
    calib: Calibration | None = None,
    *,
    top: int = 10,
    flexible_batch: bool = False,
    check_memory: bool = True,
    **pinned: object,
) -> list[Candidate]:
    """The `top` fastest layouts that fit in memory, fastest first (empty when none fits).

    `check_memory=False` keeps layouts the memory model rejects: for reproducing a run that is
    known to have fitted (with tricks the model leaves out, such as offloading to the CPU).
    """
    calib = calib or calibration(gpu.generation)
    found = []
    for layout, laid_out in layouts(job, gpus, flexible_batch=flexible_batch, **pinned):  # type: ignore[arg-type]
        # A search that chose full recompute recomputes just enough layers; pinned, it means all.
        if layout.recompute == "full" and check_memory and "recompute" not in pinned:
            layout = just_enough_recompute(laid_out, layout, gpu)
            if layout is None:
                continue
        memory = memory_per_gpu(laid_out, layout)
        if check_memory and not fits(memory, gpu.hbm_bytes):
            continue
        found.append(Candidate(layout, laid_out, memory, step_time(laid_out, layout, gpu, calib)))
    # Fastest first; among equals, the simpler layout (fewer stages and context ranks, less
    # recompute, less sharding).
    found.sort(
        key=lambda c: (
            -round(math.log(c.tokens_per_s), 4),  # within 0.01% counts as a tie
            c.layout.pp * c.layout.interleave * c.layout.cp,
            RECOMPUTE_MODES.index(c.layout.recompute),
            SHARDINGS.index(c.layout.sharding),
        )
    )
    return found[:top]
