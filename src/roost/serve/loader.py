"""What `roost serve` serves: a training run (its latest checkpoint) or a Hugging Face export folder,
found by name in the workspace or by path, moved to the serving device and dtype."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer

from roost.model.llama import Llama
from roost.tokenizer import load_tokenizer
from roost.workspace import Workspace

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class ServedModel:
    model: Llama
    tokenizer: Tokenizer
    name: str  # the run's or export's directory name: the default model id
    path: Path


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return _DTYPES[dtype]


def is_export(path: Path) -> bool:
    """An HF folder has a config.json with a model_type; a run's config.json has train and model."""
    config = path / "config.json"
    return config.exists() and "model_type" in json.loads(config.read_text(encoding="utf-8"))


def find_source(ws: Workspace, source: str) -> tuple[str, Path]:
    """("run" | "export", directory) for a run name, an export name, or a path; "" is the run with
    the newest checkpoint."""
    from roost.train.checkpoint import latest_checkpoint
    from roost.train.run import RunDir

    if not source:
        runs = [RunDir(p) for p in sorted(ws.runs_dir.glob("*")) if (p / "config.json").exists()]
        dated = [
            (latest[1].stat().st_mtime, run.path)
            for run in runs
            if (latest := latest_checkpoint(run.checkpoints_dir))
        ]
        if not dated:
            raise FileNotFoundError(
                f"no trained run in {ws.runs_dir}: train one (`roost train`) or name a run or export to serve"
            )
        return "run", max(dated)[1]
    for candidate in (Path(source).expanduser(), ws.runs_dir / source, ws.export_dir / source):
        if (candidate / "config.json").exists():
            return ("export" if is_export(candidate) else "run"), candidate
    raise FileNotFoundError(
        f"no run or export {source!r}: looked for a directory of that name, "
        f"in {ws.runs_dir} and in {ws.export_dir}"
    )


def load_served_model(
    ws: Workspace, source: str = "", device: str = "auto", dtype: str = "auto"
) -> ServedModel:
    """The model and tokenizer to serve, on `device` in `dtype` ("auto": cuda in bfloat16 when there
    is a GPU, else cpu in float32)."""
    from roost.export.hf import load_hf
    from roost.train.checkpoint import load_model
    from roost.train.run import RunDir

    kind, path = find_source(ws, source)
    target = resolve_device(device)
    if kind == "export":
        model, _ = load_hf(path, device=target)
        tokenizer = load_tokenizer(path)
    else:
        model, _ = load_model(path, device=target)
        tokenizer = load_tokenizer(RunDir(path).tokenizer_dir)
    model = model.to(dtype=resolve_dtype(dtype, target))
    model.init_rope()  # rotary tables stay float32 whatever the weights' dtype
    return ServedModel(model.eval(), tokenizer, path.name, path)
