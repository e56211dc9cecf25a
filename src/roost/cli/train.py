"""`roost train`, `roost eval` and `roost export`: thin commands over roost.train and roost.export."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import typer

from roost.cli.common import JsonOption, console, emit, fail, workspace

export_app = typer.Typer(help="Export a run to other formats, and import it back.", no_args_is_help=True)


def train(
    ctx: typer.Context,
    run: str = typer.Option("main", "--run", help="Run name under runs/; an existing run is resumed."),
    preset: str | None = typer.Option(
        None, "--preset", help="Model preset: tiny, 20m, 125m, 1b, 8b, 70b, 405b."
    ),
    config: Path | None = typer.Option(None, "--config", help="TOML or JSON file of [train] settings."),
    assignments: list[str] = typer.Option(
        [], "--set", help="Override one setting: key=value, model.key=value."
    ),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Train up to this step."),
    time_budget: float | None = typer.Option(
        None, "--time-budget", help="Stop (checkpointed) after seconds."
    ),
    sft: str | None = typer.Option(
        None, "--sft", help="Conversation-tune this pretrained run on reply threads."
    ),
    nproc: int = typer.Option(1, "--nproc", help="Processes on this machine (launched with torchrun)."),
    as_json: bool = JsonOption,
) -> None:
    """Train (or resume) a model on the workspace's token shards."""
    ws = workspace(ctx)
    options: list[str] = ["--name", run]
    for flag, value in (("--preset", preset), ("--config", config), ("--max-steps", max_steps)):
        if value is not None:
            options += [flag, str(value)]
    for flag, value in (("--time-budget", time_budget), ("--sft", sft)):
        if value is not None:
            options += [flag, str(value)]
    for text in assignments:
        options += ["--set", text]
    if nproc > 1:
        launcher = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={nproc}",
        ]
        command = [*launcher, "-m", "roost.train", "--home", str(ws.home), *options]
        raise typer.Exit(subprocess.call([*command, *(["--json"] if as_json else [])]))

    from roost.train.prepare import prepare_config
    from roost.train.trainer import NonFiniteLoss
    from roost.train.trainer import train as run_training
    from roost.workspace import ConfigError

    try:
        settings = prepare_config(
            ws,
            run,
            config_file=config,
            preset=preset,
            assignments=assignments,
            max_steps=max_steps,
            time_budget_s=time_budget,
            sft_from=sft,
        )
        result = run_training(ws, settings, run)
    except (ConfigError, FileNotFoundError, NonFiniteLoss) as exc:
        fail(str(exc))
    emit(result, as_json, _render_train)


def _render_train(result: Any) -> None:
    figures = [f"step {result.step} ({result.stopped})", f"loss {result.loss:.4f}" if result.loss else ""]
    if result.val_loss is not None:
        figures.append(f"val loss {result.val_loss:.4f}, {result.val_bpb:.3f} bits/byte")
    figures.append(f"{result.tokens_per_s:,.0f} tok/s")
    if result.mfu is not None:
        figures.append(f"MFU {result.mfu:.1%}")
    console.print(f"[bold]{result.run}[/]: " + ", ".join(f for f in figures if f))
    console.print(f"checkpoint: {result.checkpoint}")


def evaluate(
    ctx: typer.Context,
    run: str = typer.Argument(..., help="Run name (or path) to evaluate."),
    file: Path | None = typer.Option(
        None, "--file", help="Posts: JSONL (see --field) or text, one per line."
    ),
    field: str = typer.Option("text", "--field", help="JSONL field holding the post text."),
    limit: int | None = typer.Option(None, "--limit", help="At most this many posts (or val sequences)."),
    step: int | None = typer.Option(None, "--step", help="Checkpoint step (default: the latest)."),
    as_json: bool = JsonOption,
) -> None:
    """Loss and bits per byte of a run on a file of posts, or on the validation shards."""
    ws = workspace(ctx)
    from roost.train.evaluate import evaluate_run
    from roost.train.run import find_run

    try:
        found = find_run(ws.runs_dir, run)
        result = evaluate_run(
            found.path, file=file, shards_dir=ws.shards_dir, field=field, limit=limit, step=step
        )
    except (FileNotFoundError, ValueError, KeyError) as exc:
        fail(str(exc))
    where = str(file) if file else "validation shards"
    emit(
        {"run": found.name, "on": where, **result.as_dict()},
        as_json,
        lambda r: console.print(
            f"{r['run']} on {r['on']}: loss {r['loss']:.4f} nats/token, {r['bpb']:.4f} bits/byte "
            f"({r['tokens']:,} tokens, {r['bytes']:,} bytes)"
        ),
    )


@export_app.command("hf")
def export_hf(
    ctx: typer.Context,
    run: str = typer.Argument(..., help="Run name (or path) to export."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default: export/<run>)."),
    step: int | None = typer.Option(None, "--step", help="Checkpoint step (default: the latest)."),
    as_json: bool = JsonOption,
) -> None:
    """Write a run as a Hugging Face Llama folder (config.json, model.safetensors, tokenizer)."""
    ws = workspace(ctx)
    from roost.export.hf import export_hf as write_export
    from roost.train.run import find_run

    try:
        found = find_run(ws.runs_dir, run)
        path = write_export(found.path, out or ws.export_dir / found.name, step)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    emit(
        {"run": found.name, "export": str(path)},
        as_json,
        lambda r: console.print(f"exported to {r['export']}"),
    )


@export_app.command("import-hf")
def import_hf(
    ctx: typer.Context,
    directory: Path = typer.Argument(..., help="A Hugging Face Llama folder."),
    run: str = typer.Option(..., "--run", help="Name of the run to create."),
    as_json: bool = JsonOption,
) -> None:
    """Make a run from a Hugging Face Llama folder (to tune, evaluate or serve it)."""
    ws = workspace(ctx)
    from roost.export.hf import import_hf as read_import

    try:
        path = read_import(directory, ws.runs_dir / run)
    except (FileNotFoundError, FileExistsError, ValueError, KeyError) as exc:
        fail(str(exc))
    emit({"run": run, "path": str(path)}, as_json, lambda r: console.print(f"imported as run {r['run']}"))
