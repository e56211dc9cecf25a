"""A run's directory, `runs/<name>/`: what lives where, and the record of what was trained.

config.json      the TrainConfig and the ModelConfig it resolved to (read back on resume,
                 by evaluation, export and serving)
tokenizer/       a copy of the tokenizer the run trained with, so the run stands alone
checkpoints/     step-NNNNNNNN/ DCP checkpoints; one is complete once its .metadata exists
metrics.jsonl    one JSON object per step (and per evaluation)
tensorboard/     TensorBoard event files
loss.png         the loss curve
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import msgspec

from roost.model.config import ModelConfig
from roost.train.config import TrainConfig
from roost.workspace import ConfigError


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def tokenizer_dir(self) -> Path:
        return self.path / "tokenizer"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / "tensorboard"

    @property
    def plot_path(self) -> Path:
        return self.path / "loss.png"

    def exists(self) -> bool:
        return self.config_path.exists()

    def write_config(self, train: TrainConfig, model: ModelConfig) -> None:
        record = {"train": msgspec.to_builtins(train), "model": dataclasses.asdict(model)}
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.config_path)

    def read_config(self) -> tuple[TrainConfig, ModelConfig]:
        if not self.exists():
            raise FileNotFoundError(f"{self.path} is not a training run (no config.json)")
        record = json.loads(self.config_path.read_text(encoding="utf-8"))
        try:
            return msgspec.convert(record["train"], TrainConfig), ModelConfig(**record["model"])
        except (msgspec.ValidationError, TypeError, KeyError) as exc:
            raise ConfigError(
                f"{self.config_path} does not describe a run this roost can read: {exc}"
            ) from exc


def find_run(runs_dir: Path, name_or_path: str | Path) -> RunDir:
    """A run by name (under the workspace's runs/) or by path; it must exist."""
    candidate = Path(name_or_path)
    run = RunDir(
        candidate if candidate.is_dir() and (candidate / "config.json").exists() else runs_dir / candidate
    )
    if not run.exists():
        raise FileNotFoundError(f"no run {str(name_or_path)!r} (looked in {runs_dir})")
    return run
