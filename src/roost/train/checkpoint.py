"""Checkpoints with torch.distributed.checkpoint (DCP): model, optimizer, schedule, data position
and RNG state in one directory per step, written by every rank in parallel, readable at any other
world size or layout (FSDP → DDP → one plain process), since DCP reshards on load.

A checkpoint is complete when DCP's `.metadata` file exists: DCP writes it last, to a temporary
name that it renames, so a process killed mid-save leaves a directory without one, which is
ignored and cleared. The newest `keep` complete checkpoints are kept.

`load_model(run_dir)` is what serving and export call: the network and its config from a run's
latest checkpoint, in one plain process.
"""

from __future__ import annotations

import re
import shutil
import warnings
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.checkpoint.stateful import Stateful

from roost.model.config import ModelConfig
from roost.model.llama import Llama
from roost.train.run import RunDir

_STEP_DIR = re.compile(r"^step-(\d{8})$")
# DCP warns on every save and load without a process group (also from async saves' threads); one
# plain process is a layout roost means to use.
warnings.filterwarnings("ignore", message="torch.distributed is disabled, unavailable or uninitialized")
METADATA = ".metadata"


def step_dir(directory: Path, step: int) -> Path:
    return Path(directory) / f"step-{step:08d}"


def complete_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """(step, path) of every complete checkpoint, oldest first."""
    if not Path(directory).is_dir():
        return []
    found = []
    for path in Path(directory).iterdir():
        match = _STEP_DIR.match(path.name)
        if match and (path / METADATA).exists():
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(directory: Path) -> tuple[int, Path] | None:
    found = complete_checkpoints(directory)
    return found[-1] if found else None


class ModelState(Stateful):
    """The model's parameters by their plain names, whatever wraps them (FSDP, DDP, TP, compile)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def state_dict(self) -> dict[str, Any]:
        return get_model_state_dict(self.model)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        set_model_state_dict(self.model, state)


class OptimizerState(Stateful):
    """AdamW's moments keyed by parameter name (not position), so they reshard like the model."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.model, self.optimizer = model, optimizer

    def state_dict(self) -> dict[str, Any]:
        return get_optimizer_state_dict(self.model, self.optimizer)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # The kernel choice (fused for plain tensors, foreach for DTensors) belongs to this run's
        # layout, not the saved one's.
        kernels = [(g["fused"], g["foreach"]) for g in self.optimizer.param_groups]
        set_optimizer_state_dict(self.model, self.optimizer, state)
        for group, (fused, foreach) in zip(self.optimizer.param_groups, kernels, strict=True):
            group["fused"], group["foreach"] = fused, foreach


class Progress(Stateful):
    """Step and token counters, and every rank's RNG state (gathered, so one value is saved)."""

    def __init__(self) -> None:
        self.step = 0
        self.tokens = 0
        self.skipped = 0

    def state_dict(self) -> dict[str, Any]:
        states = [_rng_state()]
        if dist.is_initialized():
            states = [None] * dist.get_world_size()
            dist.all_gather_object(states, _rng_state())
        return {"step": self.step, "tokens": self.tokens, "skipped": self.skipped, "rng": states}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step, self.tokens, self.skipped = int(state["step"]), int(state["tokens"]), int(state["skipped"])
        rank = dist.get_rank() if dist.is_initialized() else 0
        if rank < len(state["rng"]):
            _set_rng_state(state["rng"][rank])
        else:  # more ranks than saved: a fresh stream per new rank, still reproducible
            torch.manual_seed(self.step * 1_000_003 + rank)


