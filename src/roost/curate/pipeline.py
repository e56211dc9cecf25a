"""The curation runner: a generation's stages, spread over ranks and worker processes, resumable.

A run plans one generation (the raw rows added since the last commit, cut into chunks of rowids),
then runs its stages in order: prepare (per chunk), buckets (per band), cluster (once), finalize
(per chunk), tokenizer (once, only if there is none), tokenize (per chunk), commit (once). Task t of
a stage belongs to rank t % world_size, so a Slurm array, torchrun or Ray job runs `roost curate
--rank R --world-size W` once per rank and the ranks meet at each stage's end by waiting for the
done-markers; within a rank, `workers` processes share its tasks. Every task's output depends only
on its inputs, so how the work was spread, or where a killed run stopped, does not change a byte of
the result. After the commit, deletes that reached posts already curated become tombstones.
"""

from __future__ import annotations

import ctypes
import math
import os
import resource
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

import msgspec
import pyarrow as pa

from roost.curate.clusters import cluster_generation
from roost.curate.commit import (
    apply_tombstones,
    commit_generation,
    ensure_tokenizer,
    finish_generation,
    tokenize_chunk,
)
from roost.curate.config import CurateConfig
from roost.curate.corpus import read_manifest
from roost.curate.stages import bucket_band, finalize_chunk, prepare_chunk
from roost.curate.work import Plan, WorkDir, read_state
from roost.rawstore import RawStore
from roost.workspace import Workspace

Progress = Callable[[str, int, int], None]
#: A generation of more raw rows than this runs its global (cluster) stage in a process of its own.
_ISOLATE_ROWS = 500_000


@dataclass(frozen=True)
class Stage:
    name: str
    tasks: Callable[[Plan], int]
    run: Callable[[WorkDir, Plan, int], dict[str, Any]]


STAGES = (
    Stage("prepare", lambda plan: plan.chunks, prepare_chunk),
    Stage("buckets", lambda plan: plan.config.dedup.bands + 2, bucket_band),
    Stage("cluster", lambda plan: 1, lambda wd, plan, _: cluster_generation(wd, plan)),
    Stage("finalize", lambda plan: plan.chunks, finalize_chunk),
    Stage("tokenizer", lambda plan: 1, lambda wd, plan, _: ensure_tokenizer(wd, plan)),
    Stage("tokenize", lambda plan: plan.chunks, tokenize_chunk),
    Stage("commit", lambda plan: 1, lambda wd, plan, _: commit_generation(wd, plan)),
)
_BY_NAME = {stage.name: stage for stage in STAGES}


class CurateResult(msgspec.Struct):
    """What one `roost curate` run did (rank 0 reports the whole generation)."""

    rank: int
    world_size: int
    workers: int
    generation: int | None
    up_to_date: bool
    read: int = 0
    kept: int = 0
    removed: dict[str, int] = msgspec.field(default_factory=dict)
    tokens: dict[str, int] = msgspec.field(default_factory=dict)
    tasks_run: int = 0
    #: Wall seconds this rank spent in each stage (its tasks and its wait for the other ranks), and
    #: this process's peak memory (MiB) by the end of each (tasks run inline count; workers' do not).
    stage_seconds: dict[str, float] = msgspec.field(default_factory=dict)
    stage_peak_rss_mib: dict[str, float] = msgspec.field(default_factory=dict)
    tombstoned: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0


def run_task(home: str, generation: int, stage_name: str, task: int) -> dict[str, Any]:
    """Run one task unless it is done (the entry point worker processes call)."""
    wd = WorkDir(Workspace(home), generation)
    if wd.is_done(stage_name, task):
        return wd.done_stats(stage_name, task)
    plan = wd.read_plan()
    if plan is None:
        raise RuntimeError(f"no plan in {wd.root}; was the generation committed meanwhile?")
    stats = _BY_NAME[stage_name].run(wd, plan, task)
    wd.mark_done(stage_name, task, stats)
    release_memory()
    return stats


# glibc's allocator, where there is one: it keeps freed heap pages unless asked to give them back.
_LIBC = ctypes.CDLL("libc.so.6") if sys.platform == "linux" else None


def release_memory() -> None:
    """Give what a task freed back to the OS: Arrow's pool and glibc's heap keep it otherwise, and
    the next task's peak (the global stage's, say) would sit on top of the last one's leftovers."""
    pa.default_memory_pool().release_unused()
    if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)


