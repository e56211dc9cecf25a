"""A transformer's shape as the planner counts it: explicit numbers, so a published run is
reproduced in its own architecture (GPT: 4h feed-forward, biases, learned positions) or roost's.

`Shape.gpt(...)` is the GPT-2/3 / Megatron-LM family; `Shape.from_model(cfg)` reads a roost
`ModelConfig` (Llama: SwiGLU, grouped-query attention, RMSNorm, rotary positions, no biases).
"""

from __future__ import annotations

from dataclasses import dataclass

from roost.model.config import ModelConfig


@dataclass(frozen=True)
class Shape:
    layers: int
    hidden: int
    heads: int
    ffn: int  # feed-forward width (4h for GPT; Llama's SwiGLU width otherwise)
    vocab: int
    kv_heads: int | None = None  # None: as many as query heads
    gated_ffn: bool = False  # SwiGLU: three matrices (gate, up, down) instead of two
    biases: bool = False
    norm_weights: int = 1  # 1 per norm for RMSNorm, 2 for LayerNorm (scale and shift)
    positions: int = 0  # rows of a learned position table (0: rotary, nothing learned)
    tied_embeddings: bool = False

    def __post_init__(self) -> None:
        for name in ("layers", "hidden", "heads", "ffn", "vocab"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.hidden % self.heads:
            raise ValueError(f"{self.heads} heads do not divide width {self.hidden}")
        if self.heads % self.kv_count:
            raise ValueError(f"{self.kv_count} key/value heads do not divide {self.heads} query heads")

    @classmethod
    def gpt(cls, layers: int, hidden: int, heads: int, vocab: int = 51200, seq_len: int = 2048) -> Shape:
        """GPT-2/3 as Megatron-LM builds it: 4h MLP with GeLU, biases, LayerNorm, learned positions."""
        return cls(
            layers=layers,
            hidden=hidden,
            heads=heads,
            ffn=4 * hidden,
            vocab=vocab,
            biases=True,
            norm_weights=2,
            positions=seq_len,
            tied_embeddings=True,
        )

    @classmethod
    def from_model(cls, cfg: ModelConfig) -> Shape:
        return cls(
            layers=cfg.n_layers,
            hidden=cfg.dim,
            heads=cfg.n_heads,
            ffn=cfg.hidden_dim,
            vocab=cfg.vocab_size,
            kv_heads=cfg.kv_heads,
            gated_ffn=True,
            tied_embeddings=cfg.tie_embeddings,
        )

    @property
    def kv_count(self) -> int:
        return self.kv_heads or self.heads

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def kv_dim(self) -> int:
        return self.kv_count * self.head_dim

    # -- parameters ----------------------------------------------------------------------------
    def layer_matmul_params(self) -> int:
        """Weights of one layer's matrix multiplies (what costs 2 FLOPs per token each, forward)."""
        h = self.hidden
        attention = h * h + 2 * h * self.kv_dim + h * h  # query, key, value, output
        mlp = (3 if self.gated_ffn else 2) * h * self.ffn
        return attention + mlp

    def layer_params(self) -> int:
        h = self.hidden
        norms = 2 * self.norm_weights * h
        biases = (h + 2 * self.kv_dim + h + self.ffn * (2 if self.gated_ffn else 1) + h) if self.biases else 0
        return self.layer_matmul_params() + norms + biases

    def embedding_params(self) -> int:
        """Token table, learned positions and the final norm (what sits outside the layers)."""
        return self.vocab * self.hidden + self.positions * self.hidden + self.norm_weights * self.hidden

    def output_params(self) -> int:
        """The output projection to the vocabulary (zero extra when tied to the token table)."""
        return 0 if self.tied_embeddings else self.vocab * self.hidden

    def num_params(self) -> int:
        return self.layers * self.layer_params() + self.embedding_params() + self.output_params()
