"""Shared test fixtures: a fresh workspace, and where ../shared's data lives (tests skip without it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from roost.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
FORMATS_DIR = SHARED_DATA / "formats"
REAL_POSTS = SHARED_DATA / "real_posts" / "posts.jsonl"
SCALE_CASES = SHARED_DATA / "scale_cases" / "dev_cases.json"


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """An empty workspace in a temporary directory."""
    return Workspace(tmp_path / "home").ensure()


def need(path: Path) -> Path:
    """Skip the calling test, with the reason, when shared data is not on this machine."""
    if not path.exists():
        pytest.skip(f"{path} is not here (it lives in ../shared, outside the repository)")
    return path
