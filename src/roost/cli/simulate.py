"""`roost simulate`: the simulated platform's events as JSON lines, deterministic for a seed."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from roost.cli.common import JsonOption, console, emit, err_console, fail, workspace

if TYPE_CHECKING:
    from roost.firehose.sim_output import SimReport

#: Below this many posts there is no progress bar: the run is over before one would help.
_PROGRESS_FROM = 50_000


def simulate(
    ctx: typer.Context,
    posts: int = typer.Option(
        100_000, "--posts", "-n", min=0, help="How many posts to write (deletes come on top)."
    ),
    seed: int | None = typer.Option(
        None, "--seed", help="Seed (default: `seed` in the simulate section of roost.toml)."
    ),
    out: str = typer.Option(
        "-", "--out", "-o", help="Output file; '-' for stdout; a name ending .zst is compressed."
    ),
    live: bool = typer.Option(
        False, "--live", help="Append to the firehose log at --rate events/s until stopped (no --out)."
    ),
    rate: float = typer.Option(6000.0, "--rate", help="Events per second with --live."),
    workers: int = typer.Option(
        1, "--workers", "-w", min=1, help="Processes to run the shards in (not with --live)."
    ),
    shards: int | None = typer.Option(
        None,
        "--shards",
        min=1,
        help="Independent sub-streams merged by time (default: `shards` in roost.toml, or --workers "
        "when that is 1). The output depends on it, not on --workers.",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Write simulated posts and deletes, one roost Event per line, in time order.

    The same seed, shard count and simulate config give byte-identical output, however many
    workers run them. The report goes to stdout when the events go to a file, and to stderr when
    they go to stdout.
    """
    import msgspec

    from roost.firehose.sim_output import write_events, write_lines
    from roost.firehose.sim_parallel import parallel_lines
    from roost.firehose.simulate import SimConfig, Simulator
    from roost.workspace import ConfigError

    try:
        config = workspace(ctx).config("simulate", SimConfig)
        if seed is not None:
            config = msgspec.structs.replace(config, seed=seed)
        if shards is None and config.shards == 1:
            shards = workers
        if shards is not None:
            config = msgspec.structs.replace(config, shards=shards)
        if workers > config.shards:
            raise ValueError(f"--workers {workers} needs at least as many shards, got {config.shards}")
        if live and workers > 1:
            raise ValueError("--live runs in one process: leave out --workers")
        simulator = Simulator(config)
    except (ConfigError, ValueError) as exc:
        fail(str(exc))
    if live:
        from roost.cli.firehose import simulate_live

        simulate_live(ctx, simulator, rate, as_json)
        return
    path = None if out == "-" else Path(out)
    try:
        with _progress(posts) as advance:
            if workers == 1:
                report = write_events(simulator, path, posts, progress=advance)
            else:
                report = write_lines(parallel_lines(simulator, workers), path, posts, progress=advance)
    except BrokenPipeError:  # `roost simulate | head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit's flush
        raise typer.Exit(0) from None
    if path is not None:
        emit(report, as_json, lambda r: console.print(_summary(r)))
    elif as_json:  # stdout carries the events
        sys.stderr.write(msgspec.json.encode(report).decode() + "\n")
    else:
        err_console.print(_summary(report))


def _summary(report: SimReport) -> str:
    return (
        f"{report.posts:,} posts and {report.deletes:,} deletes ({report.first_created_at} to "
        f"{report.last_created_at}) -> {report.out} in {report.seconds:.1f} s "
        f"({report.posts_per_s:,.0f} posts/s)"
    )


@contextlib.contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr for large runs on a terminal; nothing otherwise."""
    if total < _PROGRESS_FROM or not err_console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("simulating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("posts", total=total)
        yield lambda done: bar.update(task, completed=done)
