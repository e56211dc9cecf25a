"""Model shapes: the presets from `tiny` (tests) to 405B, exact parameter counts and FLOPs per token.

FLOPs convention (stated because published numbers differ on it): a matmul of (m×k)·(k×n) costs
2mkn; training costs 3× the forward (forward + backward of activations + backward of weights).
Per token that is 6 × (every parameter used in a matmul: all but the input embedding) plus attention
scores and their weighted sum, 2 × 2 × seq_len × dim per layer forward. `attention="full"` counts
that whole square (PaLM's and torchtitan's convention, used by default so MFU compares with theirs);
`"causal"` counts the half that a causal mask keeps; `"none"` leaves attention out (Kaplan's 6N).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

AttentionFlops = Literal["full", "causal", "none"]


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 8192
    dim: int = 256
    n_layers: int = 4
    n_heads: int = 4
    n_kv_heads: int | None = None  # None: as many as query heads (plain multi-head attention)
    ffn_dim: int | None = None  # None: Llama's rule, 8/3 × dim rounded up to `multiple_of`
    multiple_of: int = 256
    max_seq_len: int = 512
    rope_theta: float = 10_000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = False
    init_std: float = 0.02

    def __post_init__(self) -> None:
        if self.dim % self.n_heads:
            raise ValueError(f"{self.n_heads} heads do not divide width {self.dim}")
        if self.head_dim % 2:
            raise ValueError(f"head dim {self.head_dim} must be even for rotary embeddings")
        if self.kv_heads > self.n_heads or self.n_heads % self.kv_heads:
            raise ValueError(f"{self.kv_heads} key/value heads do not divide {self.n_heads} query heads")
        for name in ("vocab_size", "n_layers", "max_seq_len", "hidden_dim"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads or self.n_heads

    @property
    def hidden_dim(self) -> int:
        """Width of the SwiGLU feed-forward."""
        if self.ffn_dim is not None:
            return self.ffn_dim
        hidden = int(2 * 4 * self.dim / 3)
        return self.multiple_of * -(-hidden // self.multiple_of)

    def replace(self, **changes: object) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    # -- counting ---------------------------------------------------------------------------
    def layer_params(self) -> int:
        d, kv = self.dim, self.kv_heads * self.head_dim
        attention = d * d + 2 * d * kv + d * d  # wq, wk, wv, wo (no biases)
        ffn = 3 * d * self.hidden_dim  # w1, w2, w3
        return attention + ffn + 2 * d  # + two RMSNorm weights

    def embedding_params(self) -> int:
        return self.vocab_size * self.dim

    def num_params(self) -> int:
        """Every parameter, counted once (a tied output matrix is the embedding)."""
        output = 0 if self.tie_embeddings else self.vocab_size * self.dim
        return self.embedding_params() + self.n_layers * self.layer_params() + self.dim + output

    def matmul_params(self) -> int:
        """Parameters that take part in a matmul per token: all but the embedding lookup."""
        return self.n_layers * self.layer_params() + self.dim + self.vocab_size * self.dim

    def flops_per_token(self, seq_len: int | None = None, attention: AttentionFlops = "full") -> float:
        """Training FLOPs per token (forward + backward), see the module docstring."""
        seq_len = seq_len or self.max_seq_len
        attention_fwd = {"full": 4.0, "causal": 2.0, "none": 0.0}[attention]
        attention_fwd *= self.n_layers * seq_len * self.dim
        return 6.0 * self.matmul_params() + 3.0 * attention_fwd


# Presets. Llama 3 shapes where Meta published them; the small ones follow the same proportions.
# vocab_size here is a default: training uses the tokenizer's actual size.
PRESETS: dict[str, ModelConfig] = {
    "tiny": ModelConfig(
        vocab_size=512, dim=64, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=192, max_seq_len=128
    ),
    "20m": ModelConfig(
        vocab_size=8192,
        dim=384,
        n_layers=10,
        n_heads=6,
        n_kv_heads=2,
        ffn_dim=1152,
        max_seq_len=256,
        tie_embeddings=True,
    ),
    "125m": ModelConfig(
        vocab_size=32768,
        dim=768,
        n_layers=12,
        n_heads=12,
        ffn_dim=2560,
        max_seq_len=2048,
        tie_embeddings=True,
    ),
    "1b": ModelConfig(
        vocab_size=128256,
        dim=2048,
        n_layers=16,
        n_heads=32,
        n_kv_heads=8,
        ffn_dim=8192,
        max_seq_len=2048,
        rope_theta=500_000.0,
        tie_embeddings=True,
    ),
    "8b": ModelConfig(
        vocab_size=128256,
        dim=4096,
        n_layers=32,
        n_heads=32,
        n_kv_heads=8,
        ffn_dim=14336,
        max_seq_len=8192,
        rope_theta=500_000.0,
    ),
    "70b": ModelConfig(
        vocab_size=128256,
        dim=8192,
        n_layers=80,
        n_heads=64,
        n_kv_heads=8,
        ffn_dim=28672,
        max_seq_len=8192,
        rope_theta=500_000.0,
    ),
    "405b": ModelConfig(
        vocab_size=128256,
        dim=16384,
        n_layers=126,
        n_heads=128,
        n_kv_heads=8,
        ffn_dim=53248,
        max_seq_len=8192,
        rope_theta=500_000.0,
    ),
}


def preset(name: str, **overrides: object) -> ModelConfig:
    """A preset by name, with any field overridden (e.g. vocab_size from the tokenizer)."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name].replace(**overrides)
