"""Fixtures for training tests: a workspace with a tokenizer and token shards, and a tiny config."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from roost.train.config import TrainConfig
from roost.workspace import Workspace
from tests.train.fixtures import build_workspace


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: the CI box's two cores are shared, and with two threads spinning on
    every tiny op a contended machine runs these small models several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def data_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = Workspace(tmp_path_factory.mktemp("data") / "home").ensure()
    build_workspace(ws)
    return ws.home


@pytest.fixture
def train_ws(data_home: Path, tmp_path: Path) -> Workspace:
    """A fresh workspace holding copies of the session's tokenizer and shards."""
    ws = Workspace(tmp_path / "home").ensure()
    shutil.copytree(data_home / "tokenizer", ws.tokenizer_dir)
    shutil.copytree(data_home / "shards", ws.shards_dir)
    return ws


def tiny(**changes: object) -> TrainConfig:
    """The tiny model for a few fp32 steps: small enough for a 2-core CI box."""
    settings = dict(
        preset="tiny",
        seq_len=32,
        micro_batch=2,
        global_batch=8,
        max_steps=8,
        warmup_steps=2,
        dtype="float32",
        eval_every=4,
        eval_sequences=16,
        checkpoint_every=4,
        log_every=100,
    )
    return TrainConfig(**{**settings, **changes})
