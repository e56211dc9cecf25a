"""`roost curate` (raw posts to corpus, tokenizer and token shards) and `roost tokenizer train`."""

from __future__ import annotations

from typing import Any

import typer

from roost.cli.common import JsonOption, console, emit, err_console, fail, workspace


def curate_command(
    ctx: typer.Context,
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Worker processes on this machine."),
    rank: int = typer.Option(0, "--rank", min=0, help="This process's rank (Slurm array, torchrun, Ray)."),
    world_size: int = typer.Option(1, "--world-size", min=1, help="How many ranks share the work."),
    wait_timeout: float = typer.Option(
        24 * 3600.0, "--wait-timeout", help="Seconds to wait for the other ranks at each stage's end."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Curate every raw post not curated yet: normalise, filter, scrub PII, dedup, tokenize.

    Resumable: rerun after a crash and it continues where it stopped, with the same result.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from roost.curate.pipeline import curate
    from roost.workspace import ConfigError

    ws = workspace(ctx)
    columns = (TextColumn("{task.description:>10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True, disable=as_json) as bars:
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(stage, total=total)
            bars.update(tasks[stage], completed=done)

        try:
            result = curate(
                ws,
                workers=workers,
                rank=rank,
                world_size=world_size,
                progress=progress,
                wait_timeout=wait_timeout,
            )
        except (ConfigError, ValueError, TimeoutError, FileNotFoundError) as exc:
            fail(str(exc))
    emit(result, as_json, _render)


def _render(result: Any) -> None:
    from rich.table import Table

    if result.up_to_date and not result.tombstoned:
        console.print("Nothing to curate: every raw post is already in the corpus.")
        return
    if result.rank != 0:
        console.print(
            f"rank {result.rank}/{result.world_size}: ran {result.tasks_run} tasks; rank 0 commits."
        )
        return
    table = Table(title=f"roost curate: generation {result.generation}", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("posts in", f"{result.read:,}")
    table.add_row("kept", f"{result.kept:,}")
    for reason, count in sorted(result.removed.items(), key=lambda kv: -kv[1]):
        table.add_row(f"  removed: {reason}", f"{count:,}")
    for split, count in sorted(result.tokens.items()):
        table.add_row(f"tokens ({split})", f"{count:,}")
    if result.tombstoned:
        table.add_row("newly tombstoned", f"{result.tombstoned:,}")
    rate = result.read / result.seconds if result.seconds else 0.0
    table.add_row("time", f"{result.seconds:.1f} s ({rate:,.0f} posts/s)")
    console.print(table)


tokenizer_app = typer.Typer(help="The BPE tokenizer trained on the curated corpus.", no_args_is_help=True)


@tokenizer_app.command("train")
def train_command(
    ctx: typer.Context,
    vocab_size: int | None = typer.Option(
        None, "--vocab-size", min=300, help="Vocabulary size (default: [curate.tokenizer] vocab_size)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Train the tokenizer on the curated corpus and re-tokenize the shards with it."""
    from roost.curate.commit import retrain_tokenizer

    try:
        result = retrain_tokenizer(workspace(ctx), vocab_size)
    except (RuntimeError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    emit(
        result,
        as_json,
        lambda r: console.print(
            f"tokenizer {r['sha256'][:12]} ({r['vocab_size']:,} tokens); shards: "
            + ", ".join(f"{split} {n:,} tokens" for split, n in r["tokens"].items())
        ),
    )
