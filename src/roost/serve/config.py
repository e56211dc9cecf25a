"""The `[serve]` section of roost.toml: what `roost serve` loads, where it listens, how many requests
the engine decodes together and how many may wait. Every field has a default that serves on one CPU."""

from __future__ import annotations

from typing import Literal

import msgspec

Device = Literal["auto", "cpu", "cuda"]
DType = Literal["auto", "float32", "bfloat16", "float16"]


class ServeConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # -- what and where ------------------------------------------------------------------------
    model: str = ""  # a run name, a run directory or an HF export directory; "" = the newest run
    served_name: str = ""  # the model id clients send; "" = the run's or export's directory name
    host: str = "127.0.0.1"
    port: int = 8000
    device: Device = "auto"  # auto: cuda when there is one
    dtype: DType = "auto"  # auto: bfloat16 on cuda, float32 on cpu

    # -- engine ----------------------------------------------------------------------------------
    max_batch: int = 16  # sequences decoded together: the KV cache has this many slots
    max_queue: int = 64  # requests that may wait for a slot; beyond max_batch + max_queue → 429
    max_seq_len: int = 0  # prompt + completion tokens per sequence; 0 = the model's max_seq_len
    max_prefill_tokens: int = 2048  # prompt tokens prefilled per step (one longer prompt goes alone)
    cuda_graphs: bool = True  # capture decode steps as CUDA graphs (cuda only; eager elsewhere)
    embed_batch_tokens: int = 8192  # padded tokens per forward when embedding
    retry_after_s: int = 1  # the Retry-After a 429 carries

    def __post_init__(self) -> None:
        for name in ("max_batch", "max_prefill_tokens", "embed_batch_tokens", "retry_after_s"):
            if getattr(self, name) < 1:
                raise ValueError(f"[serve] {name} must be at least 1")
        if self.max_queue < 0 or self.max_seq_len < 0:
            raise ValueError("[serve] max_queue and max_seq_len cannot be negative")
