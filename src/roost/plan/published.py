"""Read a published training run — a case's free-form `inputs` — into what the planner models:
the job, the GPU, the layout knobs the source states, and how it counts FLOPs.

Rules, applied to whatever the run states (nothing here knows a particular case):
- shape: layers, hidden, heads (and ffn, kv_heads, vocab where given). A run that names Llama,
  SwiGLU, an ffn width or key/value heads is Llama-shaped; otherwise GPT-shaped (4h MLP, vocab
  51,200). Megatron-LM Table 2 names models by size only: the GPT-3 175B and 530B shapes.
- knobs: tp, pp, cp (1 when unstated), dp, micro-batch, interleaving, recompute, sharding are
  pinned when stated; what is not stated is left to the layout search.
- kernels: attention is fused (flash) on Hopper and later or when the run says so; GPT-era runs
  on Ampere materialise the scores and keep dropout.
- FLOPs: Megatron-LM's eq. 3/4 (hardware FLOPs with full recompute) when the run cites them;
  causal-half attention when it says causal; else the convention whose total matches a published
  FLOP count; else model FLOPs with the full attention square (6N + 12·l·h·s per token, the PaLM,
  Megatron-Core and torchtitan MFU convention).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from roost.model.config import AttentionFlops
from roost.plan import flops
from roost.plan.hardware import GPU, gpu
from roost.plan.job import MEGATRON_MIXED, ZERO_MIXED, Job
from roost.plan.mesh import Sharding
from roost.plan.shape import Shape

GPT_VOCAB, DEFAULT_SEQ = 51_200, 2048
LLAMA3_VOCAB, LLAMA2_VOCAB = 128_256, 32_000
# Megatron-LM Table 2 gives its models by size; they are GPT-3 175B and the 530B of its Table 1.
PUBLISHED_GPT_SHAPES = {174.6e9: (96, 12288, 96), 529.6e9: (105, 20480, 128)}


@dataclass(frozen=True)
class FlopConvention:
    """How a source counts the FLOPs behind its TFLOP/s or MFU."""

    name: str
    attention: AttentionFlops
    recompute: flops.Recompute  # recomputation counted as work; "none" counts model FLOPs only

    def per_token(self, job: Job) -> float:
        return flops.hardware_flops_per_token(job.shape, job.seq_len, self.attention, self.recompute)

    def per_token_of(self, params: float) -> float:
        """The same count from a parameter count alone (no attention term): 6N, or 8N with recompute."""
        return (8.0 if self.recompute == "full" else 6.0) * params


MEGATRON_EQ3 = FlopConvention(
    "Megatron-LM eq. 3: hardware FLOPs, full recompute, full attention", "full", "full"
)
MODEL_FULL = FlopConvention("model FLOPs, full attention square (6N + 12lhs)", "full", "none")
MODEL_CAUSAL = FlopConvention("model FLOPs, causal attention (6N + 6lhs)", "causal", "none")
SIX_N = FlopConvention("6N, no attention", "none", "none")
CONVENTIONS = (MEGATRON_EQ3, MODEL_FULL, MODEL_CAUSAL, SIX_N)


@dataclass(frozen=True)
class PublishedRun:
    gpu: GPU
    gpus: int
    job: Job | None  # None when the run gives no shape (a bare time estimate)
    params: float | None
    pinned: dict[str, Any]  # layout knobs the source states
    convention: FlopConvention
    exact_batch: bool  # the batch was given in sequences (else rounded from tokens, may move)


def text_of(case: dict[str, Any]) -> str:
    """Every string a case holds (inputs, derivations, notes; not its id), lower-cased, for hints."""
    parts: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            parts.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk({key: value for key, value in case.items() if key != "id"})
    return " ".join(parts).lower()


def gpu_of(gpu_type: str) -> GPU:
    """The hardware entry a free-text GPU type names."""
    text = gpu_type.lower()
    for key, pattern in (
        ("a100-40gb", r"a100.{0,8}40"),
        ("a100-80gb", r"a100"),
        ("h100-pcie", r"h100.{0,8}pcie"),
        ("h100-sxm", r"h100|h800"),
        ("h200", r"h200"),
        ("b200", r"b200|gb200"),
        ("mi300x", r"mi300"),
    ):
        if re.search(pattern, text):
            return gpu(key)
    raise ValueError(f"no hardware entry for {gpu_type!r}")


def shape_of(inputs: dict[str, Any], text: str) -> Shape | None:
    if "layers" in inputs:
        layers, hidden, heads = inputs["layers"], inputs["hidden"], inputs["heads"]
    elif inputs.get("params") in PUBLISHED_GPT_SHAPES:
        layers, hidden, heads = PUBLISHED_GPT_SHAPES[inputs["params"]]
    else:
        return None
    seq = inputs.get("seq_len", DEFAULT_SEQ)
    ffn = inputs.get("ffn") or inputs.get("ffn_hidden")
    llama = "kv_heads" in inputs or (ffn and ffn != 4 * hidden) or "llama" in text or "swiglu" in text
    if not llama:
        return Shape.gpt(layers, hidden, heads, inputs.get("vocab", GPT_VOCAB), seq)
    vocab = inputs.get("vocab") or (LLAMA2_VOCAB if re.search(r"llama[ -]?[12]\b", text) else LLAMA3_VOCAB)
    return Shape(
        layers=layers,
        hidden=hidden,
        heads=heads,
        ffn=ffn or 256 * -(-int(8 * hidden / 3) // 256),
        vocab=vocab,
        kv_heads=inputs.get("kv_heads"),
        gated_ffn=True,
    )


def recompute_of(inputs: dict[str, Any]) -> str | None:
    stated = str(inputs.get("activation_recompute", inputs.get("activation_memory_mode", ""))).lower()
    if not stated:
        return None
    if "selective" in stated:
        return "selective"
    if "full" in stated:
        return "full"
    if re.search(r"\bno(ne)?\b", stated):
        return "none"
    return None


def sharding_of(inputs: dict[str, Any], text: str) -> Sharding | None:
    scheme = " ".join(str(inputs.get(k, "")) for k in ("scheme", "dp_kind", "sharding")).lower()
    if "zero-3" in scheme or "zero3" in scheme or "fsdp" in scheme:
        return "zero3"
    if "zero-2" in scheme:
        return "zero2"
    if "zero-1" in scheme or ("distributed optimizer" in text and "no distributed optimizer" not in text):
        return "zero1"
    return None


def convention_of(case: dict[str, Any], text: str, job: Job | None, params: float | None) -> FlopConvention:
    if re.search(r"eq\. ?[34]\b", text):
        return MEGATRON_EQ3
    if "causal" in text:
        return MODEL_CAUSAL
    total, tokens = case["outputs"].get("total_flops"), case["inputs"].get("train_tokens")
    if total and tokens and job is not None:
        return min(CONVENTIONS, key=lambda c: abs(c.per_token(job) * tokens / total - 1))
    return MODEL_FULL


def read_run(case: dict[str, Any]) -> PublishedRun:
    inputs, text = case["inputs"], text_of(case)
    hw = gpu_of(inputs["gpu_type"])
    gpus = int(inputs["gpu_count"])
    shape = shape_of(inputs, text)
    pinned: dict[str, Any] = {}
    tp = inputs.get("tp")
    if tp is None and inputs.get("model_parallel_size") == 1:
        tp = 1
    if tp is not None:
        pinned["tp"] = tp
        # A source that states its tensor parallelism and no pipeline ran without one.
        mp = inputs.get("model_parallel_size")
        pinned["pp"] = inputs.get("pp", mp // tp if mp else 1)
    pinned["cp"] = inputs.get("cp", 1)
    if "dp" in inputs:
        pinned["dp"] = inputs["dp"]
    for key in ("microbatch_size", "micro_batch_size"):
        if key in inputs:
            pinned["micro_batch"] = inputs[key]
    for key, value in inputs.items():
        if key.startswith(("pipeline_interleave", "virtual_pipeline", "interleave")):
            pinned["interleave"] = value
    sharding = sharding_of(inputs, text)
    if sharding:
        pinned["sharding"] = sharding

    params = inputs.get("params")
    job = None
    if shape is not None:
        params = params or float(shape.num_params())
        flash = "flash" in text or hw.generation != "ampere"
        precision = ZERO_MIXED if sharding == "zero3" and "zero-3" in text else MEGATRON_MIXED
        seq = inputs.get("seq_len", DEFAULT_SEQ)
        job = Job(
            shape,
            seq,
            batch_of(inputs, seq, gpus, pinned),
            precision,
            flash_attention=flash,
            dropout=shape.positions > 0 and not flash,
            fp8="fp8" in str(inputs.get("precision", "")).lower(),
        )
    convention = convention_of(case, text, job, params)
    recompute = recompute_of(inputs)
    if recompute is None and convention is MEGATRON_EQ3:
        recompute = "full"  # the source's FLOP count assumes it
    if recompute:
        pinned["recompute"] = recompute
    if job is not None and not job.flash_attention:  # before fused attention, sequence parallel
        pinned["sequence_parallel"] = bool(re.search(r"sequence[ _]parallel", text))  # was news
    return PublishedRun(hw, gpus, job, params, pinned, convention, "global_batch_sequences" in inputs)


def batch_of(inputs: dict[str, Any], seq: int, gpus: int, pinned: dict[str, Any]) -> int:
    """Global batch in sequences; a batch given in tokens is rounded to whole data-parallel steps."""
    if "global_batch_sequences" in inputs:
        return int(inputs["global_batch_sequences"])
    if "global_batch_tokens" not in inputs:
        raise ValueError("a run needs its global batch: global_batch_sequences or global_batch_tokens")
    sequences = inputs["global_batch_tokens"] / seq
    if "tp" in pinned and "pp" in pinned:
        dp = pinned.get("dp") or gpus // (pinned["tp"] * pinned["pp"] * pinned["cp"])
        unit = dp * pinned.get("micro_batch", 1)
        return max(1, round(sequences / unit)) * unit
    return max(1, round(sequences))