def _rng_state() -> dict[str, bytes]:
    state = {"cpu": torch.get_rng_state().numpy().tobytes()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state().numpy().tobytes()
    return state


def _set_rng_state(state: dict[str, bytes]) -> None:
    torch.set_rng_state(torch.frombuffer(bytearray(state["cpu"]), dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(torch.frombuffer(bytearray(state["cuda"]), dtype=torch.uint8))


class Checkpointer:
    """Saves and finds a run's checkpoints; at most one asynchronous save is in flight."""

    def __init__(self, directory: Path, *, keep: int, async_save: bool = False) -> None:
        self.directory = Path(directory)
        self.keep = keep
        self.async_save = async_save
        self._pending: Future | None = None
        self._distributed = dist.is_initialized()
        self._rank0 = not self._distributed or dist.get_rank() == 0
        # Background saves talk over their own gloo group so they never interleave with the
        # training loop's collectives (torchtitan does the same).
        self._group = dist.new_group(backend="gloo") if async_save and self._distributed else None

    def latest(self) -> tuple[int, Path] | None:
        return latest_checkpoint(self.directory)

    def save(self, step: int, state: dict[str, Any]) -> Path:
        self.wait()
        path = step_dir(self.directory, step)
        if self._rank0:
            self.directory.mkdir(parents=True, exist_ok=True)
        if self.async_save:
            response = dcp.async_save(
                state, checkpoint_id=path, process_group=self._group, no_dist=not self._distributed
            )
            self._pending = getattr(response, "upload_completion", response)
        else:
            dcp.save(state, checkpoint_id=path, no_dist=not self._distributed)
            self._prune()
        return path

    def wait(self) -> None:
        """Block until the save in flight (if any) is on disk, then drop old checkpoints."""
        if self._pending is not None:
            self._pending.result()
            self._pending = None
            self._prune()

    def load(self, path: Path, state: dict[str, Any]) -> None:
        dcp.load(state, checkpoint_id=path, no_dist=not self._distributed)

    def clear_incomplete(self) -> None:
        """Remove what a killed save left behind (called before the run's first save)."""
        if self._rank0 and self.directory.is_dir():
            for path in self.directory.iterdir():
                if _STEP_DIR.match(path.name) and not (path / METADATA).exists():
                    shutil.rmtree(path, ignore_errors=True)
        if self._distributed:
            dist.barrier()

    def _prune(self) -> None:
        if not self._rank0:
            return
        for _, path in complete_checkpoints(self.directory)[: -self.keep]:
            shutil.rmtree(path, ignore_errors=True)


def has_training_state(path: Path) -> bool:
    """Whether a checkpoint holds optimizer state (a run's) or only weights (an import's)."""
    metadata = dcp.FileSystemReader(str(path)).read_metadata()
    return any(key.startswith("optimizer.") for key in metadata.state_dict_metadata)


def save_weights(model: nn.Module, path: Path) -> None:
    """A weights-only checkpoint from one plain process (what an imported model starts as)."""
    dcp.save({"model": model.state_dict()}, checkpoint_id=path, no_dist=True)


def load_model(
    run_dir: Path | str, step: int | None = None, device: str | torch.device = "cpu"
) -> tuple[Llama, ModelConfig]:
    """A run's model from its latest (or given) checkpoint, in eval mode, in one plain process:
    what serving, evaluation and export use. The tokenizer is in `RunDir(run_dir).tokenizer_dir`."""
    run = RunDir(Path(run_dir))
    _, model_config = run.read_config()
    found = complete_checkpoints(run.checkpoints_dir)
    if step is not None:
        found = [(s, p) for s, p in found if s == step]
    if not found:
        which = f"step {step}" if step is not None else "any step"
        raise FileNotFoundError(f"run {run.path} has no complete checkpoint at {which}")
    with torch.device("meta"):
        model = Llama(model_config)
    model.to_empty(device=device)
    state = {"model": model.state_dict()}  # DCP fills these tensors in place
    dcp.load(state, checkpoint_id=found[-1][1], no_dist=True)
    model.init_rope()
    return model.eval(), model_config


def load_weights(model: nn.Module, run_dir: Path | str) -> int:
    """Load only the model weights of a run's latest checkpoint into `model` (any layout);
    conversation tuning starts this way from a pretrained run. Returns the step loaded."""
    run = RunDir(Path(run_dir))
    found = latest_checkpoint(run.checkpoints_dir)
    if found is None:
        raise FileNotFoundError(f"run {run.path} has no complete checkpoint to start from")
    state = {"model": ModelState(model)}
    dcp.load(state, checkpoint_id=found[1], no_dist=not dist.is_initialized())
    return found[0]
