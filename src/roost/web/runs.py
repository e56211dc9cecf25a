"""The training runs of a workspace as the page shows them: what each run is, how far it got, its
speed (tokens/s, MFU) and its loss curves, read from the run's config.json and metrics.jsonl."""

from __future__ import annotations

import statistics
from pathlib import Path

import msgspec

from roost.train.metrics import read_metrics
from roost.train.run import RunDir
from roost.workspace import ConfigError

MAX_POINTS = 400  # a curve longer than this is thinned to about this many points (the last kept)


class Curve(msgspec.Struct):
    step: list[int]
    value: list[float]


class RunSummary(msgspec.Struct):
    name: str
    objective: str  # pretrain | sft
    preset: str
    parameters: int
    seq_len: int
    global_batch: int
    steps: int
    tokens: int
    loss: float | None  # the last step's
    val_loss: float | None  # the last evaluation's
    val_bpb: float | None
    tokens_per_s: float | None  # median over the steps after the first (which pays for warm-up)
    mfu: float | None  # median, as a fraction of the peak
    memory_gib: float | None  # the most any step reported
    train_seconds: float  # the steps' own time, summed
    updated: float  # metrics.jsonl's mtime (Unix seconds)
    loss_curve: Curve
    val_curve: Curve
    speed_curve: Curve  # tokens/s per step


def list_runs(runs_dir: Path) -> list[RunSummary]:
    """Every readable run in `runs_dir`, most recently updated first."""
    runs = []
    for path in sorted(runs_dir.glob("*")):
        run = RunDir(path)
        if not run.exists():
            continue
        try:
            runs.append(summarize(run))
        except (ConfigError, ValueError, KeyError):
            continue  # a run another roost version wrote, or one being written this instant
    return sorted(runs, key=lambda r: -r.updated)


def summarize(run: RunDir) -> RunSummary:
    train, model = run.read_config()
    records = read_metrics(run.metrics_path)
    steps = [r for r in records if "loss" in r and not r.get("skipped")]
    evals = [r for r in records if "val_loss" in r]
    # The first step pays for warm-up (and compilation); a resumed run's first steps do too, but
    # they are few, and the median passes over them.
    timed = steps[1:]
    speeds = [r["tokens_per_s"] for r in timed if r.get("tokens_per_s")]
    mfus = [r["mfu"] for r in timed if r.get("mfu") is not None]
    memory = [r["memory_gib"] for r in steps if r.get("memory_gib") is not None]
    last = steps[-1] if steps else {}
    return RunSummary(
        name=run.name,
        objective=train.objective,
        preset=train.preset,
        parameters=model.num_params(),
        seq_len=train.seq_len,
        global_batch=train.global_batch,
        steps=last.get("step", 0),
        tokens=last.get("tokens", 0),
        loss=last.get("loss"),
        val_loss=evals[-1]["val_loss"] if evals else None,
        val_bpb=evals[-1].get("val_bpb") if evals else None,
        tokens_per_s=round(statistics.median(speeds), 1) if speeds else None,
        mfu=round(statistics.median(mfus), 5) if mfus else None,
        memory_gib=max(memory) if memory else None,
        train_seconds=round(sum(r.get("seconds", 0.0) for r in steps), 1),
        updated=run.metrics_path.stat().st_mtime if run.metrics_path.exists() else 0.0,
        loss_curve=_curve(steps, "loss"),
        val_curve=_curve(evals, "val_loss"),
        speed_curve=_curve(timed, "tokens_per_s"),
    )


def _curve(records: list[dict], key: str) -> Curve:
    points = [(r["step"], float(r[key])) for r in records if r.get(key) is not None]
    stride = max(1, -(-len(points) // MAX_POINTS))
    kept = points[::stride]
    if points and kept[-1] != points[-1]:
        kept.append(points[-1])
    return Curve(step=[s for s, _ in kept], value=[round(v, 5) for _, v in kept])
