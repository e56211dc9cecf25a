"""One decode forward for the running batch, eagerly or replayed from a captured CUDA graph.

At batch 1 a decode step launches a few hundred small kernels; on a GPU their launch cost, not the
memory traffic, sets the speed. A CUDA graph replays the whole step as one launch. Graphs need fixed
shapes and addresses, so the "static" path pads the batch to a bucket (1, 2, 4, 8, ... up to the slot
count), reads the cache up to a bucketed length, and keeps its inputs in persistent buffers. Padding
rows write into slots past the running batch, which hold no one's keys. The static path also runs
eagerly (on CPU, in tests) so what gets captured is checked without a GPU.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch

from roost.model.llama import Llama
from roost.serve.kv_cache import SlotKVCache

log = logging.getLogger(__name__)


def buckets(limit: int, start: int = 1) -> list[int]:
    """start, 2·start, 4·start, ... below `limit`, then `limit` itself."""
    sizes, size = [], start
    while size < limit:
        sizes.append(size)
        size *= 2
    return [*sizes, limit]


class DecodeRunner:
    """`step(tokens, positions)` → logits (B, V) for one new token per running sequence in slots 0..B-1."""

    def __init__(
        self, model: Llama, cache: SlotKVCache, *, use_graphs: bool = True, static_shapes: bool | None = None
    ) -> None:
        self.model, self.cache = model, cache
        self.device = cache.k_LSKMd.device
        self.use_graphs = use_graphs and self.device.type == "cuda"
        self.static = self.use_graphs if static_shapes is None else static_shapes or self.use_graphs
        self.batch_buckets = buckets(cache.slots)
        self.kv_buckets = buckets(cache.max_len, start=min(256, cache.max_len))
        if self.static:
            # Inputs live in fixed buffers (graphs read them by address); the host side is pinned so
            # the copy in is asynchronous. Rows past the batch keep stale, harmless values.
            self.inputs_2S = torch.zeros((2, cache.slots), dtype=torch.long, device=self.device)
            self.staged_2S = torch.zeros(
                (2, cache.slots), dtype=torch.long, pin_memory=self.device.type == "cuda"
            )
            self.staged = self.staged_2S.numpy()
        self._graphs: dict[tuple[int, int], tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
        self._pool = None

    def step(self, tokens: Sequence[int], positions: Sequence[int]) -> torch.Tensor:
        B = len(tokens)
        if not self.static:
            positions_B = torch.tensor(positions, device=self.device)
            view = self.cache.decode(positions_B, max(positions) + 1)
            return self.model(
                torch.tensor(tokens, device=self.device)[:, None], positions_B[:, None], cache=view
            )[:, -1]
        batch = next(b for b in self.batch_buckets if b >= B)
        kv_len = next(s for s in self.kv_buckets if s > max(positions))
        # The previous step's copy has finished: its logits were read back before this call.
        self.staged[0, :B] = tokens
        self.staged[1, :B] = positions
        self.inputs_2S[:, :B].copy_(self.staged_2S[:, :B], non_blocking=True)
        if self.use_graphs:
            captured = self._graph(batch, kv_len)
            if captured is not None:
                captured[0].replay()
                return captured[1][:B]
        return self._forward(batch, kv_len)[:B]

    def warm_up(self) -> None:
        """Capture every (batch, cache length) bucket now, before requests arrive (a capture takes
        a few forwards). Only while no sequence runs: the warm-up forwards write into every slot."""
        if self.use_graphs:
            with torch.inference_mode():
                for batch in self.batch_buckets:
                    for kv_len in self.kv_buckets:
                        self._graph(batch, kv_len)

    def _forward(self, batch: int, kv_len: int) -> torch.Tensor:
        tokens_B1, positions_B = self.inputs_2S[0, :batch, None], self.inputs_2S[1, :batch]
        view = self.cache.decode(positions_B, kv_len)
        return self.model(tokens_B1, positions_B[:, None], cache=view)[:, -1]

    def _graph(self, batch: int, kv_len: int) -> tuple[torch.cuda.CUDAGraph, torch.Tensor] | None:
        key = (batch, kv_len)
        if key not in self._graphs and self.use_graphs:
            try:
                self._graphs[key] = self._capture(batch, kv_len)
            except RuntimeError as exc:  # capture unsupported here: stay eager from now on
                log.warning("CUDA graph capture failed (%s); decoding eagerly", exc)
                self.use_graphs = False
        return self._graphs.get(key)

    def _capture(self, batch: int, kv_len: int) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
        # Warm up on a side stream first, as PyTorch's CUDA graph recipe asks. The forwards write
        # the current inputs' keys and values again: the same values the real step writes.
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                self._forward(batch, kv_len)
        torch.cuda.current_stream().wait_stream(stream)
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool):
            logits = self._forward(batch, kv_len)
        return graph, logits
