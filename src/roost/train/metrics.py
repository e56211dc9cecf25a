"""Training figures: tokens/s, model FLOPs utilisation (MFU), memory and gradient norm, written as
JSONL and TensorBoard events, drawn as a loss-curve PNG, and shown live in a progress bar.

MFU is the model's FLOPs (roost.model.config's convention: 6 per matmul parameter per token plus
attention over the full square, as PaLM and torchtitan count) divided by the devices' peak. GPU peaks
are the vendors' dense bf16 tensor-core figures (no sparsity); a CPU's peak is measured once, as the
best rate of a large matmul in the training dtype, since no table knows the machine's cores and clocks.
"""

from __future__ import annotations

import functools
import json
import math
import os
import resource
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

# Dense bf16 peak FLOP/s per GPU, from NVIDIA's datasheets. Longer names first: "H100 PCIe" must
# win over "H100" (the SXM part).
PEAK_BF16_FLOPS: dict[str, float] = {
    "H100 PCIe": 756e12,
    "H100 NVL": 835e12,
    "H200 NVL": 835e12,
    "A100": 312e12,
    "H100": 989e12,
    "H200": 989e12,
    "B200": 2250e12,
}


def gpu_peak_flops(device_name: str) -> float | None:
    """The table's peak for a CUDA device name such as 'NVIDIA H100 80GB HBM3'; None if unknown."""
    for key in sorted(PEAK_BF16_FLOPS, key=len, reverse=True):
        if key in device_name:
            return PEAK_BF16_FLOPS[key]
    return None


@functools.cache
def cpu_peak_flops(dtype: torch.dtype = torch.bfloat16, size: int = 1024, repeats: int = 10) -> float:
    """This process's measured matmul rate in `dtype` (bf16 runs on AMX tiles where the CPU has
    them), best of `repeats`, with the threads torch uses."""
    a = torch.randn(size, size, dtype=dtype)
    b = torch.randn(size, size, dtype=dtype)
    a @ b  # warm the kernels up
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def peak_flops(device: torch.device, dtype: torch.dtype) -> tuple[float, str]:
    """Peak FLOP/s of one device and where the figure came from."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        peak = gpu_peak_flops(name)
        if peak is None:
            return math.nan, f"{name} (not in the peak table: MFU not reported)"
        return peak, f"{name} (datasheet)"
    return cpu_peak_flops(dtype), f"CPU, measured {str(dtype).removeprefix('torch.')} matmul"


def memory_gib(device: torch.device) -> float:
    """Peak memory: allocated GPU memory, or the process's peak resident set on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


class MetricsLog:
    """The run's metrics.jsonl and TensorBoard events (rank 0 only). On resume, records after the
    resumed step are dropped from both, so the files read as one uninterrupted run."""

    def __init__(self, jsonl: Path, tensorboard_dir: Path, resume_step: int) -> None:
        self.jsonl = Path(jsonl)
        self.jsonl.parent.mkdir(parents=True, exist_ok=True)
        kept = [r for r in read_metrics(self.jsonl) if r["step"] <= resume_step]
        tmp = self.jsonl.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        os.replace(tmp, self.jsonl)
        self._file = open(self.jsonl, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        from torch.utils.tensorboard import SummaryWriter  # slow import, only where used

        self._tb = SummaryWriter(str(tensorboard_dir), purge_step=resume_step + 1)

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()  # a killed run keeps every line it logged
        for key, value in record.items():
            if key != "step" and isinstance(value, int | float) and not isinstance(value, bool):
                self._tb.add_scalar(key, value, record["step"])

    def close(self) -> None:
        self._file.close()
        self._tb.close()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plot_loss(metrics_path: Path, out: Path, title: str = "") -> None:
    """Training loss (and validation loss where evaluated) against step, as a PNG."""
    from matplotlib.figure import Figure  # no pyplot: no global backend, no display needed

    records = read_metrics(metrics_path)
    train = [(r["step"], r["loss"]) for r in records if "loss" in r]
    val = [(r["step"], r["val_loss"]) for r in records if "val_loss" in r]
    figure = Figure(figsize=(7, 4), dpi=100)
    axes = figure.add_subplot()
    if train:
        axes.plot(*zip(*train, strict=True), label="train loss", linewidth=1)
    if val:
        axes.plot(*zip(*val, strict=True), "o-", label="validation loss", markersize=3)
    axes.set_xlabel("step")
    axes.set_ylabel("loss (nats/token)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    tmp = out.with_suffix(".tmp.png")
    figure.savefig(tmp)
    os.replace(tmp, out)


class LiveProgress:
    """A rich progress bar with the latest figures on a terminal; a line every `every` steps when
    output goes to a file or a pipe."""

    def __init__(self, total: int, start: int, every: int, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.every = max(1, every)
        self.total = total
        self._bar: Progress | None = None
        if self.console.is_terminal:
            self._bar = Progress(
                TextColumn("[bold]step {task.completed}/{task.total}"),
                BarColumn(),
                TextColumn("{task.fields[figures]}"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._task = self._bar.add_task("train", total=total, completed=start, figures="")
            self._bar.start()

    def update(self, step: int, record: dict[str, Any]) -> None:
        figures = (
            f"loss {record['loss']:.4f}  {record['tokens_per_s']:,.0f} tok/s  "
            f"MFU {record['mfu']:.1%}  |g| {record['grad_norm']:.3f}  {record['memory_gib']:.2f} GiB"
        )
        if self._bar is not None:
            self._bar.update(self._task, completed=step, figures=figures)
        elif step % self.every == 0 or step == self.total:
            self.console.print(f"step {step}/{self.total}  {figures}", highlight=False)

    def note(self, text: str) -> None:
        self.console.print(text, highlight=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
