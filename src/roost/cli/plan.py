"""`roost plan`: what a cluster can train, laid out how, for how long, at what cost."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from roost.cli.common import JsonOption, console, emit, fail, workspace

_SUFFIXES = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}


def parse_count(text: str, what: str) -> float:
    """'70B' → 7e10, '15T' → 1.5e13, '4e6' → 4e6."""
    match = re.fullmatch(r"\s*([0-9.]+(?:e[+-]?\d+)?)\s*([kmbgt]?)\s*", text.lower())
    if not match:
        fail(f"{what} {text!r} is not a number like 70B, 15T or 4e6")
    return float(match.group(1)) * _SUFFIXES.get(match.group(2), 1.0)


def plan_command(
    ctx: typer.Context,
    gpu: str | None = typer.Option(
        None, "--gpu", help="GPU type: a100, a100-40gb, h100, h100-pcie, h200, b200, mi300x."
    ),
    gpus: int | None = typer.Option(
        None, "--gpus", help="GPUs in the cluster (plan.gpus in roost.toml: 10,000 by default)."
    ),
    days: float | None = typer.Option(None, "--days", help="Wall-clock days the run may take."),
    model: str | None = typer.Option(None, "--model", help="A model preset: 1b, 8b, 70b, 405b, ..."),
    params: str | None = typer.Option(None, "--params", help="Parameters of a Llama-shaped model, e.g. 30B."),
    tokens: str | None = typer.Option(
        None, "--tokens", help="Tokens to train on, e.g. 15T (else what --days allows)."
    ),
    seq_len: int | None = typer.Option(None, "--seq-len", help="Sequence length (the model's by default)."),
    batch_tokens: str | None = typer.Option(None, "--batch-tokens", help="Global batch in tokens, e.g. 16M."),
    price: float | None = typer.Option(None, "--price", help="USD per GPU-hour (plan.price_per_gpu_hour)."),
    fp8: bool = typer.Option(False, "--fp8", help="Matmuls at the fp8 peak."),
    posts_per_day: float | None = typer.Option(
        None, "--posts-per-day", help="Firehose volume, for the data-constrained mode (plan.posts_per_day)."
    ),
    alternatives: int = typer.Option(4, "--alternatives", help="Runner-up layouts to show."),
    emit_config: Path | None = typer.Option(
        None, "--emit-config", help="Write a `roost train --config` file (.toml, or .json) for this plan."
    ),
    compare: Path | None = typer.Option(
        None, "--compare", help="Instead, reproduce published cases (a scale_cases JSON file) and compare."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Plan a training run: model size, layout (TP/PP/CP/DP, micro-batch, recompute), days, GPU-hours,
    cost and goodput, from a stated model of compute, communication, memory and failures."""
    from roost.plan.config import PlanConfig

    if compare is not None:
        _compare(compare, as_json)
        return
    from roost.plan.planner import DataBudget, make_plan
    from roost.plan.report import plan_to_dict, render_plan
    from roost.plan.trainer_config import write_train_config

    defaults = workspace(ctx).config("plan", PlanConfig)
    volume = posts_per_day if posts_per_day is not None else defaults.posts_per_day
    data = (
        DataBudget(volume, defaults.tokens_per_post, defaults.history_days, defaults.curation_loss)
        if volume > 0
        else None
    )
    try:
        plan = make_plan(
            gpu or defaults.gpu,
            gpus or defaults.gpus,
            days=days,
            model=model,
            params=parse_count(params, "--params") if params else None,
            tokens=parse_count(tokens, "--tokens") if tokens else None,
            seq_len=seq_len,
            batch_tokens=int(parse_count(batch_tokens, "--batch-tokens")) if batch_tokens else None,
            price_per_gpu_hour=price if price is not None else defaults.price_per_gpu_hour,
            data=data,
            fp8=fp8,
            alternatives=alternatives,
        )
        if emit_config is not None:
            written = write_train_config(emit_config, plan.train_settings())
    except ValueError as exc:
        fail(str(exc))
    emit(plan_to_dict(plan), as_json, lambda _: render_plan(plan, console))
    if emit_config is not None and not as_json:
        console.print(f"wrote {written}: run it with `roost train --config {written}`")


def _compare(path: Path, as_json: bool) -> None:
    from roost.plan.cases import error_summary, load_cases, reproduce_all
    from roost.plan.report import render_comparisons

    if not path.exists():
        fail(f"{path} does not exist")
    try:
        comparisons = reproduce_all(load_cases(path))
    except (ValueError, KeyError) as exc:
        fail(f"{path}: {exc}")
    result = {
        "comparisons": [
            {
                "case": c.case_id,
                "kind": c.kind,
                "quantity": c.quantity,
                "predicted": c.predicted,
                "published": c.published,
                "error": c.error,
                "ok": c.ok,
                "detail": c.detail,
            }
            for c in comparisons
        ],
        "summary": {
            kind: {"count": n, "max_error": worst, "mean_error": mean}
            for kind, (n, worst, mean) in error_summary(comparisons).items()
        },
    }
    emit(result, as_json, lambda _: render_comparisons(comparisons, console))
