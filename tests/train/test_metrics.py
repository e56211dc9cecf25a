"""Metrics: the peak table, the measured CPU peak, the log that reads as one run after a resume."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from roost.train.metrics import (
    MetricsLog,
    cpu_peak_flops,
    gpu_peak_flops,
    peak_flops,
    plot_loss,
    read_metrics,
)


def test_peak_table_picks_the_exact_part() -> None:
    assert gpu_peak_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert gpu_peak_flops("NVIDIA H100 PCIe") == 756e12
    assert gpu_peak_flops("NVIDIA H200") == 989e12
    assert gpu_peak_flops("NVIDIA A100-SXM4-80GB") == 312e12
    assert gpu_peak_flops("NVIDIA B200") == 2250e12
    assert gpu_peak_flops("Tesla T4") is None


def test_cpu_peak_is_measured_in_the_training_dtype() -> None:
    peak, source = peak_flops(torch.device("cpu"), torch.float32)
    assert peak == cpu_peak_flops(torch.float32) > 1e9  # cached: measured once per process
    assert "measured float32" in source


def test_resumed_log_drops_what_came_after_the_checkpoint(tmp_path) -> None:
    log = MetricsLog(tmp_path / "metrics.jsonl", tmp_path / "tb", resume_step=0)
    for step in range(1, 7):
        log.write({"step": step, "loss": 5.0 - step / 10})
    log.write({"step": 6, "val_loss": 4.5})
    log.close()
    resumed = MetricsLog(tmp_path / "metrics.jsonl", tmp_path / "tb", resume_step=4)
    resumed.write({"step": 5, "loss": 1.0})
    resumed.close()
    assert [(r["step"], r.get("loss")) for r in read_metrics(tmp_path / "metrics.jsonl")][-2:] == [
        (4, 4.6),
        (5, 1.0),
    ]
    plot_loss(tmp_path / "metrics.jsonl", tmp_path / "loss.png", title="t")
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_bf16_matmul_runs_on_amx_where_the_cpu_has_it() -> None:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if "amx_bf16" not in flags:
        pytest.skip("this CPU has no AMX-bf16")
    code = "import torch; a = torch.randn(64, 64, dtype=torch.bfloat16); a @ a"
    log = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "ONEDNN_VERBOSE": "1"},
        capture_output=True,
        text=True,
    ).stdout
    kernels = [line.split(",")[6] for line in log.splitlines() if ",exec," in line and ",matmul," in line]
    assert kernels and "amx" in kernels[0], kernels
