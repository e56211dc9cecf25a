"""Memory per GPU: model states under DDP / ZeRO-1/2/3 (FSDP), and activations per layer after
Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large Transformer Models", §4).

Activations of one layer for s tokens, micro-batch b, width h, a heads, tensor parallel t, with
16-bit values and dropout (GPT, the paper's setting):
  no recompute, tensor parallel only      s·b·h·(10 + 24/t + 5·a·s/(h·t))
  + sequence parallel                     s·b·h·(34 + 5·a·s/h)/t
  + selective recompute (scores dropped)  s·b·h·34/t
  full recompute (layer input only)       2·s·b·h (/t with sequence parallel)
The code counts the same tensors term by term, so it also covers SwiGLU (three s·b·f tensors
instead of two), grouped-query attention (smaller K and V), no dropout (no masks) and flash
attention (no s×s scores kept). Under 1F1B the first pipeline stage holds `p` micro-batches in
flight; the interleaved schedule multiplies that by 1 + (p-1)/(p·v).
"""

from __future__ import annotations

from dataclasses import dataclass

from roost.plan.flops import Recompute
from roost.plan.job import Job, Precision
from roost.plan.mesh import Layout, Sharding
from roost.plan.shape import Shape

GIB = 2.0**30
# Of a GPU's memory, what the model may use: the rest goes to the CUDA context, NCCL's buffers,
# cuBLAS workspaces and the caching allocator's fragmentation (PyTorch runs typically peak at 90%).
USABLE_FRACTION = 0.90


@dataclass(frozen=True)
class ModelStates:
    weights: float
    grads: float
    optimizer: float

    @property
    def total(self) -> float:
        return self.weights + self.grads + self.optimizer


def model_states(params: float, precision: Precision, sharding: Sharding, dp: int) -> ModelStates:
    """Bytes of weights, gradients and optimizer state one GPU holds for `params` parameters.

    ZeRO-1 shards the optimizer state over the `dp` replicas, ZeRO-2 also the gradients, ZeRO-3
    (FSDP) also the weights; DDP keeps everything replicated (Rajbhandari et al. 2019, Fig. 1).
    """
    stage = {"ddp": 0, "zero1": 1, "zero2": 2, "zero3": 3}[sharding]
    return ModelStates(
        weights=params * precision.weight_bytes / (dp if stage >= 3 else 1),
        grads=params * precision.grad_bytes / (dp if stage >= 2 else 1),
        optimizer=params * precision.optimizer_bytes / (dp if stage >= 1 else 1),
    )


def layer_activation_bytes(
    shape: Shape,
    seq_len: int,
    micro_batch: int,
    *,
    tp: int = 1,
    sp: bool = False,
    cp: int = 1,
    recompute: Recompute = "none",
    flash_attention: bool = True,
    dropout: bool = False,
    value_bytes: float = 2.0,
) -> float:
    """Bytes one layer keeps from forward to backward, per GPU, for one micro-batch."""
    s, b, h, f = seq_len / cp, micro_batch, shape.hidden, shape.ffn
    sb = s * b
    replicated_div = tp if sp else 1  # sequence parallel splits what sits outside the TP regions
    if recompute == "full":
        return value_bytes * sb * h / replicated_div
    mask = 1.0 if dropout else 0.0  # dropout keeps a one-byte mask per value
    # Outside the tensor-parallel regions: the inputs of both norms, the norms' outputs that feed
    # attention and the MLP, and the two residual dropout masks.
    replicated = sb * h * (4 * value_bytes + 2 * mask)
    # Inside them: Q and K (for QKᵀ), V, the attention output (input of the output projection),
    # and the MLP's intermediates (GeLU input and output, or SwiGLU's gate, up and product).
    partitioned = value_bytes * sb * (2 * h + 2 * shape.kv_dim)
    partitioned += value_bytes * sb * f * (3 if shape.gated_ffn else 2)
    if flash_attention:
        partitioned += 4.0 * shape.heads * sb  # the softmax's log-sum-exp, fp32, instead of scores
    elif recompute != "selective":
        # softmax output, dropout mask and dropout output, each heads × s_local × s_full
        score_values = shape.heads * sb * seq_len
        partitioned += score_values * (value_bytes + (mask + value_bytes if dropout else 0.0))
    return replicated / replicated_div + partitioned / tp


