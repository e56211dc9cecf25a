"""What a training run is: one msgspec struct, read from roost.toml's [train], a TOML/JSON file, or flags.

Every field has a default that trains the ~20M model on one CPU. The planner writes files of exactly
this shape (a TOML table `[train]` or a JSON object), and `roost train --config PATH` reads them.
`check` rejects a configuration that cannot run, with the reason, before any tensor is made.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path
from typing import Any, Literal

import msgspec

from roost.model.config import ModelConfig, preset
from roost.workspace import ConfigError

Schedule = Literal["cosine", "wsd", "constant"]


class TrainConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A training run. Sizes are in sequences (of `seq_len` tokens) unless named otherwise."""

    # -- what to train ------------------------------------------------------------------------
    preset: str = "20m"  # a roost.model preset: tiny, 20m, 125m, 1b, 8b, 70b, 405b
    model: dict[str, int | float | bool] = {}  # ModelConfig fields over the preset, e.g. {n_layers = 6}
    objective: Literal["pretrain", "sft"] = "pretrain"  # sft: conversation tuning on reply threads
    init_from: str = ""  # run name or directory whose latest weights start this run (sft needs one)
    shards: str = ""  # token shards directory; "" is the workspace's shards/
    corpus: str = ""  # sft's Parquet corpus directory; "" is the workspace's corpus/

    # -- batch: the global batch is the same at any world size, so a run resumes on more or fewer ranks
    seq_len: int = 256
    micro_batch: int = 8  # sequences per forward pass on one rank
    global_batch: int = 32  # sequences per optimizer step, all ranks together;
    # gradient accumulation steps = global_batch / (micro_batch × data-parallel ranks)

    # -- optimizer: AdamW, weight decay on matrices only (not norms), as nanoGPT and Llama do ------
    lr: float = 1e-3
    min_lr_ratio: float = 0.1  # the schedule ends at lr × this
    schedule: Schedule = "cosine"  # warmup then cosine; "wsd": warmup, stable, then linear decay
    warmup_steps: int = 100
    decay_fraction: float = 0.2  # wsd: the last fraction of max_steps spent decaying
    weight_decay: float = 0.1
    beta1: float = 0.9  # AdamW betas: Llama's 0.9, 0.95
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0  # max global gradient norm; 0 turns clipping off (the norm is still logged)
    max_steps: int = 1000
    time_budget_s: float = 0.0  # stop (with a checkpoint) after this many seconds; 0 = no limit

    # -- parallelism: dp_replicate × dp_shard × tp ranks; -1 for dp_shard takes whatever is left --
    dp_replicate: int = 1  # > 1 with dp_shard 1: DDP; with dp_shard > 1: HSDP
    dp_shard: int = -1  # FSDP2 degree
    tp: int = 1  # tensor parallel degree (DTensor), within a node
    activation_checkpoint: Literal["none", "full"] = "none"
    compile: bool = False  # torch.compile each block
    dtype: Literal["bfloat16", "float32"] = "bfloat16"  # compute dtype; weights and optimizer stay fp32

    # -- checkpoints, evaluation, logging ------------------------------------------------------------
    checkpoint_every: int = 200  # steps; the last step is always saved
    keep_checkpoints: int = 3  # the newest K complete checkpoints are kept; 0 saves none (benchmarks)
    async_checkpoint: bool = False  # write checkpoints in a background thread
    eval_every: int = 200  # steps; 0 turns evaluation off
    eval_sequences: int = 256  # validation sequences, all ranks together: the same set at any world size
    log_every: int = 10  # steps between progress lines when output is not a terminal
    seed: int = 1234
    on_nonfinite: Literal["stop", "skip"] = "stop"  # a NaN/inf loss or gradient norm stops the run
    max_skips: int = 10  # "skip": consecutive skipped steps before the run stops anyway

    @property
    def dp_degree(self) -> int:
        return self.dp_replicate * self.dp_shard

    @property
    def grad_accum(self) -> int:
        """Micro-batches per optimizer step on each rank (valid once the mesh is resolved)."""
        return self.global_batch // (self.micro_batch * self.dp_degree)

    def replace(self, **changes: Any) -> TrainConfig:
        return msgspec.structs.replace(self, **changes)


