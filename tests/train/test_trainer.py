"""The loop in one process: it learns, leaves its records, resumes exactly, accumulates gradients
and recomputes activations without changing the numbers, guards against non-finite losses, and
hands serving the model it trained."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time

import pytest
import torch

from roost.train.checkpoint import complete_checkpoints, load_model
from roost.train.metrics import read_metrics
from roost.train.trainer import NonFiniteLoss, Trainer, train
from roost.workspace import Workspace
from tests.train.conftest import tiny


def losses(ws: Workspace, run: str) -> list[float]:
    return [r["loss"] for r in read_metrics(ws.runs_dir / run / "metrics.jsonl") if "loss" in r]


def test_a_run_learns_and_leaves_its_records(train_ws: Workspace) -> None:
    result = train(train_ws, tiny(max_steps=12, lr=3e-3, keep_checkpoints=2), "r")
    run = train_ws.runs_dir / "r"
    records = read_metrics(run / "metrics.jsonl")
    steps = [r for r in records if "loss" in r]
    evals = [r for r in records if "val_loss" in r]
    assert [r["step"] for r in steps] == list(range(1, 13))
    assert [r["step"] for r in evals] == [4, 8, 12]
    assert steps[-1]["loss"] < steps[0]["loss"] - 0.5
    assert evals[-1]["val_loss"] < evals[0]["val_loss"]
    assert all(r["tokens_per_s"] > 0 and r["grad_norm"] > 0 and 0 < r["mfu"] < 1 for r in steps)
    assert result.step == 12 and result.val_bpb == pytest.approx(evals[-1]["val_bpb"])
    assert [s for s, _ in complete_checkpoints(run / "checkpoints")] == [8, 12]  # keep_checkpoints 2
    assert (run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "tensorboard").iterdir())
    assert (run / "tokenizer" / "tokenizer.json").exists() and (run / "config.json").exists()


def test_resume_from_a_checkpoint_repeats_the_same_losses(train_ws: Workspace) -> None:
    train(train_ws, tiny(), "whole")
    shutil.copytree(train_ws.runs_dir / "whole", train_ws.runs_dir / "resumed")
    shutil.rmtree(train_ws.runs_dir / "resumed" / "checkpoints" / "step-00000008")
    result = train(train_ws, tiny(), "resumed")
    assert result.step == 8
    assert losses(train_ws, "resumed") == losses(train_ws, "whole")  # bitwise: fp32 on CPU


def test_accumulation_and_recomputation_keep_the_numbers(train_ws: Workspace) -> None:
    train(train_ws, tiny(micro_batch=8, max_steps=4, eval_every=0), "one_batch")
    train(train_ws, tiny(micro_batch=2, max_steps=4, eval_every=0), "four_micro")
    train(train_ws, tiny(micro_batch=2, max_steps=4, eval_every=0, activation_checkpoint="full"), "recompute")
    reference = losses(train_ws, "one_batch")
    assert losses(train_ws, "four_micro") == pytest.approx(reference, abs=1e-5)
    assert losses(train_ws, "recompute") == losses(train_ws, "four_micro")


def test_bf16_autocast_follows_fp32(train_ws: Workspace) -> None:
    train(train_ws, tiny(max_steps=6, eval_every=0), "fp32")
    train(train_ws, tiny(max_steps=6, eval_every=0, dtype="bfloat16"), "bf16")
    assert losses(train_ws, "bf16") == pytest.approx(losses(train_ws, "fp32"), abs=0.03)


def test_load_model_gives_the_trained_network(train_ws: Workspace) -> None:
    trainer = Trainer(train_ws, tiny(max_steps=4), "served")
    trainer.fit()
    model, config = load_model(train_ws.runs_dir / "served")
    assert config == trainer.model_config
    tokens = torch.randint(0, config.vocab_size, (2, 16))
    with torch.no_grad():
        torch.testing.assert_close(model(tokens), trainer.model(tokens), rtol=0, atol=0)


def test_non_finite_loss_stops_the_run(train_ws: Workspace) -> None:
    with pytest.raises(
        NonFiniteLoss, match=r"non-finite loss .* at step \d+, stopped by on_nonfinite = stop"
    ):
        train(train_ws, tiny(lr=1e6, grad_clip=0.0, warmup_steps=0, eval_every=0), "exploding")
    records = read_metrics(train_ws.runs_dir / "exploding" / "metrics.jsonl")
    assert records[-1]["skipped"] and not any(r.get("skipped") for r in records[:-1])


def test_skip_policy_skips_then_gives_up(train_ws: Workspace) -> None:
    config = tiny(lr=1e6, grad_clip=0.0, warmup_steps=0, eval_every=0, on_nonfinite="skip", max_skips=3)
    with pytest.raises(NonFiniteLoss, match="4 consecutive skipped steps"):
        train(train_ws, config, "skipping")
    records = read_metrics(train_ws.runs_dir / "skipping" / "metrics.jsonl")
    flags = [bool(r.get("skipped")) for r in records]
    assert flags[-4:] == [True] * 4 and not any(flags[:-4])


@pytest.mark.slow
def test_compiled_blocks_give_the_same_losses(train_ws: Workspace) -> None:
    train(train_ws, tiny(max_steps=3, eval_every=0), "eager")
    train(train_ws, tiny(max_steps=3, eval_every=0, compile=True), "compiled")
    assert losses(train_ws, "compiled") == pytest.approx(losses(train_ws, "eager"), abs=1e-4)


def test_time_budget_and_sigterm_end_the_run_with_a_checkpoint(train_ws: Workspace) -> None:
    result = train(train_ws, tiny(max_steps=100_000, time_budget_s=0.5, eval_every=0), "budget")
    assert result.stopped == "time_budget" and 0 < result.step < 100_000
    assert complete_checkpoints(train_ws.runs_dir / "budget" / "checkpoints")[-1][0] == result.step

    # A scheduler's preemption notice: SIGTERM to this process once it is training.
    metrics = train_ws.runs_dir / "preempted" / "metrics.jsonl"

    def preempt() -> None:
        while not metrics.exists() or metrics.read_text().count("\n") < 2:  # two whole lines logged
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, lambda *_: None)  # never let a stray one end pytest
    threading.Thread(target=preempt, daemon=True).start()
    try:
        result = train(train_ws, tiny(max_steps=2_000, eval_every=0), "preempted")
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert result.stopped == "signal" and result.step < 2_000
    assert complete_checkpoints(train_ws.runs_dir / "preempted" / "checkpoints")[-1][0] == result.step
