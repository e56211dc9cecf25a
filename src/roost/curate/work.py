"""Where a curation run keeps its work: the plan, each task's outputs and done-markers, the state.

A run processes one *generation*: the raw-store rows added since the last committed one, cut into
fixed chunks of rowids. Everything a generation produces before it is committed lives in
`corpus/.work/gNNNN/`; a task's outputs are written under temporary names (carrying the process id,
so an orphaned worker and its replacement never write the same file) and renamed into place, then its
done-marker is written the same way. A rerun skips every task whose marker exists, and redoes the
others from their inputs, which have not changed: so a run killed at any point and rerun gives the
same bytes as a run never killed. `corpus/.state.json` records the last committed generation.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from roost.curate.config import CurateConfig
from roost.workspace import Workspace

STATE_NAME = ".state.json"


class State(msgspec.Struct):
    """What is committed: generations 0..generation, rows up to `upto_rowid`, `parts` corpus parts."""

    generation: int = -1
    upto_rowid: int = 0
    parts: int = 0


class Plan(msgspec.Struct):
    """One generation's work, fixed when it starts (so every rank and every rerun agrees on it)."""

    generation: int
    after_rowid: int
    upto_rowid: int
    chunks: int
    part_base: int
    config: CurateConfig

    def chunk_range(self, chunk: int) -> tuple[int, int]:
        """Rowids (after, upto] that chunk `chunk` covers."""
        size = self.config.chunk_rows
        start = self.after_rowid + chunk * size
        return start, min(start + size, self.upto_rowid)


def tmp_path(path: Path) -> Path:
    """A temporary name beside `path`, private to this process."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def publish(tmp: Path, path: Path) -> None:
    """fsync `tmp` and rename it to `path` (atomic: readers see the old file or the new one)."""
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    tmp = tmp_path(path)
    tmp.write_bytes(data)
    publish(tmp, path)


def write_json_atomic(path: Path, data: Any) -> None:
    """JSON with sorted keys (equal data, equal bytes), published atomically."""
    write_bytes_atomic(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def save_npy_atomic(path: Path, array: np.ndarray) -> None:
    tmp = tmp_path(path)
    with open(tmp, "wb") as handle:
        np.save(handle, array)
    publish(tmp, path)


def read_state(corpus_dir: Path) -> State:
    path = corpus_dir / STATE_NAME
    if not path.exists():
        return State()
    return msgspec.json.decode(path.read_bytes(), type=State)


def write_state(corpus_dir: Path, state: State) -> None:
    write_bytes_atomic(corpus_dir / STATE_NAME, msgspec.json.encode(state))


class WorkDir:
    """Paths of one generation's work, and its done-markers."""

    def __init__(self, ws: Workspace, generation: int) -> None:
        self.ws = ws
        self.generation = generation
        self.root = ws.corpus_dir / ".work" / f"g{generation:04d}"

    @property
    def plan_path(self) -> Path:
        return self.root / "plan.json"

    def path(self, stage: str, name: str) -> Path:
        directory = self.root / stage
        directory.mkdir(parents=True, exist_ok=True)
        return directory / name

    def marker(self, stage: str, task: int) -> Path:
        return self.root / "done" / f"{stage}-{task:05d}.json"

    def is_done(self, stage: str, task: int) -> bool:
        return self.marker(stage, task).exists()

    def mark_done(self, stage: str, task: int, stats: dict[str, Any]) -> None:
        path = self.marker(stage, task)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, stats)

    def done_stats(self, stage: str, task: int) -> dict[str, Any]:
        return json.loads(self.marker(stage, task).read_text(encoding="utf-8"))

    def read_plan(self) -> Plan | None:
        if not self.plan_path.exists():
            return None
        return msgspec.json.decode(self.plan_path.read_bytes(), type=Plan)

    def create_plan(self, plan: Plan) -> Plan:
        """Publish `plan` unless another rank already did; return whichever plan won."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = tmp_path(self.plan_path)
        tmp.write_bytes(msgspec.json.encode(plan))
        try:
            os.link(tmp, self.plan_path)  # fails if it exists: the first plan wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        winner = self.read_plan()
        assert winner is not None
        return winner

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def pending_generation(ws: Workspace) -> int | None:
    """The generation whose work is started but not committed, if any."""
    state = read_state(ws.corpus_dir)
    candidate = WorkDir(ws, state.generation + 1)
    return candidate.generation if candidate.plan_path.exists() else None
