"""What is being trained, apart from how it is spread: the shape, sequence length, global batch,
the numeric recipe (bytes per parameter and per activation) and the attention kernel."""

from __future__ import annotations

from dataclasses import dataclass, field

from roost.plan.shape import Shape


@dataclass(frozen=True)
class Precision:
    """Bytes per parameter of each model state, and per stored activation value."""

    name: str
    weight_bytes: float  # the copy the matmuls read
    grad_bytes: float  # the gradient buffer, which is also what data parallelism reduces
    optimizer_bytes: float  # fp32 master weights (when kept apart) + Adam's two moments
    activation_bytes: float = 2.0

    @property
    def state_bytes(self) -> float:
        return self.weight_bytes + self.grad_bytes + self.optimizer_bytes


# ZeRO (Rajbhandari et al. 2019) §3.1: fp16 weights and gradients, fp32 master + momentum +
# variance (K = 12), 16 bytes per parameter.
ZERO_MIXED = Precision("zero", weight_bytes=2, grad_bytes=2, optimizer_bytes=12)
# Megatron-LM (and Korthikanti et al. 2022, Fig. 1): 16-bit weights, gradients accumulated and
# reduced in fp32 ("main_grad"), fp32 master + Adam, 18 bytes per parameter. Also an upper bound
# for FSDP2 with fp32 sharded parameters (4 + 4 + 8 = 16), so the planner's default.
MEGATRON_MIXED = Precision("megatron", weight_bytes=2, grad_bytes=4, optimizer_bytes=12)
PRECISIONS: dict[str, Precision] = {p.name: p for p in (ZERO_MIXED, MEGATRON_MIXED)}


@dataclass(frozen=True)
class Job:
    shape: Shape
    seq_len: int
    global_batch: int  # sequences per optimizer step
    precision: Precision = field(default=MEGATRON_MIXED)
    flash_attention: bool = True  # fused attention: no s×s scores kept, causal half computed
    dropout: bool = False  # GPT-era training kept dropout masks; Llama-era training has none
    fp8: bool = False  # matmuls at the fp8 peak (where the GPU has one)

    def __post_init__(self) -> None:
        if self.seq_len <= 0 or self.global_batch <= 0:
            raise ValueError("sequence length and global batch must be positive")

    @property
    def tokens_per_step(self) -> int:
        return self.seq_len * self.global_batch
