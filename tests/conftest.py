"""Shared test fixtures: a fresh workspace, one torch thread, and where ../shared's data lives (tests
skip without it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from roost.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
FORMATS_DIR = SHARED_DATA / "formats"
REAL_POSTS = SHARED_DATA / "real_posts" / "posts.jsonl"
SCALE_CASES = SHARED_DATA / "scale_cases" / "dev_cases.json"


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """2 shared cores: one intra-op thread per process avoids threads spinning against each other."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """An empty workspace in a temporary directory."""
    return Workspace(tmp_path / "home").ensure()


def need(path: Path) -> Path:
    """Skip the calling test, with the reason, when shared data is not on this machine."""
    if not path.exists():
        pytest.skip(f"{path} is not here (it lives in ../shared, outside the repository)")
    return path
