"""AdamW with decay groups, and the learning-rate schedules (warmup + cosine, WSD, constant).

Weight decay applies to matrices (linear and embedding weights) and not to the RMSNorm gains, as
nanoGPT and Llama do: decaying a gain pulls it toward zero, which fights the normalisation.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.distributed.tensor import DTensor
from torch.optim.lr_scheduler import LambdaLR

from roost.train.config import TrainConfig


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    params = [p for p in model.parameters() if p.requires_grad]  # a tied matrix appears once
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    # The fused kernel is one pass over all parameters (CPU and CUDA); DTensor parameters (FSDP,
    # TP) take the multi-tensor path, which handles them.
    fused = not any(isinstance(p, DTensor) for p in params)
    return torch.optim.AdamW(
        groups,
        lr=config.lr,
        betas=(config.beta1, config.beta2),
        eps=config.eps,
        fused=fused,
        foreach=None if fused else True,
    )


def lr_multiplier(config: TrainConfig) -> Callable[[int], float]:
    """The schedule as a function of optimizer steps taken, times `config.lr`."""
    warmup, total, floor = config.warmup_steps, config.max_steps, config.min_lr_ratio
    decay_start = total - max(1, round(config.decay_fraction * total))

    def multiplier(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup  # the first step already moves, at lr / warmup
        if config.schedule == "constant":
            return 1.0
        if config.schedule == "wsd":
            if step < max(decay_start, warmup):
                return 1.0
            progress = (step - max(decay_start, warmup)) / max(1, total - max(decay_start, warmup))
            return 1.0 - (1.0 - floor) * min(progress, 1.0)
        progress = min((step - warmup) / max(1, total - warmup), 1.0)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return multiplier


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> LambdaLR:
    return LambdaLR(optimizer, lr_multiplier(config))
