"""The network: a Llama-style decoder (RoPE, RMSNorm, SwiGLU, grouped-query attention).

Plain torch and nothing else: parallelism, checkpointing and compilation are applied from outside
(roost.train.parallel) to this unmodified module, and serving passes a KV cache through `forward`.
Parameter names follow Meta's Llama code so the mapping to Hugging Face's layout is one table.

Shape legend: B batch, T time (tokens), D model width, H query heads, K key/value heads,
d head width, F feed-forward width, V vocabulary.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from roost.model.config import ModelConfig


class KVCache(Protocol):
    """A serving cache's view of one forward: store this forward's keys and values for `layer` and
    return the attention output (same shape as the queries), each query seeing what its sequence may
    (a view may lay several sequences out in one row, so the view, not the model, runs attention)."""

    def attend(
        self, layer: int, q_BHTd: torch.Tensor, k_BKTd: torch.Tensor, v_BKTd: torch.Tensor
    ) -> torch.Tensor: ...


def rope_tables(head_dim: int, max_seq_len: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of every position × frequency, each (max_seq_len, head_dim)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    angles = torch.outer(torch.arange(max_seq_len, dtype=torch.float64), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)  # the "rotate half" layout, as Hugging Face's Llama
    return angles.cos().float(), angles.sin().float()


def apply_rope(x_BhTd: torch.Tensor, cos_BTd: torch.Tensor, sin_BTd: torch.Tensor) -> torch.Tensor:
    half = x_BhTd.shape[-1] // 2
    rotated = torch.cat([-x_BhTd[..., half:], x_BhTd[..., :half]], dim=-1)
    cos, sin = cos_BTd.unsqueeze(1), sin_BTd.unsqueeze(1)  # broadcast over heads
    return (x_BhTd * cos + rotated * sin).type_as(x_BhTd)


class Attention(nn.Module):
    def __init__(self, config: ModelConfig, layer: int) -> None:
        super().__init__()
        self.layer = layer
        self.head_dim = config.head_dim
        self.wq = nn.Linear(config.dim, config.n_heads * config.head_dim, bias=False)
        self.wk = nn.Linear(config.dim, config.kv_heads * config.head_dim, bias=False)
        self.wv = nn.Linear(config.dim, config.kv_heads * config.head_dim, bias=False)
        self.wo = nn.Linear(config.n_heads * config.head_dim, config.dim, bias=False)

    def forward(
        self, x_BTD: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None
    ) -> torch.Tensor:
        B, T, _ = x_BTD.shape
        # Head counts come from the local weight shapes (-1), so tensor parallelism, which shards
        # wq/wk/wv by output rows, gives each rank its own heads without this code knowing.
        q_BHTd = self.wq(x_BTD).view(B, T, -1, self.head_dim).transpose(1, 2)
        k_BKTd = self.wk(x_BTD).view(B, T, -1, self.head_dim).transpose(1, 2)
        v_BKTd = self.wv(x_BTD).view(B, T, -1, self.head_dim).transpose(1, 2)
        q_BHTd, k_BKTd = apply_rope(q_BHTd, cos, sin), apply_rope(k_BKTd, cos, sin)
        if cache is None:
            y_BHTd = F.scaled_dot_product_attention(q_BHTd, k_BKTd, v_BKTd, is_causal=True, enable_gqa=True)
        else:
            y_BHTd = cache.attend(self.layer, q_BHTd, k_BKTd, v_BKTd)
        return self.wo(y_BHTd.transpose(1, 2).reshape(B, T, -1))


class FeedForward(nn.Module):
    """SwiGLU: w2(silu(w1 x) * w3 x)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.w1 = nn.Linear(config.dim, config.hidden_dim, bias=False)
        self.w2 = nn.Linear(config.hidden_dim, config.dim, bias=False)
        self.w3 = nn.Linear(config.dim, config.hidden_dim, bias=False)

    def forward(self, x_BTD: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x_BTD)) * self.w3(x_BTD))


class Block(nn.Module):
    def __init__(self, config: ModelConfig, layer: int) -> None:
        super().__init__()
        self.attention_norm = nn.RMSNorm(config.dim, eps=config.norm_eps)
        self.attention = Attention(config, layer)
        self.ffn_norm = nn.RMSNorm(config.dim, eps=config.norm_eps)
        self.feed_forward = FeedForward(config)

    def forward(
        self, x_BTD: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None = None
    ) -> torch.Tensor:
        x_BTD = x_BTD + self.attention(self.attention_norm(x_BTD), cos, sin, cache)
        return x_BTD + self.feed_forward(self.ffn_norm(x_BTD))


class Llama(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.dim)
        self.layers = nn.ModuleList(Block(config, i) for i in range(config.n_layers))
        self.norm = nn.RMSNorm(config.dim, eps=config.norm_eps)
        self.output = nn.Linear(config.dim, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.output.weight = self.tok_embeddings.weight
        # Not saved in checkpoints: recomputed from the config (init_weights) after loading or after
        # materialising a model built on the meta device.
        self.register_buffer("rope_cos", torch.empty(0), persistent=False)
        self.register_buffer("rope_sin", torch.empty(0), persistent=False)
        self.init_weights()

    @torch.no_grad()
    def init_rope(self) -> None:
        cos, sin = rope_tables(self.config.head_dim, self.config.max_seq_len, self.config.rope_theta)
        device = self.tok_embeddings.weight.device
        self.rope_cos, self.rope_sin = cos.to(device), sin.to(device)

    @torch.no_grad()
    def init_weights(self) -> None:
        """GPT-2/Llama init: N(0, 0.02) everywhere, the two residual output projections scaled by
        1/sqrt(2 × layers) so the residual stream's variance does not grow with depth."""
        std = self.config.init_std
        residual_std = std / math.sqrt(2 * self.config.n_layers)
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                out_proj = name.endswith(("attention.wo", "feed_forward.w2"))
                nn.init.normal_(module.weight, mean=0.0, std=residual_std if out_proj else std)
            elif isinstance(module, nn.RMSNorm):
                nn.init.ones_(module.weight)
        self.init_rope()

    def hidden_states(
        self,
        tokens_BT: torch.Tensor,
        positions_BT: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """Final normalised hidden states (B, T, D): what embeddings pool and logits project."""
        T = tokens_BT.shape[1]
        if positions_BT is None:
            if self.config.max_seq_len < T:
                raise ValueError(f"sequence of {T} tokens exceeds max_seq_len {self.config.max_seq_len}")
            cos, sin = self.rope_cos[:T].unsqueeze(0), self.rope_sin[:T].unsqueeze(0)
        else:
            cos, sin = self.rope_cos[positions_BT], self.rope_sin[positions_BT]
        x_BTD = self.tok_embeddings(tokens_BT)
        for block in self.layers:
            x_BTD = block(x_BTD, cos, sin, cache)
        return self.norm(x_BTD)

    def forward(
        self,
        tokens_BT: torch.Tensor,
        positions_BT: torch.Tensor | None = None,
        cache: KVCache | None = None,
    ) -> torch.Tensor:
        """Logits (B, T, V) for the next token at every position."""
        return self.output(self.hidden_states(tokens_BT, positions_BT, cache))
