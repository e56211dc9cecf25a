"""The cluster planner: which model, laid out how, trains for how long, at what cost.

Given a GPU type and count, and any of a model (preset or parameter count), a token budget or a
number of days: pick the layout (`layout.search`), the tokens (given, what the days allow, or
Chinchilla-optimal for the model), account for interruptions and checkpoints (`reliability`), and
price the GPU-hours. With neither a model nor tokens, it sizes a compute-optimal model for what
the cluster does in the days given, capped by the firehose's data when that is known.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from roost.model.config import ModelConfig, preset
from roost.plan import sizing
from roost.plan.calibration import Calibration, calibration
from roost.plan.flops import SECONDS_PER_DAY, forward_flops, recomputed_flops, utilization
from roost.plan.hardware import GPU, gpu
from roost.plan.job import MEGATRON_MIXED, Job
from roost.plan.layout import Candidate, search
from roost.plan.reliability import Reliability, reliability
from roost.plan.shape import Shape
from roost.plan.trainer_config import train_settings, trainer_layout

DEFAULT_PRICE_PER_GPU_HOUR = 2.0  # USD; a multi-year H100 reservation, roughly, in 2025
# A first guess of model FLOPs utilisation, used only to size a model before its layout is known.
SIZING_MFU_GUESS = 0.40
LLAMA_VOCAB = 128_256


@dataclass(frozen=True)
class DataBudget:
    """The firehose's yield: posts per day × tokens per post × days of history, after curation."""

    posts_per_day: float
    tokens_per_post: float
    days: float
    curation_loss: float = 0.5

    @property
    def unique_tokens(self) -> float:
        return sizing.unique_tokens(self.posts_per_day, self.tokens_per_post, self.days, self.curation_loss)


@dataclass(frozen=True)
class Plan:
    gpu: GPU
    gpus: int
    model_name: str
    model: ModelConfig
    best: Candidate
    alternatives: list[Candidate]
    trainer: Candidate | None  # the fastest layout `roost train` itself runs (no pipeline)
    tokens: float
    sizing: sizing.Sizing  # the compute-optimal view of the budget (before the data caps the tokens)
    data_limited: bool  # the model would train on more than MAX_USEFUL_EPOCHS of the firehose
    reliability: Reliability
    days: float  # wall-clock, interruptions and checkpoints included
    days_budget: float | None
    price_per_gpu_hour: float
    data: DataBudget | None

    @property
    def params(self) -> float:
        return float(self.model.num_params())

    @property
    def gpu_hours(self) -> float:
        return self.gpus * self.days * 24

    @property
    def cost(self) -> float:
        return self.gpu_hours * self.price_per_gpu_hour

    @property
    def tokens_per_s(self) -> float:
        return self.best.tokens_per_s

    @property
    def mfu(self) -> float:
        return self.best.mfu(self.gpu)

    @property
    def hfu(self) -> float:
        """Hardware FLOPs utilisation: MFU plus the forward work recompute repeats."""
        job, layout = self.best.job, self.best.layout
        fwd = forward_flops(job.shape, job.seq_len, "causal")
        share = 1.0
        if layout.recompute == "full":  # possibly only some of each stage's layers
            share = layout.recomputed_layers(job) / layout.layers_per_stage(job)
        per_token = 3 * fwd.total + share * recomputed_flops(fwd, layout.recompute)
        return utilization(self.tokens_per_s, per_token, self.gpus, self.gpu.peak_flops(job.fp8))

    @property
    def checkpoint_every_steps(self) -> int:
        return max(1, round(self.reliability.interval_s / self.best.step.total))

    def train_settings(self) -> dict[str, Any]:
        """`roost train` settings for this plan, on the trainer's own layout (see trainer_config)."""
        if self.trainer is None:
            raise ValueError(
                f"no layout roost train supports (FSDP2/DDP + TP, no pipeline) fits {self.model_name} "
                f"on {self.gpus} × {self.gpu.name}"
            )
        return train_settings(
            self.model_name, self.model, self.trainer, self.tokens, self.reliability.interval_s
        )