def load_config_file(path: Path) -> dict[str, Any]:
    """A config file's settings: TOML (top level or a [train] table) or JSON (an object)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        table = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: expected a table of settings")
    return table.get("train", table)


def merge(base: TrainConfig, changes: dict[str, Any], source: str) -> TrainConfig:
    """`base` with `changes` applied; `model` overrides merge key by key rather than replace."""
    settings = msgspec.to_builtins(base)
    for key, value in changes.items():
        if key == "model" and isinstance(value, dict):
            settings["model"] = {**settings["model"], **value}
        else:
            settings[key] = value
    try:
        return msgspec.convert(settings, TrainConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def parse_assignment(text: str) -> dict[str, Any]:
    """`--set key=value` (value in TOML syntax; bare words are strings); `model.x=v` nests."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    head, _, field = key.strip().partition(".")
    return {head: {field: value}} if field else {head: value}


def model_config(config: TrainConfig, vocab_size: int) -> ModelConfig:
    """The network's shape: the preset, the vocabulary of the tokenizer, then `model` overrides."""
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(config.model) - known)
    if unknown:
        raise ConfigError(f"unknown model field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    try:
        return preset(config.preset, **{"vocab_size": vocab_size, **config.model})
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"model: {exc}") from exc


def resolve_mesh(config: TrainConfig, world_size: int) -> TrainConfig:
    """Fill dp_shard = -1 from the world size and check that the degrees multiply to it."""
    for name in ("dp_replicate", "tp"):
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be at least 1")
    dp_shard = config.dp_shard
    if dp_shard == -1:
        rest = config.dp_replicate * config.tp
        if world_size % rest:
            raise ConfigError(
                f"dp_replicate {config.dp_replicate} × tp {config.tp} = {rest} does not divide the "
                f"{world_size} launched rank(s)"
            )
        dp_shard = world_size // rest
    if dp_shard < 1:
        raise ConfigError("dp_shard must be -1 (the rest) or at least 1")
    if config.dp_replicate * dp_shard * config.tp != world_size:
        raise ConfigError(
            f"dp_replicate {config.dp_replicate} × dp_shard {dp_shard} × tp {config.tp} "
            f"= {config.dp_replicate * dp_shard * config.tp} ranks, but {world_size} were launched"
        )
    return config.replace(dp_shard=dp_shard)


def check(config: TrainConfig, model: ModelConfig) -> None:
    """Everything that would fail later, said now (the mesh must already be resolved)."""
    positive = ("seq_len", "micro_batch", "global_batch", "max_steps", "checkpoint_every")
    for name in positive:
        if getattr(config, name) <= 0:
            raise ConfigError(f"{name} must be positive, got {getattr(config, name)}")
    if config.seq_len > model.max_seq_len:
        raise ConfigError(
            f"seq_len {config.seq_len} exceeds the model's max_seq_len {model.max_seq_len}; "
            f"set model.max_seq_len or a shorter seq_len"
        )
    if config.tp > 1:
        for what, count in (("query heads", model.n_heads), ("key/value heads", model.kv_heads)):
            if count % config.tp:
                raise ConfigError(f"tensor parallel degree {config.tp} does not divide {count} {what}")
        if model.hidden_dim % config.tp:
            raise ConfigError(
                f"tensor parallel degree {config.tp} does not divide ffn width {model.hidden_dim}"
            )
        if config.seq_len % config.tp:
            raise ConfigError(f"tensor parallel degree {config.tp} does not divide seq_len {config.seq_len}")
        if config.dp_replicate > 1 and config.dp_shard == 1:
            raise ConfigError("DDP (dp_replicate > 1, dp_shard 1) does not combine with tp; use dp_shard")
    per_pass = config.micro_batch * config.dp_degree
    if config.global_batch % per_pass:
        raise ConfigError(
            f"global_batch {config.global_batch} is not a multiple of micro_batch {config.micro_batch} "
            f"× {config.dp_degree} data-parallel ranks"
        )
    if config.keep_checkpoints < 0:
        raise ConfigError(f"keep_checkpoints must not be negative, got {config.keep_checkpoints}")
    if config.warmup_steps < 0:
        raise ConfigError(f"warmup_steps must not be negative, got {config.warmup_steps}")
    if not 0 < config.decay_fraction <= 1:
        raise ConfigError(f"decay_fraction {config.decay_fraction} must lie in (0, 1]")
