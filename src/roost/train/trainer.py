"""The training loop: set up (configuration checked, data opened, model built and parallelized, state
restored), then step, log, evaluate and checkpoint until the step or time budget is spent.

One process or many: under torchrun each rank runs this same code on its slice of every global
batch. The loss of a step is the mean over every target token of the global batch, whatever the
world size, split or accumulation (each rank divides its summed loss by the global token count),
so runs on 1, 2 or 4 ranks follow the same curve.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.distributed.tensor import DTensor
from torch.nn.parallel import DistributedDataParallel

from roost.model.config import ModelConfig
from roost.model.llama import Llama
from roost.tokenizer import load_tokenizer
from roost.train import parallel
from roost.train.checkpoint import (
    Checkpointer,
    ModelState,
    OptimizerState,
    Progress,
    has_training_state,
    load_weights,
)
from roost.train.config import ConfigError, TrainConfig, check, model_config, resolve_mesh
from roost.train.data import IGNORE, DistributedLoader, sequential_batches
from roost.train.evaluate import EvalResult, evaluate_batches, token_byte_lengths
from roost.train.metrics import LiveProgress, MetricsLog, memory_gib, peak_flops, plot_loss
from roost.train.optim import build_optimizer, build_scheduler
from roost.train.prepare import SFT_TRAIN, SFT_VAL, open_data
from roost.train.run import RunDir, find_run
from roost.train.sft import ChatExamples
from roost.workspace import Workspace

# Below this many parameters every rank builds the whole model from the seed (identical on any
# layout, so runs on different world sizes start equal); above it ranks build on the meta device
# and initialise only their shards after parallelization, as a 70B model must.
FULL_INIT_MAX_PARAMS = 2_000_000_000


def summed_token_loss(logits_BTV: torch.Tensor, targets_BT: torch.Tensor) -> torch.Tensor:
    """Cross-entropy summed over the targets that count, computed in fp32 whatever the logits."""
    return F.cross_entropy(
        logits_BTV.flatten(0, 1).float(), targets_BT.flatten(), ignore_index=IGNORE, reduction="sum"
    )


class NonFiniteLoss(RuntimeError):
    """Training produced a NaN or infinite loss or gradient norm and the policy says stop."""


class TrainResult(msgspec.Struct):
    """What a finished (or stopped) run reports; tokens_per_s and mfu leave out the first step."""

    run: str
    step: int
    stopped: str  # "max_steps", "time_budget", "signal"
    loss: float | None
    val_loss: float | None
    val_bpb: float | None
    tokens: int
    tokens_per_s: float
    mfu: float | None
    seconds: float
    world_size: int
    checkpoint: str | None


def _init_distributed() -> bool:
    """Join the process group torchrun describes in the environment; True if this call made it."""
    if dist.is_initialized() or "RANK" not in os.environ:
        return False
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend)
    return True


def _device() -> torch.device:
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device("cpu")


def build_model(model_config: ModelConfig, device: torch.device, *, on_meta: bool) -> Llama:
    """The network: initialised now from the current RNG state, or on the meta device (no memory)
    to be materialised by `materialize` once parallelized."""
    with torch.device("meta" if on_meta else device):
        return Llama(model_config)


def materialize(model: nn.Module, device: torch.device) -> None:
    """Allocate a meta-built (and already sharded) model and initialise each rank's part."""
    model.to_empty(device=device)
    inner = model.module if isinstance(model, DistributedDataParallel) else model
    inner.init_weights()


def train(ws: Workspace, config: TrainConfig, run_name: str) -> TrainResult:
    """Train (or resume) run `run_name` under `config`; the process group, if torchrun launched
    us, is joined here and left at the end."""
    created_group = _init_distributed()
    try:
        result = Trainer(ws, config, run_name).fit()
        if dist.is_initialized():
            # Leave together: a rank that tears its connections down while a peer is still
            # finishing the last collective makes that peer abort.
            dist.barrier()
        return result
    finally:
        if created_group and dist.is_initialized():
            dist.destroy_process_group()


