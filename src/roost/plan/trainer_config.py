"""The plan as `roost train` can run it, and the settings file that tells it to.

roost's trainer shards with FSDP2 (or replicates with DDP when there is no tensor parallelism),
splits layers with tensor parallelism, and checkpoints activations fully or not at all; it has no
pipeline or context parallelism. `trainer_layout` is the fastest layout within those limits;
`train_settings` turns it into `roost.train.config.TrainConfig` fields, and `write_train_config`
writes them as a TOML `[train]` table or a JSON object, which `roost train --config PATH` reads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from roost.model.config import PRESETS, ModelConfig
from roost.plan.calibration import Calibration
from roost.plan.hardware import GPU
from roost.plan.job import Job
from roost.plan.layout import Candidate, search
from roost.train.config import TrainConfig
from roost.workspace import config_defaults_toml

# The model fields a custom-sized model sets over its base preset.
SHAPE_FIELDS = (
    "vocab_size",
    "dim",
    "n_layers",
    "n_heads",
    "n_kv_heads",
    "ffn_dim",
    "max_seq_len",
    "rope_theta",
)


def trainer_layout(job: Job, gpus: int, gpu: GPU, calib: Calibration) -> Candidate | None:
    """The fastest layout roost's trainer runs: FSDP2 (+ TP), or DDP without TP; no pipeline."""
    found: list[Candidate] = []
    for recompute in ("none", "full"):
        common = dict(pp=1, cp=1, interleave=1, recompute=recompute, flexible_batch=True, top=1)
        found += search(job, gpus, gpu, calib, sharding="zero3", **common)
        found += search(job, gpus, gpu, calib, sharding="ddp", tp=1, **common)
    return max(found, key=lambda c: c.tokens_per_s, default=None)


def model_settings(name: str, model: ModelConfig) -> dict[str, Any]:
    """`preset` and `model` fields: the preset by name, or a base preset with the shape overridden."""
    if name in PRESETS and PRESETS[name].replace(max_seq_len=model.max_seq_len) == model:
        overrides = {} if PRESETS[name] == model else {"max_seq_len": model.max_seq_len}
        return {"preset": name, "model": overrides}
    fields = {field: getattr(model, field) for field in SHAPE_FIELDS}
    fields["n_kv_heads"] = model.kv_heads
    fields["ffn_dim"] = model.hidden_dim
    return {"preset": "8b", "model": fields}


def train_settings(
    model_name: str, model: ModelConfig, candidate: Candidate, tokens: float, checkpoint_interval_s: float
) -> dict[str, Any]:
    """The [train] fields a plan decides; the rest keep the trainer's defaults or roost.toml's."""
    layout, job = candidate.layout, candidate.job
    if layout.pp > 1 or layout.cp > 1 or layout.sharding not in ("zero3", "ddp") or layout.recompute_layers:
        raise ValueError(f"roost train cannot run {layout.describe()}: no pipeline, context or ZeRO-1/2")
    steps = max(1, round(tokens / job.tokens_per_step))
    fsdp = layout.sharding == "zero3"
    settings: dict[str, Any] = {
        **model_settings(model_name, model),
        "seq_len": job.seq_len,
        "micro_batch": layout.micro_batch,
        "global_batch": job.global_batch,
        "dp_replicate": 1 if fsdp else layout.dp,
        "dp_shard": layout.dp if fsdp else 1,
        "tp": layout.tp,
        "activation_checkpoint": "full" if layout.recompute == "full" else "none",
        "max_steps": steps,
        "checkpoint_every": max(1, min(steps, round(checkpoint_interval_s / candidate.step.total))),
    }
    if steps < TrainConfig().warmup_steps:
        settings["warmup_steps"] = steps // 10
    msgspec.convert(settings, TrainConfig)  # the trainer's own schema checks every field
    return settings


def write_train_config(path: Path, settings: dict[str, Any]) -> Path:
    """JSON when `path` ends in .json, else TOML with a [train] table."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        path.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    else:
        header = "# Written by `roost plan --emit-config`; run with `roost train --config THIS_FILE`.\n"
        path.write_text(header + config_defaults_toml({"train": settings}), encoding="utf-8")
    return path
