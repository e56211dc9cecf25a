"""The GPU benchmark script runs end to end (on the CPU, with its --tiny smoke shape)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_train.py"


@pytest.mark.slow
def test_gpu_script_smoke_run(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiny", "--no-compile", "--json", str(out)],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (row,) = json.loads(out.read_text())["results"]
    assert row["preset"] == "tiny" and row["tokens_per_s"] > 0 and 0 < row["mfu"] < 1