def default_batch_tokens(params: float, gpus: int, seq_len: int) -> int:
    """Global batch in tokens: by model size (Llama 2 70B used 4M, Llama 3 405B 16M; smaller models
    train well on less), and at least one sequence per eight GPUs so that a large cluster has a
    data-parallel replica for each server's worth of tensor parallelism (Llama 3 405B: 16,384 GPUs,
    2,048 sequences of 8,192)."""
    by_size = 2**21 if params < 3e9 else 2**22 if params < 30e9 else 2**23 if params < 200e9 else 2**24
    return max(by_size, gpus * seq_len // 8)


def model_for_params(params: float, seq_len: int = 8192) -> ModelConfig:
    """A Llama-3-proportioned model of about `params` parameters: head width 128, 8 key/value
    heads, SwiGLU width 3.5× the model width, and width/depth near 128 as in Llama 3 8B and 405B."""
    best: tuple[float, ModelConfig] | None = None
    for dim in range(1024, 32768 + 1, 1024):
        heads = dim // 128
        probe = ModelConfig(
            vocab_size=LLAMA_VOCAB,
            dim=dim,
            n_layers=1,
            n_heads=heads,
            n_kv_heads=min(8, heads),
            ffn_dim=int(3.5 * dim),
            max_seq_len=seq_len,
            rope_theta=500_000.0,
        )
        layers = round((params - 2 * LLAMA_VOCAB * dim) / probe.layer_params())
        if layers < 1:
            continue
        score = abs(math.log(dim / layers / 128))
        if best is None or score < best[0]:
            best = (score, probe.replace(n_layers=layers))
    if best is None:
        raise ValueError(f"{params:.3g} parameters is too small for a Llama-shaped model")
    return best[1]


def make_plan(
    gpu_name: str,
    gpus: int,
    *,
    days: float | None = None,
    model: str | None = None,
    params: float | None = None,
    tokens: float | None = None,
    seq_len: int | None = None,
    batch_tokens: int | None = None,
    price_per_gpu_hour: float = DEFAULT_PRICE_PER_GPU_HOUR,
    data: DataBudget | None = None,
    fp8: bool = False,
    calib: Calibration | None = None,
    alternatives: int = 4,
) -> Plan:
    """Plan a run on `gpus` × `gpu_name`. The model is `model` (a preset), `params` (a Llama-shaped
    model of that size) or, with neither, compute-optimal for what the cluster does in `days`. The
    tokens are `tokens`, else what `days` allow, else Chinchilla-optimal for the model; `data`
    caps them at four epochs of the firehose. Raises ValueError with what to change."""
    if gpus < 1:
        raise ValueError("the cluster needs at least one GPU")
    if model and params:
        raise ValueError("give a model preset or a parameter count, not both")
    if days is not None and days <= 0:
        raise ValueError("days must be positive")
    hw = gpu(gpu_name)
    calib = calib or calibration(hw.generation)
    unique = data.unique_tokens if data else None

    if model:
        name, config = model, preset(model)
    elif params:
        name, config = f"{params / 1e9:.3g}B", model_for_params(params)
    else:
        if days is None or tokens is not None:
            raise ValueError("without a model or parameter count, give --days (and no --tokens) to size one")
        # Size for the compute the cluster delivers in `days`, then once more with the throughput
        # the chosen layout actually reaches.
        utilisation = SIZING_MFU_GUESS
        for _ in range(2):
            compute = gpus * hw.peak_flops(fp8) * utilisation * days * SECONDS_PER_DAY
            config = model_for_params(sizing.size_for_compute(compute, unique).params)
            first = _laid_out(config, seq_len, batch_tokens, hw, gpus, calib, fp8, 1)[0]
            utilisation = first.mfu(hw)
        name = f"compute-optimal {config.num_params() / 1e9:.3g}B"
    if seq_len is not None:
        config = config.replace(max_seq_len=seq_len)

    candidates = _laid_out(config, seq_len, batch_tokens, hw, gpus, calib, fp8, alternatives + 1)
    best = candidates[0]
    trainer = trainer_layout(
        dataclasses.replace(best.job, global_batch=_batch(config, seq_len, batch_tokens, gpus)),
        gpus,
        hw,
        calib,
    )
    n = float(config.num_params())
    checkpoint_bytes = n * (MEGATRON_MIXED.weight_bytes + MEGATRON_MIXED.optimizer_bytes)
    goodput = reliability(gpus, checkpoint_bytes, 1.0).goodput  # Daly's ratio does not depend on length
    if tokens is None:
        if days is not None:
            tokens = best.tokens_per_s * days * SECONDS_PER_DAY * goodput
        else:
            tokens = sizing.optimal_tokens(sizing.optimal_compute_for(n))
    # The budget in Chinchilla's C = 6ND, before the data caps what this model can use of it.
    budget = sizing.size_for_compute(6 * n * tokens, unique)
    data_limited = unique is not None and tokens > sizing.MAX_USEFUL_EPOCHS * unique
    if data_limited:
        tokens = sizing.MAX_USEFUL_EPOCHS * unique
    solve_s = tokens / best.tokens_per_s
    rel = reliability(gpus, checkpoint_bytes, solve_s)
    return Plan(
        gpu=hw,
        gpus=gpus,
        model_name=name,
        model=config,
        best=best,
        alternatives=candidates[1:],
        trainer=trainer,
        tokens=tokens,
        sizing=budget,
        data_limited=data_limited,
        reliability=rel,
        days=solve_s / rel.goodput / SECONDS_PER_DAY,
        days_budget=days,
        price_per_gpu_hour=price_per_gpu_hour,
        data=data,
    )


def _laid_out(
    config: ModelConfig,
    seq_len: int | None,
    batch_tokens: int | None,
    hw: GPU,
    gpus: int,
    calib: Calibration,
    fp8: bool,
    top: int,
) -> list[Candidate]:
    seq = seq_len or config.max_seq_len
    job = Job(
        Shape.from_model(config),
        seq,
        _batch(config, seq_len, batch_tokens, gpus),
        MEGATRON_MIXED,
        flash_attention=True,
        fp8=fp8,
    )
    found = search(job, gpus, hw, calib, top=top, flexible_batch=True)
    if not found:
        raise ValueError(
            f"no layout of {config.num_params() / 1e9:.3g}B parameters fits {gpus} × {hw.name} "
            f"({hw.hbm_gib:g} GiB each) with a global batch near {job.global_batch} sequences; "
            "use more GPUs, a smaller model or a larger batch"
        )
    return found


def _batch(config: ModelConfig, seq_len: int | None, batch_tokens: int | None, gpus: int) -> int:
    """The target global batch in sequences (the search rounds it to fit the data-parallel degree)."""
    seq = seq_len or config.max_seq_len
    return max(1, round((batch_tokens or default_batch_tokens(config.num_params(), gpus, seq)) / seq))
