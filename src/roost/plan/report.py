"""A plan for people (rich tables) and for scripts (`plan_to_dict`, what `--json` prints)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from roost.plan.cases import Comparison, error_summary
from roost.plan.layout import Candidate
from roost.plan.memory import GIB
from roost.plan.planner import Plan


def si(value: float, unit: str = "") -> str:
    """1.23e12 → '1.23T' (thousands steps: k, M, B for counts of parameters or tokens, T, P)."""
    for factor, suffix in ((1e15, "P"), (1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}{unit}"
    return f"{value:.3g}{unit}"


def size_bytes(value: float) -> str:
    for factor, suffix in ((1e15, "PB"), (1e12, "TB"), (1e9, "GB"), (1e6, "MB")):
        if value >= factor:
            return f"{value / factor:.3g} {suffix}"
    return f"{value:.3g} B"


def duration(seconds: float) -> str:
    if seconds >= 86_400:
        return f"{seconds / 86_400:.1f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.3g} s"


def candidate_dict(candidate: Candidate, plan: Plan) -> dict[str, Any]:
    layout, step, memory = candidate.layout, candidate.step, candidate.memory
    return {
        "layout": {
            "tp": layout.tp,
            "pp": layout.pp,
            "cp": layout.cp,
            "dp": layout.dp,
            "interleave": layout.interleave,
            "sharding": layout.sharding,
            "micro_batch": layout.micro_batch,
            "microbatches": layout.microbatches(candidate.job),
            "recompute": layout.recompute,
            "recompute_layers": layout.recomputed_layers(candidate.job),
            "sequence_parallel": layout.sp,
        },
        "global_batch_sequences": candidate.job.global_batch,
        "tokens_per_step": candidate.job.tokens_per_step,
        "tokens_per_s": candidate.tokens_per_s,
        "mfu": candidate.mfu(plan.gpu),
        "step_s": {
            "total": step.total,
            "compute": step.compute,
            "tensor_parallel": step.tensor_comm,
            "context_parallel": step.context_comm,
            "pipeline_sends": step.pipeline_comm,
            "pipeline_bubble": step.bubble,
            "data_parallel": step.data_comm,
            "optimizer": step.optimizer,
        },
        "memory_gib": {
            "total": memory.total / GIB,
            "weights": memory.weights / GIB,
            "grads": memory.grads / GIB,
            "optimizer": memory.optimizer / GIB,
            "activations": memory.activations / GIB,
            "output_activations": memory.output_activations / GIB,
            "transient": memory.transient / GIB,
            "capacity": plan.gpu.hbm_gib,
        },
    }


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    rel, size = plan.reliability, plan.sizing
    return {
        "gpu": {
            "key": plan.gpu.key,
            "name": plan.gpu.name,
            "count": plan.gpus,
            "datasheet": plan.gpu.datasheet.url,
        },
        "model": {
            "name": plan.model_name,
            "params": plan.params,
            "layers": plan.model.n_layers,
            "dim": plan.model.dim,
            "heads": plan.model.n_heads,
            "kv_heads": plan.model.kv_heads,
            "ffn_dim": plan.model.hidden_dim,
            "vocab_size": plan.model.vocab_size,
            "seq_len": plan.best.job.seq_len,
        },
        "best": candidate_dict(plan.best, plan),
        "alternatives": [candidate_dict(c, plan) for c in plan.alternatives],
        "roost_train": candidate_dict(plan.trainer, plan) if plan.trainer else None,
        "training": {
            "tokens": plan.tokens,
            "tokens_per_param": plan.tokens / plan.params,
            "days": plan.days,
            "days_budget": plan.days_budget,
            "gpu_hours": plan.gpu_hours,
            "price_per_gpu_hour": plan.price_per_gpu_hour,
            "cost": plan.cost,
            "mfu": plan.mfu,
            "hfu": plan.hfu,
        },
        "reliability": {
            "interruptions_per_day": rel.interruptions_per_day,
            "mtbf_hours": rel.mtbf_s / 3600,
            "expected_interruptions": rel.expected_interruptions,
            "checkpoint_bytes": rel.checkpoint_bytes,
            "checkpoint_write_s": rel.checkpoint_s,
            "restart_s": rel.restart_s,
            "checkpoint_interval_s": rel.interval_s,
            "checkpoint_every_steps": plan.checkpoint_every_steps,
            "goodput": rel.goodput,
        },
        "sizing": {
            "compute_flops": size.compute,
            "compute_optimal_params": size.compute_optimal_params,
            "compute_optimal_tokens": size.compute_optimal_tokens,
            "unique_tokens": size.unique_tokens,
            "epochs": size.epochs,
            "effective_tokens": size.effective_tokens,
            "data_constrained": size.data_constrained,
            "run_limited_by_data": plan.data_limited,
            "suggested_params": size.params,
            "suggested_tokens": size.tokens,
        },
    }


def _layout_row(candidate: Candidate, plan: Plan) -> list[str]:
    return [
        candidate.layout.describe(),
        f"{candidate.job.global_batch:,} × {candidate.job.seq_len:,}",
        si(candidate.tokens_per_s),
        f"{candidate.mfu(plan.gpu):.1%}",
        f"{candidate.memory.total / GIB:.1f}",
    ]


def render_plan(plan: Plan, console: Console) -> None:
    best, step, memory, rel, size = plan.best, plan.best.step, plan.best.memory, plan.reliability, plan.sizing
    budget = f", {plan.days_budget:g}-day budget" if plan.days_budget else ""
    console.print(f"[bold]roost plan[/]: {plan.gpus:,} × {plan.gpu.name}{budget}")
    console.print(
        f"model [bold]{plan.model_name}[/]: {si(plan.params)} parameters, {plan.model.n_layers} layers × "
        f"{plan.model.dim}, {plan.model.n_heads} heads ({plan.model.kv_heads} key/value), "
        f"sequence {best.job.seq_len:,}"
    )

    layouts = Table(title="Layouts, fastest first (fit in memory, use every GPU)")
    for column in ("layout", "batch (seq × len)", "tokens/s", "MFU", "GiB/GPU"):
        layouts.add_column(column, justify="left" if column == "layout" else "right")
    layouts.add_row(*_layout_row(best, plan), style="bold")
    for other in plan.alternatives:
        layouts.add_row(*_layout_row(other, plan))
    if plan.trainer is not None:
        layouts.add_row(*_layout_row(plan.trainer, plan), style="cyan")
        layouts.caption = "cyan: the fastest layout `roost train` runs (FSDP2/DDP + TP, no pipeline)"
    console.print(layouts)

    parts = Table(title=f"One step of the best layout: {duration(step.total)}")
    parts.add_column("where the time goes")
    parts.add_column("s", justify="right")
    parts.add_column("share", justify="right")
    for name, seconds in (
        ("compute (matmuls, element-wise, recompute)", step.compute),
        ("tensor-parallel collectives", step.tensor_comm),
        ("context-parallel exchange (exposed)", step.context_comm),
        ("pipeline sends", step.pipeline_comm),
        ("pipeline bubble", step.bubble),
        ("data-parallel / FSDP traffic (exposed)", step.data_comm),
        ("optimizer step", step.optimizer),
    ):
        parts.add_row(name, f"{seconds:.3f}", f"{seconds / step.total:.1%}")
    console.print(parts)

    mem = Table(title=f"Memory on the busiest GPU: {memory.total / GIB:.1f} of {plan.gpu.hbm_gib:g} GiB")
    mem.add_column("what")
    mem.add_column("GiB", justify="right")
    for name, value in (
        ("weights", memory.weights),
        ("gradients", memory.grads),
        ("optimizer state", memory.optimizer),
        ("activations (in-flight micro-batches)", memory.activations),
        ("logits and loss", memory.output_activations),
        ("transient (gathered layers, recompute)", memory.transient),
    ):
        mem.add_row(name, f"{value / GIB:.2f}")
    console.print(mem)

    run = Table(title="Training run")
    run.add_column("")
    run.add_column("", justify="right")
    rows = [
        ("tokens", f"{si(plan.tokens)} ({plan.tokens / plan.params:.0f} per parameter)"),
        ("throughput", f"{si(plan.tokens_per_s)} tokens/s, MFU {plan.mfu:.1%}, HFU {plan.hfu:.1%}"),
        ("wall-clock days (with failures)", f"{plan.days:.1f}"),
        ("GPU-hours", si(plan.gpu_hours)),
        ("cost", f"${si(plan.cost)} at ${plan.price_per_gpu_hour:g}/GPU-h"),
        (
            "interruptions",
            f"{rel.interruptions_per_day:.1f}/day, MTBF {duration(rel.mtbf_s)}, "
            f"{rel.expected_interruptions:.0f} expected",
        ),
        (
            "checkpoint",
            f"{size_bytes(rel.checkpoint_bytes)}, write {duration(rel.checkpoint_s)}, "
            f"restart {duration(rel.restart_s)}",
        ),
        ("checkpoint every (Daly)", f"{duration(rel.interval_s)} = {plan.checkpoint_every_steps:,} steps"),
        ("goodput", f"{rel.goodput:.1%}"),
        (
            "compute-optimal for these FLOPs",
            f"{si(size.compute_optimal_params)} params on "
            f"{si(size.compute_optimal_tokens)} tokens (Chinchilla)",
        ),
    ]
    if size.unique_tokens is not None:
        epochs = plan.tokens / size.unique_tokens
        limit = " (capped at the useful maximum)" if plan.data_limited else ""
        rows.append(("firehose data", f"{si(size.unique_tokens)} unique tokens, {epochs:.2f} epochs{limit}"))
        if size.data_constrained:
            rows.append(
                (
                    "data-constrained suggestion",
                    f"{si(size.params)} params on {si(size.tokens)} tokens ({size.epochs:.1f} epochs)",
                )
            )
    for name, value in rows:
        run.add_row(name, value)
    console.print(run)


def render_comparisons(comparisons: list[Comparison], console: Console) -> None:
    """Predicted against published, one row per number, then the error summary per kind."""
    table = Table(title="Predicted vs published")
    for column in ("case", "quantity", "predicted", "published", "error", ""):
        table.add_column(column, justify="right" if column in ("predicted", "published", "error") else "left")
    for c in comparisons:
        table.add_row(
            c.case_id,
            c.quantity,
            f"{c.predicted:.4g}",
            f"{c.published:.4g}",
            f"{c.error:+.1%}",
            "ok" if c.ok else "[red]off[/]",
        )
    console.print(table)
    summary = Table(title="Error by kind (absolute, relative)")
    for column in ("kind", "comparisons", "max", "mean"):
        summary.add_column(column, justify="left" if column == "kind" else "right")
    for kind, (count, worst, mean) in error_summary(comparisons).items():
        summary.add_row(kind, str(count), f"{worst:.1%}", f"{mean:.1%}")
    console.print(summary)
