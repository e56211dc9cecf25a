"""The KV cache: keys and values of every running sequence, pre-allocated as one row ("slot") each.

The engine keeps its running sequences in slots 0..B-1 (moving the last one into a hole when one
finishes), so a decode step reads the cache as a plain slice `[:B, :, :kv_len]`, never a gather.
`decode` and `mixed` return the per-forward views that `roost.model.llama.KVCache` describes: each
writes this forward's keys and values and runs attention so each query sees what its sequence may.
A mixed forward lays the running sequences' next tokens and whole new prompts out flat in one row,
so prompts join the batch in the same forward as its decode step (one read of the weights, no
padding), each part attending its own way.

Shape legend: L layers, S slots, K key/value heads, H query heads, M max tokens per slot, d head
width, B running sequences, T tokens of one prompt, N tokens of a mixed forward.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

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

    def decode(self, positions_B: torch.Tensor, kv_len: int) -> DecodeView:
        """A view for one new token in each of slots 0..B-1, at `positions_B`; attention reads the
        first `kv_len` positions (at least max(positions_B) + 1; more keeps shapes fixed for graphs)."""
        return DecodeView(self, positions_B, kv_len)

    def mixed(self, positions: Sequence[int], slots_P: Sequence[int], lengths_P: Sequence[int]) -> MixedView:
        """A view for a forward over tokens (1, N): first the next token of each running sequence in
        slots 0..B-1 at `positions` (there may be none), then whole prompts, written to `slots_P`
        from position 0."""
        return MixedView(self, positions, slots_P, lengths_P)

    def copy_slot(self, src: int, dst: int, length: int) -> None:
        """Copy the first `length` positions of one slot into another, every layer at once."""
        self.k_LSKMd[:, dst, :, :length] = self.k_LSKMd[:, src, :, :length]
        self.v_LSKMd[:, dst, :, :length] = self.v_LSKMd[:, src, :, :length]


class DecodeView:
    """Writes one token per running sequence; attention reads each slot up to its own position."""

    def __init__(self, cache: SlotKVCache, positions_B: torch.Tensor, kv_len: int) -> None:
        self.cache, self.positions_B, self.kv_len = cache, positions_B, kv_len
        self.rows_B = torch.arange(positions_B.shape[0], device=positions_B.device)
        # (B, 1, 1, kv_len): broadcast over heads and the single query
        self.mask_B11S = (cache.positions_M[:kv_len][None, :] <= positions_B[:, None])[:, None, None, :]

    def attend(
        self, layer: int, q_BH1d: torch.Tensor, k_BK1d: torch.Tensor, v_BK1d: torch.Tensor
    ) -> torch.Tensor:
        k_cache, v_cache = self.cache.k_LSKMd[layer], self.cache.v_LSKMd[layer]
        k_cache[self.rows_B, :, self.positions_B] = k_BK1d[:, :, 0]
        v_cache[self.rows_B, :, self.positions_B] = v_BK1d[:, :, 0]
        B, S = self.rows_B.shape[0], self.kv_len
        return F.scaled_dot_product_attention(
            q_BH1d, k_cache[:B, :, :S], v_cache[:B, :, :S], attn_mask=self.mask_B11S, enable_gqa=True
        )


class MixedView:
    """Running sequences' next tokens, then whole prompts, flat in one row: the decode part reads
    each slot's cache as DecodeView does; each prompt is stored in its slot and attends causally
    within itself."""

    def __init__(
        self, cache: SlotKVCache, positions: Sequence[int], slots_P: Sequence[int], lengths_P: Sequence[int]
    ) -> None:
        self.cache = cache
        self.B = len(positions)
        self.decode = None
        if positions:
            positions_B = torch.tensor(positions, device=cache.positions_M.device)
            self.decode = DecodeView(cache, positions_B, max(positions) + 1)
        self.prompts: list[tuple[int, int, int]] = []  # (slot, first token in the row, length)
        start = self.B
        for slot, length in zip(slots_P, lengths_P, strict=True):
            self.prompts.append((slot, start, length))
            start += length

    def attend(
        self, layer: int, q_1HNd: torch.Tensor, k_1KNd: torch.Tensor, v_1KNd: torch.Tensor
    ) -> torch.Tensor:
        parts = []
        if self.decode is not None:
            B = self.B

            def rows(x_1hNd: torch.Tensor) -> torch.Tensor:  # the decode tokens as a batch: (B, h, 1, d)
                return x_1hNd[0, :, :B].transpose(0, 1).unsqueeze(2)

            y_BH1d = self.decode.attend(layer, rows(q_1HNd), rows(k_1KNd), rows(v_1KNd))
            parts.append(y_BH1d.squeeze(2).transpose(0, 1).unsqueeze(0))
        for slot, start, T in self.prompts:
            k_1KTd, v_1KTd = k_1KNd[:, :, start : start + T], v_1KNd[:, :, start : start + T]
            self.cache.k_LSKMd[layer, slot, :, :T] = k_1KTd[0]
            self.cache.v_LSKMd[layer, slot, :, :T] = v_1KTd[0]
            q_1HTd = q_1HNd[:, :, start : start + T]
            parts.append(
                F.scaled_dot_product_attention(q_1HTd, k_1KTd, v_1KTd, is_causal=True, enable_gqa=True)
            )
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)