class Trainer:
    """One run on this rank: built from its config (or refused, before any compute), its state
    restored from the latest checkpoint; `fit()` trains it, `train_step` is one optimizer step."""

    def __init__(self, ws: Workspace, config: TrainConfig, run_name: str) -> None:
        self.world = dist.get_world_size() if dist.is_initialized() else 1
        self.rank = dist.get_rank() if dist.is_initialized() else 0
        self.device = _device()
        self.run = RunDir(ws.runs_dir / run_name)

        # -- everything that can be wrong is found here, before a tensor is made ----------------
        config = resolve_mesh(config, self.world)
        if config.objective == "sft" and not config.init_from:
            raise ConfigError(
                "conversation tuning (objective sft) needs init_from: the pretrained run to tune"
            )
        saved_model = self.run.read_config()[1] if self.run.exists() else None
        init_model = find_run(ws.runs_dir, config.init_from).read_config()[1] if config.init_from else None
        self.data = open_data(ws, config, self.run)
        # Tuning or continued pretraining keeps the starting run's shape; otherwise the preset's.
        mc = init_model or model_config(config, self.data.vocab_size)
        if mc.vocab_size != self.data.vocab_size:
            raise ConfigError(
                f"run {config.init_from!r} has a vocabulary of {mc.vocab_size}, the data's tokenizer "
                f"{self.data.vocab_size}: they were not made with the same tokenizer"
            )
        check(config, mc)
        if saved_model is not None and saved_model != mc:
            raise ConfigError(f"the model shape {mc} differs from this run's checkpoints: {saved_model}")
        self.config, self.model_config = config, mc

        # -- the model, wrapped -------------------------------------------------------------------
        torch.manual_seed(config.seed)
        if self.device.type == "cuda":
            torch.set_float32_matmul_precision("high")
        on_meta = mc.num_params() > FULL_INIT_MAX_PARAMS
        self.mesh = parallel.build_mesh(config, self.device.type)
        model = build_model(mc, self.device, on_meta=on_meta)
        self.model = parallel.parallelize(model, config, self.mesh)
        if on_meta:
            materialize(self.model, self.device)
        self.fsdp = parallel.uses_fsdp(config)
        # Compiled, the upcast of the logits fuses into the softmax instead of writing an fp32
        # copy of a (tokens × vocabulary) matrix.
        self.loss_fn = torch.compile(summed_token_loss) if config.compile else summed_token_loss
        self.compute_dtype = torch.bfloat16 if config.dtype == "bfloat16" else torch.float32

        # -- optimizer, schedule, data, progress -----------------------------------------------
        self.optimizer = build_optimizer(self.model, config)
        self.scheduler = build_scheduler(self.optimizer, config)
        dp_rank, dp_size = parallel.dp_rank_and_size(self.mesh)
        self.dp_size = dp_size
        self.loader = DistributedLoader(
            self.data.train,
            global_batch=config.global_batch,
            micro_batch=config.micro_batch,
            dp_rank=dp_rank,
            dp_size=dp_size,
            seed=config.seed,
            device=self.device,
        )
        self.val_batches = (
            sequential_batches(
                self.data.val,
                count=config.eval_sequences,
                micro_batch=config.micro_batch,
                dp_rank=dp_rank,
                dp_size=dp_size,
            )
            if self.data.val is not None and config.eval_every > 0
            else []
        )
        self.progress = Progress()
        self.checkpointer = Checkpointer(
            self.run.checkpoints_dir, keep=config.keep_checkpoints, async_save=config.async_checkpoint
        )
        self.state = {
            "model": ModelState(self.model),
            "optimizer": OptimizerState(self.model, self.optimizer),
            "scheduler": self.scheduler,
            "loader": self.loader,
            "progress": self.progress,
        }
        self.resumed_from = self._restore(ws)
        if self.rank == 0:
            self.run.write_config(config, mc)
            if not self.run.tokenizer_dir.exists():
                shutil.copytree(self.data.tokenizer_dir, self.run.tokenizer_dir)
            if isinstance(self.data.train, ChatExamples) and not (self.run.path / SFT_TRAIN).exists():
                self.data.train.save(self.run.path / SFT_TRAIN)
                if isinstance(self.data.val, ChatExamples):
                    self.data.val.save(self.run.path / SFT_VAL)
        self.token_bytes = token_byte_lengths(load_tokenizer(self.data.tokenizer_dir))
        self._stop_signal = False
        self.log: MetricsLog | None = None  # rank 0's, while fit() runs
        self.live: LiveProgress | None = None

    # -- setup helpers --------------------------------------------------------------------------
    def _restore(self, ws: Workspace) -> str:
        self.checkpointer.clear_incomplete()
        latest = self.checkpointer.latest()
        if latest is not None and has_training_state(latest[1]):
            self.checkpointer.load(latest[1], self.state)
            return f"resumed from step {latest[0]}"
        if latest is not None:  # an imported model: weights only, training starts at step 0
            self.checkpointer.load(latest[1], {"model": self.state["model"]})
            return f"imported weights ({latest[1].name})"
        if self.config.init_from:
            source = find_run(ws.runs_dir, self.config.init_from)
            step = load_weights(self.model, source.path)
            return f"weights from run {source.name} step {step}"
        return "fresh start"

    def _autocast(self) -> contextlib.AbstractContextManager:
        # FSDP's mixed-precision policy already computes in bf16; everything else autocasts.
        if self.compute_dtype == torch.float32 or self.fsdp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.compute_dtype)

    def _grad_sync(self, last: bool) -> contextlib.AbstractContextManager:
        # DDP: all-reduce once per optimizer step, not once per micro-batch.
        if isinstance(self.model, DistributedDataParallel) and not last:
            return self.model.no_sync()
        return contextlib.nullcontext()

    def _sum_over_dp(self, values: torch.Tensor) -> torch.Tensor:
        """Sum over data-parallel ranks (ranks of one tensor-parallel group hold the same values)."""
        if dist.is_initialized():
            values = values.clone()
            dist.all_reduce(values)
            values /= self.config.tp
        return values

    # -- one step ---------------------------------------------------------------------------------
    def train_step(self, micro_batches: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[float, float]:
        """Forward and backward over the micro-batches, clip, and (if finite) update. Returns the
        global mean loss and the gradient norm before clipping."""
        local_targets = sum(int((y != IGNORE).sum()) for _, y in micro_batches)
        global_targets = float(
            self._sum_over_dp(torch.tensor([float(local_targets)], dtype=torch.float64)).item()
        )
        # DDP and FSDP average gradients over the dp ranks; × dp_size makes that the global mean.
        scale = self.dp_size / max(global_targets, 1.0)
        loss_sum = torch.zeros((), dtype=torch.float32, device=self.device)
        for i, (inputs, targets) in enumerate(micro_batches):
            with self._grad_sync(i == len(micro_batches) - 1):
                with self._autocast():
                    logits = self.model(inputs)
                loss = self.loss_fn(logits, targets)
                (loss * scale).backward()
            loss_sum += loss.detach()
        loss_value = float(self._sum_over_dp(loss_sum.double().cpu().reshape(1)).item()) / max(
            global_targets, 1.0
        )
        grad_norm = self._clip_gradients()
        if math.isfinite(loss_value) and math.isfinite(grad_norm):
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        return loss_value, grad_norm

    def _clip_gradients(self) -> float:
        params = [p for p in self.model.parameters() if p.grad is not None]
        norm = torch.nn.utils.get_total_norm([p.grad for p in params], foreach=True)
        if isinstance(norm, DTensor):
            norm = norm.full_tensor()
        if self.config.grad_clip > 0 and torch.isfinite(norm):
            torch.nn.utils.clip_grads_with_norm_(params, self.config.grad_clip, norm, foreach=True)
        return float(norm.item())

    def evaluate(self) -> EvalResult | None:
        if not self.val_batches:
            return None
        return evaluate_batches(
            self.model,
            self.val_batches,
            self.token_bytes,
            device=self.device,
            autocast=self._autocast,
            replicas=self.config.tp,
        )

    def _should_stop(self, started: float) -> str | None:
        """Whether to stop now, agreed by every rank (rank 0's clock and any rank's signal)."""
        budget = self.config.time_budget_s
        flags = torch.tensor(
            [
                float(budget > 0 and time.monotonic() - started >= budget and self.rank == 0),
                float(self._stop_signal),
            ]
        )
        if dist.is_initialized():
            dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        if flags[1]:
            return "signal"
        if flags[0]:
            return "time_budget"
        return None

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGTERM (a scheduler's preemption notice) ends the run at the next step, checkpointed."""

        def on_term(signum: int, frame: Any) -> None:
            self._stop_signal = True

        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be set from the main thread
            return
        previous = signal.signal(signal.SIGTERM, on_term)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)

    # -- the loop -----------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Train from the restored step to max_steps (or until the time budget or a SIGTERM)."""
        config, mc = self.config, self.model_config
        start_step = self.progress.step
        self.log = (
            MetricsLog(self.run.metrics_path, self.run.tensorboard_dir, start_step)
            if self.rank == 0
            else None
        )
        self.live = LiveProgress(config.max_steps, start_step, config.log_every) if self.rank == 0 else None
        peak, peak_source = peak_flops(self.device, self.compute_dtype)
        self.peak_total = peak * self.world
        self.flops_per_token = mc.flops_per_token(config.seq_len)
        self._note(self._describe(peak_source))
        saved_len = self.loader.saved_source_len
        if saved_len is not None and saved_len != len(self.data.train):
            self._note(
                f"the data changed since the checkpoint ({saved_len} → {len(self.data.train)} sequences)"
            )

        started = time.monotonic()
        speed = _Speed()
        stopped, last, evaluation = "max_steps", {}, None
        evaluated_at, saved_at, skips = -1, start_step, 0
        saving = config.keep_checkpoints > 0
        try:
            with self._signals():
                while self.progress.step < config.max_steps:
                    last = self._step(speed, first=self.progress.step == start_step)
                    step = last["step"]
                    skips = skips + 1 if last.get("skipped") else 0
                    self._guard(last, skips)
                    if config.eval_every > 0 and step % config.eval_every == 0:
                        evaluation, evaluated_at = self._evaluate_and_log(step), step
                    stop = self._should_stop(started)
                    if saving and (step % config.checkpoint_every == 0 or step == config.max_steps or stop):
                        self.checkpointer.save(step, self.state)
                        saved_at = step
                    if stop:
                        stopped = stop
                        break
            step = self.progress.step
            if step > start_step and config.eval_every > 0 and evaluated_at != step:
                evaluation = self._evaluate_and_log(step)
            if saving and saved_at != step:
                self.checkpointer.save(step, self.state)
            self.checkpointer.wait()
        finally:
            self._close()
        tokens_per_s = speed.tokens_per_s or last.get("tokens_per_s", 0.0)  # one step: its own speed
        mfu = self.flops_per_token * tokens_per_s / self.peak_total
        latest = self.checkpointer.latest()
        return TrainResult(
            run=str(self.run.path),
            step=self.progress.step,
            stopped=stopped,
            loss=last.get("loss"),
            val_loss=evaluation.loss if evaluation else None,
            val_bpb=evaluation.bpb if evaluation else None,
            tokens=self.progress.tokens,
            tokens_per_s=round(tokens_per_s, 1),
            mfu=round(mfu, 5) if math.isfinite(mfu) else None,
            seconds=round(time.monotonic() - started, 2),
            world_size=self.world,
            checkpoint=str(latest[1]) if latest else None,
        )

    def _step(self, speed: _Speed, first: bool) -> dict[str, Any]:
        """One optimizer step, counted, timed and logged; returns its metrics record."""
        tokens = self.config.global_batch * self.config.seq_len
        start = time.perf_counter()
        loss, grad_norm = self.train_step(self.loader.next_step())
        seconds = time.perf_counter() - start
        if not first:  # the first step of a process pays for compilation and warm-up
            speed.add(tokens, seconds)
        self.progress.step += 1
        self.progress.tokens += tokens
        mfu = self.flops_per_token * tokens / seconds / self.peak_total
        record = {
            "step": self.progress.step,
            "loss": loss,
            "grad_norm": grad_norm,
            "lr": self.scheduler.get_last_lr()[0],
            "tokens": self.progress.tokens,
            "epoch": round(self.loader.epoch, 4),
            "tokens_per_s": round(tokens / seconds, 1),
            "mfu": round(mfu, 5) if math.isfinite(mfu) else None,
            "memory_gib": round(memory_gib(self.device), 3),
            "seconds": round(seconds, 4),
        }
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            self.progress.skipped += 1
            record["skipped"] = True
        if self.log is not None and self.live is not None:
            self.log.write(record)
            self.live.update(record["step"], {**record, "mfu": record["mfu"] or 0.0})
        return record

    def _guard(self, record: dict[str, Any], consecutive_skips: int) -> None:
        """Stop on a non-finite step under "stop", or after max_skips of them in a row under "skip"
        (the update was already withheld; every rank sees the same all-reduced figures)."""
        config = self.config
        if not record.get("skipped"):
            return
        if config.on_nonfinite == "skip" and consecutive_skips <= config.max_skips:
            return
        why = (
            "on_nonfinite = stop"
            if config.on_nonfinite == "stop"
            else f"{consecutive_skips} consecutive skipped steps (max_skips {config.max_skips})"
        )
        loss, norm, step = record["loss"], record["grad_norm"], record["step"]
        raise NonFiniteLoss(
            f"non-finite loss {loss} / gradient norm {norm} at step {step}, stopped by {why}; lower lr, "
            "raise warmup_steps or keep grad_clip on, and resume from the last checkpoint"
        )

    def _evaluate_and_log(self, step: int) -> EvalResult | None:
        result = self.evaluate()
        if result is not None and self.log is not None:
            self.log.write({"step": step, "val_loss": result.loss, "val_bpb": result.bpb})
        return result

    def _describe(self, peak_source: str) -> str:
        config, mc = self.config, self.model_config
        layout = f"dp_replicate {config.dp_replicate} × dp_shard {config.dp_shard} × tp {config.tp}"
        return (
            f"run {self.run.name}: {self.resumed_from}; {mc.num_params() / 1e6:.1f}M parameters; "
            f"{self.world} rank(s) ({layout}); {config.grad_accum} micro-batch(es) of {config.micro_batch} "
            f"per rank per step; {config.dtype}{', compiled' if config.compile else ''}; {self.data.note}; "
            f"peak: {peak_source}"
        )

    def _note(self, text: str) -> None:
        if self.live is not None:
            self.live.note(text)

    def _close(self) -> None:
        if self.live is not None:
            self.live.close()
        if self.log is not None:
            self.log.close()
            title = f"{self.run.name} ({self.model_config.num_params() / 1e6:.1f}M parameters)"
            plot_loss(self.run.metrics_path, self.run.plot_path, title=title)


@dataclass
class _Speed:
    """Tokens and seconds of the timed steps, for the run's average throughput."""

    tokens: int = 0
    seconds: float = 0.0

    def add(self, tokens: int, seconds: float) -> None:
        self.tokens += tokens
        self.seconds += seconds

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0