def peak_rss_mib() -> float:
    """This process's peak resident memory since it started (MiB).

    VmHWM, not getrusage: Linux carries ru_maxrss across exec, so a process started by a big
    parent would report the parent's peak as its own.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _worker_init() -> None:
    # Each worker is one core's worth of work; the tokenizer's own threads would oversubscribe.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"


def plan_generation(ws: Workspace, config: CurateConfig) -> Plan | None:
    """The generation to work on: one started and not committed, else a new one over the rows
    added since the last commit, else None (everything is curated)."""
    state = read_state(ws.corpus_dir)
    committed = WorkDir(ws, state.generation)
    if committed.root.exists():  # a run was killed between its commit and its cleanup
        finish_generation(committed)
    wd = WorkDir(ws, state.generation + 1)
    plan = wd.read_plan()
    if plan is not None:
        return plan
    if not (ws.raw_dir / "raw.db").exists():
        return None
    with RawStore.in_dir(ws.raw_dir) as store:
        last = store.last_rowid()
    if last <= state.upto_rowid:
        return None
    chunks = math.ceil((last - state.upto_rowid) / config.chunk_rows)
    plan = Plan(
        generation=state.generation + 1,
        after_rowid=state.upto_rowid,
        upto_rowid=last,
        chunks=chunks,
        part_base=state.parts,
        config=config,
    )
    return wd.create_plan(plan)


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def curate(
    ws: Workspace,
    *,
    workers: int = 1,
    rank: int = 0,
    world_size: int = 1,
    progress: Progress | None = None,
    wait_timeout: float | None = None,
) -> CurateResult:
    """Curate every raw post not yet curated; resume a generation a killed run left unfinished."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in 0..{world_size - 1} (world size {world_size})")
    if workers < 1:
        raise ValueError("workers must be at least 1")
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    config = ws.config("curate", CurateConfig)
    plan = plan_generation(ws, config)
    result = CurateResult(rank, world_size, workers, None if plan is None else plan.generation, plan is None)
    if plan is not None:
        wd = WorkDir(ws, plan.generation)
        runner = _Runner(ws, wd, plan, workers, progress, wait_timeout)
        try:
            for stage in STAGES:
                if stage.name == "commit" and rank != 0:
                    break  # rank 0 commits; the others are done
                mine = [t for t in range(stage.tasks(plan)) if t % world_size == rank]
                stage_started = time.perf_counter()
                result.tasks_run += runner.run(stage, mine)
                runner.wait_for(stage)
                result.stage_seconds[stage.name] = round(time.perf_counter() - stage_started, 3)
                result.stage_peak_rss_mib[stage.name] = round(peak_rss_mib(), 1)
        finally:
            runner.close()
        if rank == 0:
            finish_generation(wd)
            summary = next(
                g for g in read_manifest(ws.corpus_dir)["generations"] if g["generation"] == plan.generation
            )
            result.read, result.kept = summary["read"], summary["kept"]
            result.removed, result.tokens = summary["removed"], summary["tokens"]
    if rank == 0:
        result.tombstoned = apply_tombstones(ws)
    result.seconds = time.perf_counter() - started
    result.cpu_seconds = _cpu_seconds() - cpu_started
    return result


class _Runner:
    """Runs a rank's tasks of each stage, inline or on a pool of worker processes."""

    def __init__(
        self,
        ws: Workspace,
        wd: WorkDir,
        plan: Plan,
        workers: int,
        progress: Progress | None,
        wait_timeout: float | None,
    ) -> None:
        self.ws, self.wd, self.plan = ws, wd, plan
        self.workers = workers
        self.progress = progress or (lambda stage, done, total: None)
        self.wait_timeout = wait_timeout
        self.pool: ProcessPoolExecutor | None = None

    def run(self, stage: Stage, tasks: list[int]) -> int:
        pending = [t for t in tasks if not self.wd.is_done(stage.name, t)]
        done = len(tasks) - len(pending)
        self.progress(stage.name, done, len(tasks))
        args = (str(self.ws.home), self.plan.generation, stage.name)
        rows = self.plan.upto_rowid - self.plan.after_rowid
        if stage.name == "cluster" and pending and rows > _ISOLATE_ROWS:
            # This process's heap holds what the earlier stages left (freed, but fragmented); in a
            # fresh process the global stage's peak does not sit on top of it.
            with ProcessPoolExecutor(1, mp_context=get_context("spawn"), initializer=_worker_init) as pool:
                pool.submit(run_task, *args, pending[0]).result()
            self.progress(stage.name, len(tasks), len(tasks))
            return len(pending)
        if self.workers == 1 or len(pending) <= 1:
            for task in pending:
                run_task(*args, task)
                done += 1
                self.progress(stage.name, done, len(tasks))
            return len(pending)
        if self.pool is None:
            self.pool = ProcessPoolExecutor(
                self.workers, mp_context=get_context("spawn"), initializer=_worker_init
            )
        futures = {self.pool.submit(run_task, *args, task) for task in pending}
        while futures:
            finished, futures = wait(futures, return_when=FIRST_EXCEPTION)
            for future in finished:
                future.result()  # a failed task fails the run, with its traceback
                done += 1
            self.progress(stage.name, done, len(tasks))
        return len(pending)

    def wait_for(self, stage: Stage) -> None:
        """Wait until every rank has finished `stage` (or the generation got committed)."""
        total = stage.tasks(self.plan)
        deadline = None if self.wait_timeout is None else time.monotonic() + self.wait_timeout
        while True:
            missing = [t for t in range(total) if not self.wd.is_done(stage.name, t)]
            if not missing or read_state(self.ws.corpus_dir).generation >= self.plan.generation:
                return
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(
                    f"stage {stage.name}: tasks {missing[:10]} not done by the other ranks "
                    f"after {self.wait_timeout:.0f} s; is every rank running?"
                )
            time.sleep(0.5)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