def interleave_factor(pp: int, interleave: int) -> float:
    """Extra in-flight activations of the interleaved schedule on the first stage (Korthikanti §4.2.3)."""
    return 1.0 + (pp - 1) / (pp * interleave) if interleave > 1 else 1.0


def in_flight_microbatches(pp: int, microbatches: int) -> int:
    """Micro-batches whose activations the first stage holds at once under 1F1B."""
    return min(pp, microbatches)


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes on the busiest GPU (the first pipeline stage, or the last where the output layer is)."""

    weights: float
    grads: float
    optimizer: float
    activations: float  # the layers' stored activations, all in-flight micro-batches
    output_activations: float  # logits and loss on the last stage
    transient: float  # gathered FSDP layers, the layer being recomputed

    @property
    def model_states(self) -> float:
        return self.weights + self.grads + self.optimizer

    @property
    def total(self) -> float:
        return self.model_states + self.activations + self.output_activations + self.transient


def stage_params(job: Job, layout: Layout) -> tuple[float, float]:
    """Parameters per GPU on the first and on the last pipeline stage (tensor parallel split)."""
    shape, tp = job.shape, layout.tp
    layers = layout.layers_per_stage(job) * shape.layer_params()
    embedding = shape.embedding_params()
    # A tied output matrix still needs its own copy on the last stage once there is a pipeline.
    output = shape.vocab * shape.hidden if (layout.pp > 1 or not shape.tied_embeddings) else 0
    if layout.pp == 1:
        return (layers + embedding + output) / tp, (layers + embedding + output) / tp
    return (layers + embedding) / tp, (layers + output) / tp


def memory_per_gpu(job: Job, layout: Layout) -> MemoryBreakdown:
    shape, tp = job.shape, layout.tp
    layer_kwargs = dict(
        tp=tp,
        sp=layout.sp,
        cp=layout.cp,
        flash_attention=job.flash_attention,
        dropout=job.dropout,
        value_bytes=job.precision.activation_bytes,
    )
    layers = layout.layers_per_stage(job)
    recomputed = layout.recomputed_layers(job)
    kept_mode = "none" if layout.recompute == "full" else layout.recompute
    stage_layers = recomputed * layer_activation_bytes(
        shape, job.seq_len, layout.micro_batch, recompute="full", **layer_kwargs
    ) + (layers - recomputed) * layer_activation_bytes(
        shape, job.seq_len, layout.micro_batch, recompute=kept_mode, **layer_kwargs
    )
    in_flight = in_flight_microbatches(layout.pp, layout.microbatches(job))
    first_acts = stage_layers * in_flight * interleave_factor(layout.pp, layout.interleave)
    last_acts = stage_layers  # the last stage finishes each micro-batch before the next
    tokens = job.seq_len / layout.cp * layout.micro_batch
    # fp32 logits for the loss plus their 16-bit copy, split over the vocabulary by tensor parallel
    logits = tokens * shape.vocab / tp * (4.0 + job.precision.activation_bytes)

    # Working set that lives only during one layer's step: FSDP's gathered weights (this layer
    # and the prefetched next) and this layer's unreduced gradients, and a recomputed layer's
    # full activations.
    transient = 0.0
    if layout.sharding == "zero3":
        precision = job.precision
        transient += shape.layer_params() / tp * (2 * precision.weight_bytes + precision.grad_bytes)
    if layout.recompute != "none":
        transient += layer_activation_bytes(shape, job.seq_len, layout.micro_batch, **layer_kwargs)

    shard_group = layout.dp * layout.cp  # context parallel ranks hold the same weights
    first_params, last_params = stage_params(job, layout)
    candidates = []
    for params, acts, out in (
        (first_params, first_acts, 0.0 if layout.pp > 1 else logits),
        (last_params, last_acts, logits),
    ):
        states = model_states(params, job.precision, layout.sharding, shard_group)
        candidates.append(
            MemoryBreakdown(states.weights, states.grads, states.optimizer, acts, out, transient)
        )
    return max(candidates, key=lambda m: m.total)


def fits(memory: MemoryBreakdown, hbm_bytes: float) -> bool:
    return memory.total <= USABLE_FRACTION * hbm_bytes
