"""Time of one optimizer step for a job laid out on a cluster: compute plus communication.

The model, per GPU on the busiest pipeline stage:
- compute of a layer = matmul and attention FLOPs / (peak × matmul efficiency) + element-wise
  bytes (norms, residuals, activations, softmax and dropout on materialised scores) / (HBM
  bandwidth × memory efficiency); backward costs twice the forward, recompute adds forward work;
- tensor parallel: 4 all-reduces of the layer's activations per micro-batch (6 under full
  recompute), or the same bytes as all-gather + reduce-scatter with sequence parallel; exposed;
- context parallel: ring exchange of K and V, hidden behind attention where it can be;
- pipeline: 1F1B over m micro-batches with bubble (p-1)/v micro-batch times (fraction
  (p-1)/(m+p-1) for v = 1), plus the activation sends between stages;
- data parallel: gradient all-reduce (DDP), reduce-scatter + all-gather (ZeRO-1/2), and per
  micro-batch weight all-gathers + gradient reduce-scatter (ZeRO-3 / FSDP), a share `overlap`
  of each hidden under the compute it can run alongside;
- collectives are rings, over NVLink inside a server and bound by each GPU's NIC across servers.
The efficiencies are the calibration constants (`roost.plan.calibration`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from roost.plan.calibration import Calibration
from roost.plan.flops import attention_factor
from roost.plan.hardware import GPU
from roost.plan.job import Job
from roost.plan.memory import stage_params
from roost.plan.mesh import Layout

Collective = Literal["all_reduce", "all_gather", "reduce_scatter", "send"]
# Bytes an Adam step moves per parameter: read fp32 master, m, v and the gradient, write the first
# three back and the 16-bit copy.
OPTIMIZER_BYTES_PER_PARAM = 4 * 3 * 2 + 4 + 2


@dataclass(frozen=True)
class StepTime:
    """Seconds of one optimizer step, by what they are spent on (they add up to `total`)."""

    compute: float  # matmuls and element-wise kernels, all micro-batches, recompute included
    tensor_comm: float
    context_comm: float
    pipeline_comm: float
    bubble: float
    data_comm: float  # the part of data-parallel / FSDP traffic not hidden under compute
    optimizer: float

    @property
    def total(self) -> float:
        return (
            self.compute
            + self.tensor_comm
            + self.context_comm
            + self.pipeline_comm
            + self.bubble
            + self.data_comm
            + self.optimizer
        )


def collective_seconds(
    kind: Collective, bytes_per_gpu: float, size: int, stride: int, gpu: GPU, calib: Calibration
) -> float:
    """Ring time of a collective over `size` ranks `stride` apart, each holding `bytes_per_gpu`
    (for "send", one transfer to the rank `stride` away).

    Inside one server the ring runs over NVLink. Across servers each rank's share of the ring
    crosses its own NIC (the rail bound). NCCL's multi-rail rings can beat that for groups with
    several members per server, but published ZeRO-3 runs stay below it (docs/planner.md), so the
    planner keeps the bound; it is exact when tensor parallelism fills the server.
    """
    if size <= 1 or bytes_per_gpu <= 0:
        return 0.0
    within_server = size * stride <= gpu.scale_up_gpus if kind != "send" else stride < gpu.scale_up_gpus
    bandwidth = (
        gpu.scale_up_gbps * calib.scale_up if within_server else gpu.network_gbps * calib.network
    ) * 1e9
    if kind == "send":
        return bytes_per_gpu / bandwidth
    factor = 2.0 if kind == "all_reduce" else 1.0
    return factor * (size - 1) / size * bytes_per_gpu / bandwidth


def elementwise_bytes_per_token(job: Job, layout: Layout) -> tuple[float, float]:
    """HBM bytes the memory-bound kernels of one layer move per token in the forward pass, per GPU.

    Returns (everything, the attention-score part alone), the second being what selective
    recompute repeats. Counted kernel by kernel for 16-bit values: each norm reads and writes h;
    each residual add reads 2h and writes h (a fused dropout adds its 1-byte mask); the MLP
    activation reads and writes the f-wide tensors (2 for GeLU, 3 for SwiGLU); rotary embeddings
    read and write Q and K; without a fused attention kernel, the s-long score rows per head are
    written by QKᵀ, read and written by softmax (and dropout, with its mask) and read by the
    weighted sum. Tensor parallel splits what is inside its regions, sequence parallel the rest.
    """
    shape, v = job.shape, job.precision.activation_bytes
    h, f, tp = shape.hidden, shape.ffn, layout.tp
    mask = 1.0 if job.dropout else 0.0
    outside = 2 * (2 * v * h) + 2 * (3 * v * h + mask * h)
    inside = v * f * (3 if shape.gated_ffn else 2)
    if shape.positions == 0:  # rotary: read and write Q and K
        inside += 2 * v * (h + shape.kv_dim)
    scores = 0.0
    if not job.flash_attention:
        score_row = shape.heads * job.seq_len  # per token, all heads
        scores = score_row * 4 * v + (score_row * (2 * v + mask) if job.dropout else 0.0)
    outside /= tp if layout.sp else 1
    return outside + (inside + scores) / tp, scores / tp


def critical_stage(layers: int, pp: int, layer_s: float, head_s: float) -> tuple[int, bool]:
    """Layers on the slowest stage, and whether it also runs the output layer, when layers are
    split as evenly as the output layer on the last stage allows."""
    if pp == 1:
        return layers, True
    best: tuple[float, int, bool] | None = None
    for last in range(1, math.ceil(layers / pp) + 1):
        others = math.ceil((layers - last) / (pp - 1))
        slowest = max((others * layer_s, others, False), (last * layer_s + head_s, last, True))
        if best is None or slowest[0] < best[0]:
            best = slowest
    assert best is not None
    return best[1], best[2]


def step_time(job: Job, layout: Layout, gpu: GPU, calib: Calibration) -> StepTime:
    shape, tp, cp, pp, v = job.shape, layout.tp, layout.cp, layout.pp, layout.interleave
    act = job.precision.activation_bytes
    matmul_rate = gpu.peak_flops(job.fp8) * calib.matmul
    hbm_rate = gpu.hbm_gbps * 1e9 * calib.memory
    tokens = layout.micro_batch * job.seq_len / cp  # per GPU per micro-batch

    # One layer, forward, one micro-batch.
    executed = "causal" if job.flash_attention else "full"  # fused kernels skip the masked half
    gemm_s = 2.0 * shape.layer_matmul_params() * tokens / tp / matmul_rate
    elementwise, score_bytes = elementwise_bytes_per_token(job, layout)
    # The attention core: a fused kernel is bound by its FLOPs; unfused, the batched matmuls over
    # s×s scores and the softmax between them are bound by moving the scores (roofline maximum).
    attn_s = max(
        attention_factor(executed) * job.seq_len * shape.hidden * tokens / tp / matmul_rate,
        score_bytes * tokens / hbm_rate,
    )
    forward_s = gemm_s + attn_s + (elementwise - score_bytes) * tokens / hbm_rate
    # Recompute: selective repeats the attention core in every layer; full repeats the whole
    # forward (and its two tensor-parallel collectives) in the recomputed share of the layers.
    stage_layers = layout.layers_per_stage(job)
    recomputed_share = layout.recomputed_layers(job) / stage_layers
    recompute_s = attn_s if layout.recompute == "selective" else recomputed_share * forward_s
    layer_compute = 3.0 * forward_s + recompute_s

    activation_msg = tokens * shape.hidden * act
    tp_collectives = 4 + 2 * recomputed_share
    layer_tp = tp_collectives * collective_seconds("all_reduce", activation_msg, tp, 1, gpu, calib)
    # Ring attention: each rank receives the other ranks' K and V in forward, and sends back their
    # gradients in backward; it overlaps with the attention it feeds.
    kv_msg = tokens * 2 * shape.kv_dim / tp * act
    kv_s = 3 * (cp - 1) * collective_seconds("send", kv_msg, cp, tp, gpu, calib)
    layer_cp = max(0.0, kv_s - 3 * attn_s)

    # The output layer and loss, on the last stage: logits matmul, and fp32 softmax over the vocab.
    head_forward = 2.0 * shape.vocab * shape.hidden * tokens / tp / matmul_rate
    head_forward += tokens * shape.vocab / tp * (act + 2 * 4) / hbm_rate
    head_s = 3.0 * head_forward

    n_layers, has_head = critical_stage(shape.layers, pp, layer_compute + layer_tp + layer_cp, head_s)
    mb_compute = n_layers * layer_compute + (head_s if has_head else 0.0)
    mb_tp, mb_cp = n_layers * layer_tp, n_layers * layer_cp
    mb_pp = 0.0
    if pp > 1:  # forward activations out, their gradients back, once per model chunk
        stride = tp * cp * layout.dp
        mb_pp = 2 * v * collective_seconds("send", activation_msg / tp, pp, stride, gpu, calib)
    mb_total = mb_compute + mb_tp + mb_cp + mb_pp

    m = layout.microbatches(job)
    bubble = (pp - 1) / v * mb_total

    # Data parallel (and context parallel: its ranks hold the same weights) reduces gradients.
    group = layout.dp * cp
    params = max(stage_params(job, layout))
    grad_bytes, weight_bytes = params * job.precision.grad_bytes, params * job.precision.weight_bytes

    def hidden_under(comm: float, window: float) -> float:
        return comm - calib.overlap * min(comm, window)

    def coll(kind: Collective, nbytes: float) -> float:
        return collective_seconds(kind, nbytes, group, tp, gpu, calib)

    backward_mb = mb_compute * 2.0 / 3.0
    if layout.sharding == "ddp":
        data = hidden_under(coll("all_reduce", grad_bytes), backward_mb)
    elif layout.sharding == "zero1":
        data = hidden_under(coll("reduce_scatter", grad_bytes) + coll("all_gather", weight_bytes), mb_total)
    elif layout.sharding == "zero2":
        data = m * hidden_under(coll("reduce_scatter", grad_bytes), backward_mb)
        data += hidden_under(coll("all_gather", weight_bytes), mb_total - backward_mb)
    else:  # zero3: gather weights for forward and again for backward, scatter gradients
        per_mb = 2 * coll("all_gather", weight_bytes) + coll("reduce_scatter", grad_bytes)
        data = m * hidden_under(per_mb, mb_total)

    shard = group if layout.sharding != "ddp" else 1
    optimizer = params / shard * OPTIMIZER_BYTES_PER_PARAM / hbm_rate
    return StepTime(
        compute=m * mb_compute,
        tensor_comm=m * mb_tp,
        context_comm=m * mb_cp,
        pipeline_comm=m * mb_pp,
        bubble=bubble,
        data_comm=data,
        optimizer=optimizer,
    )
