"""Real multi-process training under torchrun (gloo, CPU): DDP, FSDP2, tensor parallel and
FSDP2 × TP follow the one-process loss curve; checkpoints resume on another world size and layout;
a SIGKILLed run resumes to exactly the losses of the run that was never interrupted.

Tolerance: fp32 on CPU, the layouts differ only in the order of floating-point reductions; over 8
steps of the tiny model the losses agree to ~5e-7 (measured), so they are held to 1e-5.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from roost.train.metrics import read_metrics
from roost.train.trainer import train
from roost.workspace import Workspace
from tests.train.conftest import tiny
from tests.train.fixtures import build_workspace

pytestmark = pytest.mark.slow

TOLERANCE = 1e-5
SETTINGS = [
    "preset=tiny",
    "seq_len=32",
    "micro_batch=2",
    "global_batch=8",
    "max_steps=8",
    "warmup_steps=2",
    "dtype=float32",
    "eval_every=4",
    "eval_sequences=16",
    "checkpoint_every=4",
    "log_every=100",
]
LAYOUTS = {
    "ddp": (2, ["dp_replicate=2", "dp_shard=1"]),
    "fsdp": (2, []),
    "tp": (2, ["tp=2"]),
    "fsdp_tp": (4, ["tp=2"]),
}


def launch(home: Path, run: str, nproc: int, settings: list[str], *, wait: bool = True):
    """`torchrun -m roost.train` (or plain `python -m roost.train` for nproc 0) as a subprocess."""
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"] if nproc else []
    args = [sys.executable, *launcher, "-m", "roost.train", "--home", str(home), "--name", run, "--json"]
    for setting in settings:
        args += ["--set", setting]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if not wait:
        return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=240)


def logged_lines(path: Path) -> int:
    """Whole lines in a metrics file that a live process is appending to."""
    return path.read_text().count("\n") if path.exists() else 0


def curve(ws: Workspace, run: str, key: str = "loss") -> list[float]:
    return [r[key] for r in read_metrics(ws.runs_dir / run / "metrics.jsonl") if key in r]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    ws = Workspace(tmp_path_factory.mktemp("dist") / "home").ensure()
    build_workspace(ws)
    train(ws, tiny(), "one_process")
    return ws


@pytest.fixture(scope="module")
def layouts(home: Workspace) -> dict[str, subprocess.CompletedProcess]:
    return {
        name: launch(home.home, name, nproc, SETTINGS + extra) for name, (nproc, extra) in LAYOUTS.items()
    }


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_parallel_layouts_follow_the_one_process_curve(home: Workspace, layouts: dict, layout: str) -> None:
    done = layouts[layout]
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["world_size"] == LAYOUTS[layout][0] and result["step"] == 8
    for key in ("loss", "val_loss"):
        reference = curve(home, "one_process", key)
        assert len(curve(home, layout, key)) == len(reference) > 0
        assert curve(home, layout, key) == pytest.approx(reference, abs=TOLERANCE)


def resume_copy(ws: Workspace, source: str, target: str, from_step: int) -> None:
    """`target`: run `source` as it stood at `from_step` (later checkpoints removed)."""
    shutil.copytree(ws.runs_dir / source, ws.runs_dir / target)
    for path in (ws.runs_dir / target / "checkpoints").iterdir():
        if int(path.name.split("-")[1]) > from_step:
            shutil.rmtree(path)


def test_fsdp_on_two_ranks_resumes_in_one_process(home: Workspace, layouts: dict) -> None:
    assert layouts["fsdp"].returncode == 0
    resume_copy(home, "fsdp", "fsdp_then_one", from_step=4)
    result = train(home, tiny(), "fsdp_then_one")  # plain process: no process group, no wrappers
    assert result.world_size == 1 and result.step == 8
    resumed = curve(home, "fsdp_then_one")
    assert resumed[:4] == curve(home, "fsdp")[:4]  # the log up to the checkpoint is kept as it was
    assert resumed == pytest.approx(curve(home, "fsdp"), abs=TOLERANCE)
    assert resumed == pytest.approx(curve(home, "one_process"), abs=TOLERANCE)


def test_fsdp_tp_on_four_ranks_resumes_as_ddp_on_two(home: Workspace, layouts: dict) -> None:
    assert layouts["fsdp_tp"].returncode == 0
    resume_copy(home, "fsdp_tp", "fsdp_tp_then_ddp", from_step=4)
    done = launch(home.home, "fsdp_tp_then_ddp", 2, ["tp=1", "dp_replicate=2", "dp_shard=1"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert curve(home, "fsdp_tp_then_ddp") == pytest.approx(curve(home, "one_process"), abs=TOLERANCE)


def test_kill_9_then_resume_repeats_the_uninterrupted_losses(home: Workspace) -> None:
    changes = {"max_steps": 30, "checkpoint_every": 3, "eval_every": 0, "async_checkpoint": True}
    train(home, tiny(**changes), "uninterrupted")  # the same code in this process, one thread too
    settings = [*SETTINGS, *(f"{k}={str(v).lower()}" for k, v in changes.items())]
    metrics = home.runs_dir / "killed" / "metrics.jsonl"
    process = launch(home.home, "killed", 0, settings, wait=False)
    deadline = time.monotonic() + 120
    while logged_lines(metrics) < 8 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    logged = logged_lines(metrics)
    assert 8 <= logged < 30
    done = launch(home.home, "killed", 0, settings)
    assert done.returncode == 0, done.stderr[-3000:]
    assert curve(home, "killed") == curve(home, "uninterrupted")  # bitwise, fp32 on CPU
    print(f"killed after {logged} logged steps; resumed to step 30 with identical losses")


def test_a_bad_layout_fails_on_every_rank_before_compute(home: Workspace) -> None:
    done = launch(home.home, "bad_tp", 2, [*SETTINGS, "tp=2", "model.n_kv_heads=1"])
    assert done.returncode != 0
    assert "tensor parallel degree 2 does not divide 1 key/value heads" in done.stderr
    assert not (home.runs_dir / "bad_tp").exists()
