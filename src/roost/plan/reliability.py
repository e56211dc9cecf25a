"""Failures, checkpoints and goodput: how much of a long run's wall-clock time trains the model.

Interruptions scale with GPU-days, at a rate taken from a published run (Llama 3 405B by default).
Between checkpoints, the optimum interval is Young's (1974) √(2δM) or Daly's (2006) higher-order
estimate; with exponential failures, Daly's eq. 20 gives the expected wall-clock time, hence the
goodput (solve time / wall time):
  τ_opt = √(2δM)·(1 + ⅓·√(δ/2M) + (1/9)·(δ/2M)) − δ   for δ < 2M, else M
  T_w   = M·e^(R/M)·(e^((τ+δ)/M) − 1)·T_s/τ
(δ checkpoint time, M mean time between interruptions, R restart time, τ compute between dumps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class FailureRecord:
    """A published run's count of unexpected interruptions."""

    source: str
    interruptions: float
    days: float
    gpus: int

    @property
    def per_gpu_day(self) -> float:
        return self.interruptions / (self.days * self.gpus)


# "The Llama 3 Herd of Models" (Meta, 2024), §3.3.4 and Table 5: 419 unexpected interruptions in
# a 54-day snapshot of 405B pre-training on up to 16,384 H100s (78% hardware: GPUs, HBM3, hosts).
LLAMA3 = FailureRecord("Llama 3 405B pre-training, 16,384 H100 (Meta 2024, Table 5)", 419, 54, 16_384)
# OPT-175B logbook (Zhang et al. 2022; metaseq chronicles): about two node failures a day on the
# 124 eight-GPU A100 nodes of its 992-GPU cloud cluster. Four times Llama 3's rate per GPU-day.
OPT175B = FailureRecord("OPT-175B, 992 A100 (metaseq logbook: ~2 nodes down per day)", 2, 1, 992)
FAILURE_RECORDS = {"llama3": LLAMA3, "opt": OPT175B}

# Checkpoint defaults. Storage: Llama 3's Tectonic cluster sustained 2 TB/s (peak 7 TB/s) for
# checkpoints (Meta 2024, §3.3.1). Restart: rescheduling, NCCL set-up and loading at 10,000-GPU
# scale take minutes (Llama 3 and OPT report restarts in minutes to tens of minutes).
STORAGE_BYTES_PER_S = 2e12
RESTART_OVERHEAD_S = 10 * 60.0


def mtbf_seconds(gpus: int, per_gpu_day: float = LLAMA3.per_gpu_day) -> float:
    """Mean time between interruptions of a job on `gpus` GPUs."""
    return 86_400.0 / (gpus * per_gpu_day)


def young_interval(checkpoint_s: float, mtbf_s: float) -> float:
    return math.sqrt(2 * checkpoint_s * mtbf_s)


def daly_interval(checkpoint_s: float, mtbf_s: float) -> float:
    """Daly's higher-order optimum compute time between checkpoints."""
    if checkpoint_s >= 2 * mtbf_s:
        return mtbf_s
    x = checkpoint_s / (2 * mtbf_s)
    return math.sqrt(2 * checkpoint_s * mtbf_s) * (1 + math.sqrt(x) / 3 + x / 9) - checkpoint_s


def expected_wall_seconds(
    solve_s: float, interval_s: float, checkpoint_s: float, restart_s: float, mtbf_s: float
) -> float:
    """Daly's expected wall-clock time to finish `solve_s` of work under exponential failures."""
    m = mtbf_s
    return (
        m * math.exp(restart_s / m) * (math.exp((interval_s + checkpoint_s) / m) - 1) * solve_s / interval_s
    )


@dataclass(frozen=True)
class Reliability:
    interruptions_per_day: float
    mtbf_s: float
    checkpoint_bytes: float
    checkpoint_s: float
    restart_s: float
    interval_s: float  # compute time between checkpoints (Daly)
    goodput: float  # share of wall-clock time that advances training
    expected_interruptions: float  # over the whole run


def reliability(
    gpus: int,
    checkpoint_bytes: float,
    solve_s: float,
    *,
    per_gpu_day: float = LLAMA3.per_gpu_day,
    storage_bytes_per_s: float = STORAGE_BYTES_PER_S,
    restart_overhead_s: float = RESTART_OVERHEAD_S,
) -> Reliability:
    """Checkpoint cadence and goodput for a run needing `solve_s` seconds of failure-free training.

    Writing is synchronous at the storage's aggregate bandwidth (asynchronous checkpointing hides
    most of it, so this is the cautious end); a restart reloads the checkpoint after the overhead.
    """
    mtbf = mtbf_seconds(gpus, per_gpu_day)
    checkpoint_s = checkpoint_bytes / storage_bytes_per_s
    restart_s = restart_overhead_s + checkpoint_bytes / storage_bytes_per_s
    interval = daly_interval(checkpoint_s, mtbf)
    wall = expected_wall_seconds(solve_s, interval, checkpoint_s, restart_s, mtbf)
    return Reliability(
        interruptions_per_day=86_400.0 / mtbf,
        mtbf_s=mtbf,
        checkpoint_bytes=checkpoint_bytes,
        checkpoint_s=checkpoint_s,
        restart_s=restart_s,
        interval_s=interval,
        goodput=solve_s / wall,
        expected_interruptions=wall / mtbf,
    )
