"""The training data: fixed-length windows over the memory-mapped token shards, in a seeded order,
split across data-parallel ranks so that a step's global batch is the same at any world size.

A source is anything with `len()` and `example(i) -> (inputs, targets)` (targets -100 where no
loss is taken): `TokenWindows` here for pretraining, `roost.train.sft.ChatExamples` for tuning.
`DistributedLoader` reads a source in the order of a permutation drawn from (seed, epoch); its whole
position is one number, the samples consumed by all ranks together, so a checkpoint taken on 2 ranks
resumes on 1 (or 8): each rank just takes a different slice of the same global batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from roost.curate.shards import Shard

IGNORE = -100  # targets with this value take no loss (F.cross_entropy's ignore_index)


class Source(Protocol):
    def __len__(self) -> int: ...

    def example(self, i: int) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass
class _LiveShard:
    """One shard's tokens with tombstoned posts cut out, as contiguous runs of the .bin file."""

    shard: Shard
    run_starts: np.ndarray  # token offset in the .bin of each run of live posts
    run_cum: np.ndarray  # live tokens before each run, plus the total at the end

    @property
    def live_tokens(self) -> int:
        return int(self.run_cum[-1])

    def read(self, start: int, stop: int) -> np.ndarray:
        """Live tokens [start, stop), gathered across runs."""
        if len(self.run_starts) == 1:
            base = int(self.run_starts[0])
            return np.asarray(self.shard.tokens[base + start : base + stop])
        parts = []
        run = int(np.searchsorted(self.run_cum, start, side="right")) - 1
        while start < stop:
            offset = start - int(self.run_cum[run])
            take = min(stop, int(self.run_cum[run + 1])) - start
            base = int(self.run_starts[run]) + offset
            parts.append(np.asarray(self.shard.tokens[base : base + take]))
            start += take
            run += 1
        return np.concatenate(parts)


def _live(shard: Shard, tombstones: set[str]) -> _LiveShard:
    offsets = shard.offsets
    if tombstones:
        keep = np.fromiter((pid not in tombstones for pid in shard.post_ids), dtype=bool, count=shard.n_posts)
    else:
        keep = np.ones(shard.n_posts, dtype=bool)
    starts, ends = offsets[:-1][keep], offsets[1:][keep]
    if len(starts) == 0:
        return _LiveShard(shard, np.zeros(1, np.int64), np.zeros(2, np.int64))
    # Merge neighbouring live posts into runs, so an untouched shard is one run (one slice per read).
    breaks = np.flatnonzero(starts[1:] != ends[:-1]) + 1
    run_starts = starts[np.r_[0, breaks]]
    run_ends = ends[np.r_[breaks - 1, len(ends) - 1]]
    run_cum = np.r_[0, np.cumsum(run_ends - run_starts)]
    return _LiveShard(shard, run_starts.astype(np.int64), run_cum.astype(np.int64))


