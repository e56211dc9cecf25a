"""Preparing a run: its configuration (roost.toml or the run's own, a config file, flags) and its
data (token shards, or reply threads for tuning), with every missing piece reported as a
ConfigError before the trainer makes a tensor."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roost.curate.shards import ShardSet
from roost.tokenizer import PAD, load_tokenizer, special_id, tokenizer_hash
from roost.train.config import ConfigError, TrainConfig, load_config_file, merge, parse_assignment
from roost.train.data import Source, TokenWindows
from roost.train.run import RunDir, find_run
from roost.train.sft import ChatExamples, read_threads, split_threads
from roost.workspace import Workspace

SFT_TRAIN, SFT_VAL = "sft_examples.npz", "sft_val_examples.npz"  # a tuning run's encoded examples


def prepare_config(
    ws: Workspace,
    run_name: str,
    *,
    config_file: Path | None = None,
    preset: str | None = None,
    assignments: Sequence[str] = (),
    max_steps: int | None = None,
    time_budget_s: float | None = None,
    sft_from: str | None = None,
) -> TrainConfig:
    """This invocation's config. A run that exists starts from its saved config (so a bare
    `--run NAME` resumes it as it was); a new one from roost.toml's [train]. Then, in order: the
    config file, the preset, each `--set key=value`, and the flags."""
    run = RunDir(ws.runs_dir / run_name)
    config = run.read_config()[0] if run.exists() else ws.config("train", TrainConfig)
    if config_file is not None:
        config = merge(config, load_config_file(config_file), str(config_file))
    changes: dict[str, Any] = {}
    if preset is not None:
        changes["preset"] = preset
    for text in assignments:
        for key, value in parse_assignment(text).items():
            if key == "model" and isinstance(value, dict):
                changes.setdefault("model", {}).update(value)
            else:
                changes[key] = value
    if max_steps is not None:
        changes["max_steps"] = max_steps
    if time_budget_s is not None:
        changes["time_budget_s"] = time_budget_s
    if sft_from is not None:
        changes.update(objective="sft", init_from=sft_from)
    return merge(config, changes, "command line")


@dataclass
class RunData:
    """What a run trains and validates on, and the tokenizer that made it."""

    train: Source
    val: Source | None
    tokenizer_dir: Path
    vocab_size: int
    note: str


def open_data(ws: Workspace, config: TrainConfig, run: RunDir) -> RunData:
    """The training and validation sources; every missing piece is a ConfigError, before compute."""
    shards_dir = Path(config.shards) if config.shards else ws.shards_dir
    if config.objective == "sft":
        return _chat_data(ws, config, run, shards_dir)
    return _token_data(ws, config, run, shards_dir)


def _chat_data(ws: Workspace, config: TrainConfig, run: RunDir, shards_dir: Path) -> RunData:
    """Reply threads from the corpus, encoded once per run (and reread on resume, so a resumed
    run tunes on the same examples even if the corpus has grown)."""
    tokenizer_dir = find_run(ws.runs_dir, config.init_from).tokenizer_dir
    tokenizer = load_tokenizer(tokenizer_dir)
    pad = special_id(tokenizer, PAD)
    train_cache, val_cache = run.path / SFT_TRAIN, run.path / SFT_VAL
    if train_cache.exists():
        train = ChatExamples.load(train_cache, config.seq_len, pad)
        val = ChatExamples.load(val_cache, config.seq_len, pad) if val_cache.exists() else None
    else:
        corpus = Path(config.corpus) if config.corpus else ws.corpus_dir
        # Posts deleted after curation are tombstoned in the shards' directory; skip them here too.
        tombstones = ShardSet.open(shards_dir).tombstones() if (shards_dir / "index.json").exists() else set()
        try:
            threads = read_threads(corpus, exclude=tombstones)
            train_threads, val_threads = split_threads(threads)
            train = ChatExamples.build(train_threads or threads, tokenizer, config.seq_len)
            val = ChatExamples.build(val_threads, tokenizer, config.seq_len) if val_threads else None
        except (FileNotFoundError, ValueError) as exc:
            raise ConfigError(f"conversation tuning data from {corpus}: {exc}") from exc
    note = f"{len(train):,} reply examples for conversation tuning"
    return RunData(train, val, tokenizer_dir, tokenizer.get_vocab_size(), note)


def _token_data(ws: Workspace, config: TrainConfig, run: RunDir, shards_dir: Path) -> RunData:
    try:
        shards = ShardSet.open(shards_dir)
        train_shards = shards.shards("train")
    except (FileNotFoundError, KeyError) as exc:
        raise ConfigError(str(exc).strip("'\"")) from exc
    if not train_shards:
        raise ConfigError(f"no training shards listed in {shards_dir / 'index.json'}")
    missing = [s.name for s in train_shards if not (shards_dir / f"{s.name}.bin").exists()]
    if missing:
        raise ConfigError(
            f"shard file(s) listed in index.json are missing from {shards_dir}: {', '.join(missing)}"
        )
    tokenizer_dir = run.tokenizer_dir if run.tokenizer_dir.exists() else ws.tokenizer_dir
    if not (tokenizer_dir / "tokenizer.json").exists():
        raise ConfigError(f"no tokenizer at {tokenizer_dir}; run `roost curate` first")
    expected = shards.index.get("tokenizer_sha256")
    if expected and tokenizer_hash(tokenizer_dir) != expected:
        raise ConfigError(
            f"the shards in {shards_dir} were tokenized with another tokenizer than {tokenizer_dir}"
        )
    tombstones = shards.tombstones()
    train = TokenWindows(train_shards, config.seq_len, tombstones)
    if len(train) == 0:
        raise ConfigError(
            f"the training shards hold {train.tokens} tokens: not one sequence of {config.seq_len}"
        )
    val_shards = shards.shards("val") if "val" in shards.index["splits"] else []
    val = TokenWindows(val_shards, config.seq_len, tombstones) if val_shards else None
    note = f"{train.tokens:,} training tokens in {len(train_shards)} shard(s), {len(tombstones)} tombstone(s)"
    return RunData(
        train, val if val is not None and len(val) else None, tokenizer_dir, shards.vocab_size, note
    )
