"""FLOPs per trained token, in a stated convention, and the utilisation figures built on them.

A matmul of (m×k)·(k×n) is 2mkn FLOPs; training is 3× the forward (forward, backward through the
activations, backward through the weights). Sources disagree on attention, so it is a choice:
`"full"` counts QKᵀ and the weighted sum over the whole s×s square, 4·s·h per layer and token
(Megatron-LM, PaLM, torchtitan); `"causal"` the half a causal mask keeps; `"none"` leaves it out
(Kaplan's and Chinchilla's 6N). Model FLOPs (MFU) count the work the model needs; hardware FLOPs
(HFU) add what recomputation repeats: a whole forward of the layers under full recompute (Megatron
2021 reports this, eq. 3: 96·B·s·l·h²·(1 + s/6h + V/16lh)), the attention core under selective.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from roost.model.config import AttentionFlops
from roost.plan.shape import Shape

Recompute = Literal["none", "selective", "full"]
RECOMPUTE_MODES: tuple[Recompute, ...] = ("none", "selective", "full")
SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class ForwardFlops:
    """Forward FLOPs per token, by where they are spent (all layers together)."""

    layer_matmul: float  # the layers' weight matmuls
    attention: float  # scores and their weighted sum, in the chosen convention
    logits: float  # the output projection onto the vocabulary

    @property
    def total(self) -> float:
        return self.layer_matmul + self.attention + self.logits


def attention_factor(attention: AttentionFlops) -> float:
    """Forward attention FLOPs per token, per layer, in units of seq_len × hidden."""
    if attention not in ("full", "causal", "none"):
        raise ValueError(f"attention convention must be full, causal or none, not {attention!r}")
    return {"full": 4.0, "causal": 2.0, "none": 0.0}[attention]


def forward_flops(shape: Shape, seq_len: int, attention: AttentionFlops = "full") -> ForwardFlops:
    return ForwardFlops(
        layer_matmul=2.0 * shape.layer_matmul_params() * shape.layers,
        attention=attention_factor(attention) * seq_len * shape.hidden * shape.layers,
        logits=2.0 * shape.vocab * shape.hidden,
    )


def recomputed_flops(fwd: ForwardFlops, recompute: Recompute) -> float:
    """Forward FLOPs per token that recomputation runs a second time (the output layer never)."""
    if recompute == "full":
        return fwd.layer_matmul + fwd.attention
    if recompute == "selective":
        return fwd.attention
    if recompute == "none":
        return 0.0
    raise ValueError(f"recompute must be one of {', '.join(RECOMPUTE_MODES)}, not {recompute!r}")


def model_flops_per_token(shape: Shape, seq_len: int, attention: AttentionFlops = "full") -> float:
    """Training FLOPs per token the model itself needs (the numerator of MFU)."""
    return 3.0 * forward_flops(shape, seq_len, attention).total


def hardware_flops_per_token(
    shape: Shape, seq_len: int, attention: AttentionFlops = "full", recompute: Recompute = "none"
) -> float:
    """Training FLOPs per token the GPUs execute, recomputation included (the numerator of HFU)."""
    fwd = forward_flops(shape, seq_len, attention)
    return 3.0 * fwd.total + recomputed_flops(fwd, recompute)


def utilization(tokens_per_s: float, flops_per_token: float, gpus: int, peak_flops: float) -> float:
    """Fraction of the cluster's peak: MFU with model FLOPs per token, HFU with hardware FLOPs."""
    return tokens_per_s * flops_per_token / (gpus * peak_flops)


def training_days(total_flops: float, gpus: int, flops_per_gpu: float) -> float:
    """Wall-clock days to execute `total_flops` at a sustained rate per GPU (no failures)."""
    return total_flops / (gpus * flops_per_gpu) / SECONDS_PER_DAY