class TokenWindows:
    """Windows of seq_len + 1 consecutive live tokens, cut from each shard (none spans two shards).

    Window i's inputs are its first seq_len tokens and its targets the last seq_len, so neighbouring
    windows share one token, as in nanoGPT. Posts run into each other, separated by end-of-post.
    """

    def __init__(self, shards: Sequence[Shard], seq_len: int, tombstones: set[str] | frozenset = frozenset()):
        self.seq_len = seq_len
        self.shards = [_live(s, set(tombstones)) for s in shards]
        per_shard = [max(0, (s.live_tokens - 1) // seq_len) for s in self.shards]
        self.cum = np.r_[0, np.cumsum(per_shard)].astype(np.int64)
        self.tokens = sum(s.live_tokens for s in self.shards)

    def __len__(self) -> int:
        return int(self.cum[-1])

    def example(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        k = int(np.searchsorted(self.cum, i, side="right")) - 1
        start = (i - int(self.cum[k])) * self.seq_len
        window = self.shards[k].read(start, start + self.seq_len + 1).astype(np.int64)
        return window[:-1], window[1:]


class DistributedLoader:
    """Each optimizer step's micro-batches for one data-parallel rank; checkpointable (Stateful).

    Global batch g of the run is samples [g × global_batch, (g + 1) × global_batch) of the endless
    stream epoch 0, epoch 1, ... (each epoch a fresh seeded permutation of the source). Within it,
    micro-step m of rank r takes the `micro_batch` samples starting at (m × dp_size + r) × micro_batch.
    """

    def __init__(
        self,
        source: Source,
        *,
        global_batch: int,
        micro_batch: int,
        dp_rank: int = 0,
        dp_size: int = 1,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ) -> None:
        if len(source) == 0:
            raise ValueError("the training data has no complete sequence; add data or shorten seq_len")
        if global_batch % (micro_batch * dp_size):
            raise ValueError(
                f"global_batch {global_batch} is not a multiple of {micro_batch} × {dp_size} ranks"
            )
        self.source = source
        self.global_batch, self.micro_batch = global_batch, micro_batch
        self.dp_rank, self.dp_size = dp_rank, dp_size
        self.accum = global_batch // (micro_batch * dp_size)
        self.seed = seed
        self.device = torch.device(device)
        self.samples_seen = 0  # by all ranks together: the loader's whole position
        self.saved_source_len: int | None = None
        self._order: tuple[int, np.ndarray] | None = None

    def _permutation(self, epoch: int) -> np.ndarray:
        if self._order is None or self._order[0] != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._order = (epoch, rng.permutation(len(self.source)))
        return self._order[1]

    def _sample(self, position: int) -> tuple[np.ndarray, np.ndarray]:
        epoch, index = divmod(position, len(self.source))
        return self.source.example(int(self._permutation(epoch)[index]))

    @property
    def epoch(self) -> float:
        return self.samples_seen / len(self.source)

    def next_step(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """This rank's `accum` micro-batches (inputs, targets), each (micro_batch, seq_len) int64."""
        batches = []
        for m in range(self.accum):
            first = self.samples_seen + (m * self.dp_size + self.dp_rank) * self.micro_batch
            inputs, targets = collate([self._sample(first + j) for j in range(self.micro_batch)])
            if self.device.type == "cuda":  # pinned, so the copy overlaps the previous step's work
                inputs = inputs.pin_memory().to(self.device, non_blocking=True)
                targets = targets.pin_memory().to(self.device, non_blocking=True)
            batches.append((inputs, targets))
        self.samples_seen += self.global_batch
        return batches

    # -- Stateful: what a checkpoint keeps ----------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"samples_seen": self.samples_seen, "source_len": len(self.source), "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # The order is the checkpoint's: its seed, not this run's config, drew the permutation. A
        # different source length (posts deleted since) keeps the position; the trainer says so.
        self.samples_seen = int(state["samples_seen"])
        self.seed = int(state["seed"])
        self.saved_source_len = int(state["source_len"])
        self._order = None


def collate(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Examples stacked into (inputs, targets), each (len(pairs), seq_len) int64."""
    return torch.from_numpy(np.stack([p[0] for p in pairs])), torch.from_numpy(
        np.stack([p[1] for p in pairs])
    )


def sequential_batches(
    source: Source, *, count: int, micro_batch: int, dp_rank: int = 0, dp_size: int = 1
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first `count` examples of `source` in order, in micro-batches dealt round-robin to the
    ranks: a fixed evaluation set, the same whatever the world size. Every rank gets as many
    micro-batches (sharded models run collectives in forward); a rank short of data gets a copy of
    its first batch with every target ignored, which adds nothing to the sums."""
    count = min(count, len(source))
    chunks = [range(i, min(i + micro_batch, count)) for i in range(0, count, micro_batch)]
    rounds = -(-len(chunks) // dp_size)
    out: list[tuple[torch.Tensor, torch.Tensor]] = []
    for r in range(rounds):
        c = r * dp_size + dp_rank
        if c < len(chunks):
            out.append(collate([source.example(i) for i in chunks[c]]))
        else:
            inputs, targets = out[0] if out else sequential_batches(source, count=1, micro_batch=1)[0]
            out.append((inputs, torch.full_like(targets, IGNORE)))
    return out
