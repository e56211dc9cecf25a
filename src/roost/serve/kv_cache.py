"""The KV cache: keys and values of every running sequence, pre-allocated as one row ("slot") each.

The engine keeps its running sequences in slots 0..B-1 (moving the last one into a hole when one
finishes), so a decode step reads the cache as a plain slice `[:B, :, :kv_len]`, never a gather.
`prefill` and `decode` return the per-forward views that `roost.model.llama.KVCache` describes:
each writes this forward's keys and values and says which cached positions each query may see.

Shape legend: L layers, S slots, K key/value heads, M max tokens per slot, d head width,
B running sequences, P sequences in a prefill, T tokens per prefill row.
"""

from __future__ import annotations

import torch

from roost.model.config import ModelConfig


class SlotKVCache:
    def __init__(
        self, config: ModelConfig, slots: int, max_len: int, device: torch.device, dtype: torch.dtype
    ) -> None:
        shape = (config.n_layers, slots, config.kv_heads, max_len, config.head_dim)
        self.k_LSKMd = torch.zeros(shape, device=device, dtype=dtype)
        self.v_LSKMd = torch.zeros(shape, device=device, dtype=dtype)
        self.slots, self.max_len = slots, max_len
        self.positions_M = torch.arange(max_len, device=device)

    @property
    def nbytes(self) -> int:
        return 2 * self.k_LSKMd.numel() * self.k_LSKMd.element_size()

    def prefill(self, slots_P: torch.Tensor, length: int) -> PrefillView:
        """A view for a forward over prompts of `length` (padded) tokens, written to `slots_P` from 0."""
        return PrefillView(self, slots_P, length)

    def decode(self, positions_B: torch.Tensor, kv_len: int) -> DecodeView:
        """A view for one new token in each of slots 0..B-1, at `positions_B`; attention reads the
        first `kv_len` positions (at least max(positions_B) + 1; more keeps shapes fixed for graphs)."""
        return DecodeView(self, positions_B, kv_len)

    def copy_slot(self, src: int, dst: int, length: int) -> None:
        """Copy the first `length` positions of one slot into another, every layer at once."""
        self.k_LSKMd[:, dst, :, :length] = self.k_LSKMd[:, src, :, :length]
        self.v_LSKMd[:, dst, :, :length] = self.v_LSKMd[:, src, :, :length]


class PrefillView:
    """Writes whole prompts into their slots; attention sees the prompt itself, causally."""

    def __init__(self, cache: SlotKVCache, slots_P: torch.Tensor, length: int) -> None:
        self.cache, self.slots_P, self.length = cache, slots_P, length
        positions = cache.positions_M[:length]
        self.mask_TT = positions[None, :] <= positions[:, None]

    def update(
        self, layer: int, k_PKTd: torch.Tensor, v_PKTd: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        T = self.length
        self.cache.k_LSKMd[layer][self.slots_P, :, :T] = k_PKTd
        self.cache.v_LSKMd[layer][self.slots_P, :, :T] = v_PKTd
        return k_PKTd, v_PKTd, self.mask_TT


class DecodeView:
    """Writes one token per running sequence; attention reads each slot up to its own position."""

    def __init__(self, cache: SlotKVCache, positions_B: torch.Tensor, kv_len: int) -> None:
        self.cache, self.positions_B, self.kv_len = cache, positions_B, kv_len
        self.rows_B = torch.arange(positions_B.shape[0], device=positions_B.device)
        # (B, 1, 1, kv_len): broadcast over heads and the single query
        self.mask_B11S = (cache.positions_M[:kv_len][None, :] <= positions_B[:, None])[:, None, None, :]

    def update(
        self, layer: int, k_BK1d: torch.Tensor, v_BK1d: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        k_cache, v_cache = self.cache.k_LSKMd[layer], self.cache.v_LSKMd[layer]
        k_cache[self.rows_B, :, self.positions_B] = k_BK1d[:, :, 0]
        v_cache[self.rows_B, :, self.positions_B] = v_BK1d[:, :, 0]
        B, S = self.rows_B.shape[0], self.kv_len
        return k_cache[:B, :, :S], v_cache[:B, :, :S], self.mask_B11S
