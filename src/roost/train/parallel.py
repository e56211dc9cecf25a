"""Parallelism, applied from outside to the unmodified `Llama`, one short function each, in one
fixed order (torchtitan's): tensor parallel, activation checkpointing, compile, then FSDP2 or DDP.

The mesh has three named dimensions, ("dp_replicate", "dp_shard", "tp"); a degree of 1 leaves that
dimension idle. dp_shard > 1 is FSDP2 (HSDP when dp_replicate > 1 too), dp_replicate > 1 alone is
DDP, and tp > 1 is Megatron-style tensor parallelism with sequence parallelism on the norms.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
from torch.distributed.tensor import Replicate, Shard
from torch.distributed.tensor.parallel import (
    ColwiseParallel,
    PrepareModuleInput,
    RowwiseParallel,
    SequenceParallel,
    parallelize_module,
)
from torch.nn.parallel import DistributedDataParallel

from roost.model.llama import Llama
from roost.train.config import TrainConfig

MESH_DIMS = ("dp_replicate", "dp_shard", "tp")


def build_mesh(config: TrainConfig, device_type: str) -> DeviceMesh | None:
    """The device mesh for a launched process group; None for a plain single process."""
    if not dist.is_initialized():
        return None
    shape = (config.dp_replicate, config.dp_shard, config.tp)
    return init_device_mesh(device_type, shape, mesh_dim_names=MESH_DIMS)


def dp_rank_and_size(mesh: DeviceMesh | None) -> tuple[int, int]:
    """This rank's place among the data-parallel ranks (ranks of one TP group share data)."""
    if mesh is None:
        return 0, 1
    shard = mesh["dp_shard"].size()
    rank = mesh.get_local_rank("dp_replicate") * shard + mesh.get_local_rank("dp_shard")
    return rank, mesh["dp_replicate"].size() * shard


def apply_tp(model: Llama, tp_mesh: DeviceMesh) -> None:
    """Column-parallel into each block's attention and feed-forward, row-parallel out; the norms
    and the residual stream are sharded along the sequence between them (sequence parallel)."""
    parallelize_module(
        model,
        tp_mesh,
        {
            "tok_embeddings": RowwiseParallel(input_layouts=Replicate(), output_layouts=Shard(1)),
            "norm": SequenceParallel(),
            "output": ColwiseParallel(input_layouts=Shard(1), output_layouts=Replicate()),
        },
    )
    for block in model.layers:
        plan = {
            "attention_norm": SequenceParallel(),
            # Attention gets (x, cos, sin, cache): only x needs gathering along the sequence.
            "attention": PrepareModuleInput(
                input_layouts=(Shard(1), None, None, None),
                desired_input_layouts=(Replicate(), None, None, None),
            ),
            "attention.wq": ColwiseParallel(),
            "attention.wk": ColwiseParallel(),
            "attention.wv": ColwiseParallel(),
            "attention.wo": RowwiseParallel(output_layouts=Shard(1)),
            "ffn_norm": SequenceParallel(),
            "feed_forward": PrepareModuleInput(
                input_layouts=(Shard(1),), desired_input_layouts=(Replicate(),)
            ),
            "feed_forward.w1": ColwiseParallel(),
            "feed_forward.w2": RowwiseParallel(output_layouts=Shard(1)),
            "feed_forward.w3": ColwiseParallel(),
        }
        parallelize_module(block, tp_mesh, plan)
    if model.config.tie_embeddings:
        # Both matrices are sharded along the vocabulary (Shard(0)), so one DTensor serves both;
        # parallelize_module replaced each with its own copy, which would untie them.
        model.output.weight = model.tok_embeddings.weight


def apply_ac(model: Llama) -> None:
    """Recompute each block's activations in backward instead of keeping them."""
    for i, block in enumerate(model.layers):
        model.layers[i] = checkpoint_wrapper(block, preserve_rng_state=False)


def apply_compile(model: Llama) -> None:
    """Compile block by block (one graph reused by every layer, and FSDP's hooks stay between)."""
    for block in model.layers:
        block.compile(fullgraph=True)


def apply_fsdp(model: Llama, dp_mesh: DeviceMesh, param_dtype: torch.dtype | None) -> None:
    """FSDP2: each block is one all-gather unit; the root holds embeddings, final norm and output.
    Compute runs in `param_dtype` while gradients are reduced and kept in fp32."""
    policy = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32)
    last = len(model.layers) - 1
    for i, block in enumerate(model.layers):
        # The last block's parameters are needed again at once by backward: keep them gathered.
        fully_shard(block, mesh=dp_mesh, mp_policy=policy, reshard_after_forward=i < last)
    fully_shard(model, mesh=dp_mesh, mp_policy=policy)


def apply_ddp(model: nn.Module, dp_mesh: DeviceMesh) -> DistributedDataParallel:
    return DistributedDataParallel(model, process_group=dp_mesh.get_group())


def parallelize(model: Llama, config: TrainConfig, mesh: DeviceMesh | None) -> nn.Module:
    """Apply everything `config` asks for, in the order the pieces compose."""
    if mesh is not None and config.tp > 1:
        apply_tp(model, mesh["tp"])
    if config.activation_checkpoint == "full":
        apply_ac(model)
    if config.compile:
        apply_compile(model)
    if mesh is not None and config.dp_shard > 1:
        dp_mesh = mesh["dp_replicate", "dp_shard"] if config.dp_replicate > 1 else mesh["dp_shard"]
        apply_fsdp(model, dp_mesh, torch.bfloat16 if config.dtype == "bfloat16" else None)
    elif mesh is not None and config.dp_replicate > 1:
        return apply_ddp(model, mesh["dp_replicate"])
    return model


def uses_fsdp(config: TrainConfig) -> bool:
    """FSDP casts to the compute dtype itself; everything else runs under autocast."""
    return dist.is_initialized() and config.dp_shard > 1
