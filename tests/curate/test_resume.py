"""Real processes: kill -9 mid-run and rerun gives the same bytes; ranks together give one run's corpus."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from roost.curate.pipeline import curate
from roost.workspace import Workspace
from tests.curate.handmade import chatter, small_config, store_posts

OUTPUTS = ("corpus", "shards", "tokenizer")


def outputs(ws: Workspace) -> dict[str, bytes]:
    """Every file curation publishes, by path relative to the home."""
    files = {}
    for name in OUTPUTS:
        for path in sorted((ws.home / name).rglob("*")):
            if path.is_file():
                files[str(path.relative_to(ws.home))] = path.read_bytes()
    return files


def prepared(home: Path) -> Workspace:
    ws = Workspace(home).ensure()
    small_config(ws, chunk_rows=250)
    store_posts(ws, chatter(5000, seed=21))
    return ws


def roost(home: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "roost", "--home", str(home), "curate", "--json", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: the kill takes its workers too
    )


def kill_when(process: subprocess.Popen, markers: Path, stage: str, count: int, timeout: float = 120) -> None:
    """SIGKILL the run (and its workers) once `count` tasks of `stage` are done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"the run ended before it could be killed in {stage}: {process.stderr.read().decode()}"
            )
        if markers.exists() and len(list(markers.glob(f"{stage}-*.json"))) >= count:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    pytest.fail(f"no {count} {stage} tasks done in {timeout} s")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """What an uninterrupted single-process run publishes."""
    ws = prepared(tmp_path_factory.mktemp("reference") / "home")
    curate(ws)
    return outputs(ws)


@pytest.mark.slow
def test_kill9_mid_run_then_rerun_gives_identical_bytes(tmp_path: Path, reference) -> None:
    ws = prepared(tmp_path / "home")
    markers = ws.corpus_dir / ".work" / "g0000" / "done"
    kill_when(roost(ws.home, "--workers", "2"), markers, "prepare", 3)
    kill_when(roost(ws.home, "--workers", "2"), markers, "finalize", 2)
    finished = roost(ws.home)
    assert finished.wait(timeout=300) == 0, finished.stderr.read().decode()
    assert outputs(ws) == reference
    again = roost(ws.home)
    assert again.wait(timeout=120) == 0
    assert b'"up_to_date": true' in again.stdout.read()
    assert outputs(ws) == reference


@pytest.mark.slow
def test_ranks_together_give_the_same_corpus_as_one_run(tmp_path: Path, reference) -> None:
    ws = prepared(tmp_path / "home")
    ranks = [roost(ws.home, "--rank", str(r), "--world-size", "2", "--wait-timeout", "300") for r in (0, 1)]
    for rank in ranks:
        assert rank.wait(timeout=300) == 0, rank.stderr.read().decode()
    assert outputs(ws) == reference


def test_global_stage_in_its_own_process_gives_the_same_bytes(tmp_path: Path, monkeypatch) -> None:
    """Big generations run the cluster stage in a fresh process (for memory); the result is the same."""
    import roost.curate.pipeline as pipeline

    inline = Workspace(tmp_path / "inline").ensure()
    apart = Workspace(tmp_path / "apart").ensure()
    for ws in (inline, apart):
        small_config(ws, chunk_rows=250)
        store_posts(ws, chatter(800, seed=22))
    curate(inline)
    monkeypatch.setattr(pipeline, "_ISOLATE_ROWS", 0)
    curate(apart)
    assert outputs(apart) == outputs(inline)
