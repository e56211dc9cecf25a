"""One way to spread a training job over GPUs: tensor, context, data and pipeline degrees, how
data parallelism shards its state, micro-batch, recompute and pipeline interleaving.

Ranks are laid out tensor-innermost (tp, then cp, then dp, then pp outermost), as Megatron-LM and
torchtitan do, so tensor parallelism stays inside a server's NVLink domain when it fits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from roost.plan.flops import RECOMPUTE_MODES, Recompute
from roost.plan.job import Job

Sharding = Literal["ddp", "zero1", "zero2", "zero3"]
SHARDINGS: tuple[Sharding, ...] = ("ddp", "zero1", "zero2", "zero3")
# FSDP (FULL_SHARD) is ZeRO-3 by another name.
SHARDING_ALIASES: dict[str, Sharding] = {"fsdp": "zero3", "distributed-optimizer": "zero1"}


def sharding(name: str) -> Sharding:
    name = SHARDING_ALIASES.get(name, name)
    if name not in SHARDINGS:
        raise ValueError(f"unknown sharding {name!r}; choose one of {', '.join(SHARDINGS)} or fsdp")
    return name  # type: ignore[return-value]


@dataclass(frozen=True)
class Layout:
    tp: int = 1
    pp: int = 1
    cp: int = 1
    dp: int = 1
    micro_batch: int = 1
    sharding: Sharding = "zero1"
    recompute: Recompute = "none"
    # Under "full": how many layers of each stage are recomputed (0: all of them); the others keep
    # their activations. Megatron-LM's --recompute-num-layers; just enough to fit is fastest.
    recompute_layers: int = 0
    sequence_parallel: bool = True  # only matters when tp > 1
    interleave: int = 1  # virtual pipeline stages per GPU (interleaved 1F1B); 1 is plain 1F1B

    def __post_init__(self) -> None:
        for name in ("tp", "pp", "cp", "dp", "micro_batch", "interleave"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.sharding not in SHARDINGS:
            raise ValueError(f"unknown sharding {self.sharding!r}")
        if self.recompute not in RECOMPUTE_MODES:
            raise ValueError(f"unknown recompute mode {self.recompute!r}")
        if self.recompute_layers and self.recompute != "full":
            raise ValueError("recompute_layers counts fully recomputed layers; it needs recompute='full'")
        if self.interleave > 1 and self.pp == 1:
            raise ValueError("pipeline interleaving needs a pipeline (pp > 1)")

    @property
    def gpus(self) -> int:
        return self.tp * self.pp * self.cp * self.dp

    @property
    def sp(self) -> bool:
        """Sequence parallelism is on (it needs tensor parallelism to split over)."""
        return self.sequence_parallel and self.tp > 1

    def microbatches(self, job: Job) -> int:
        """Micro-batches each pipeline runs per optimizer step (gradient accumulation steps)."""
        return job.global_batch // (self.dp * self.micro_batch)

    def layers_per_stage(self, job: Job) -> int:
        """Layers on the fullest pipeline stage."""
        return math.ceil(job.shape.layers / self.pp)

    def recomputed_layers(self, job: Job) -> int:
        """Layers of the fullest stage that recompute their forward in backward."""
        if self.recompute != "full":
            return 0
        stage = self.layers_per_stage(job)
        return min(self.recompute_layers, stage) if self.recompute_layers else stage

    def problems(self, job: Job) -> list[str]:
        """Why this layout cannot run `job` (empty when it can), each reason saying what to change."""
        shape, found = job.shape, []
        if shape.heads % self.tp or shape.kv_count % self.tp:
            found.append(
                f"tensor parallel degree {self.tp} does not divide {shape.heads} heads "
                f"and {shape.kv_count} key/value heads"
            )
        if shape.ffn % self.tp:
            found.append(f"tensor parallel degree {self.tp} does not divide feed-forward width {shape.ffn}")
        if self.pp * self.interleave > shape.layers:
            found.append(f"{self.pp} stages × {self.interleave} chunks exceed {shape.layers} layers")
        if job.seq_len % (2 * self.cp) and self.cp > 1:
            found.append(f"context parallel degree {self.cp} needs seq_len divisible by {2 * self.cp}")
        if job.global_batch % (self.dp * self.micro_batch):
            found.append(
                f"global batch {job.global_batch} is not a multiple of dp {self.dp} × micro-batch "
                f"{self.micro_batch}"
            )
        elif self.interleave > 1 and self.microbatches(job) % self.pp:
            found.append(
                f"interleaved pipelining needs micro-batches ({self.microbatches(job)}) "
                f"divisible by pp {self.pp}"
            )
        return found

    def describe(self) -> str:
        parts = [f"tp{self.tp}", f"pp{self.pp}" + (f"×{self.interleave}" if self.interleave > 1 else "")]
        if self.cp > 1:
            parts.append(f"cp{self.cp}")
        parts.append(f"dp{self.dp}")
        recompute = self.recompute + (f"({self.recompute_layers} layers)" if self.recompute_layers else "")
        return " ".join(parts) + f" {self.sharding} mb{self.micro_batch} recompute={recompute}"
