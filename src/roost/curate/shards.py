"""Token shards: what curation writes and the training loader memory-maps.

Layout of `shards/` (the contract between curation and training):

    index.json               dtype, vocab size, end-of-post id, tokenizer hash, and per split the
                             list of shards with their token and post counts
    <split>-NNNNN.bin        the tokens, post after post, each post followed by the end-of-post id
    <split>-NNNNN.idx.npy    int64 offsets of post starts into .bin, plus the end (posts + 1 values)
    <split>-NNNNN.ids        the post ids, one per line, in the same order
    tombstones.txt           ids of posts deleted after their shard was written; the loader skips them

A shard is written under a temporary name and renamed into place when complete, so a reader (or a
resumed writer) never sees half a shard.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

INDEX_NAME = "index.json"
TOMBSTONES_NAME = "tombstones.txt"
SPLITS = ("train", "val")


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 while every id fits (half the bytes to read), else uint32."""
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


class ShardWriter:
    """Writes one shard: `add` posts' token ids, then `close` to publish it atomically."""

    def __init__(self, directory: Path, name: str, dtype: np.dtype, eot_id: int) -> None:
        self.directory = Path(directory)
        self.name = name
        self.dtype = np.dtype(dtype)
        self.eot_id = eot_id
        self.directory.mkdir(parents=True, exist_ok=True)
        self._bin = open(self._tmp(".bin"), "wb")  # noqa: SIM115 - closed in close()
        self._ids = open(self._tmp(".ids"), "w", encoding="utf-8")  # noqa: SIM115
        self._offsets: list[int] = [0]
        self.tokens = 0

    def _tmp(self, suffix: str) -> Path:
        return self.directory / f".{self.name}{suffix}.tmp"

    @property
    def posts(self) -> int:
        return len(self._offsets) - 1

    def add(self, post_id: str, token_ids: Iterable[int]) -> None:
        if "\n" in post_id:
            raise ValueError(f"post id {post_id!r} contains a newline")
        array = np.fromiter(token_ids, dtype=np.int64)
        if array.size and (array.min() < 0 or array.max() > np.iinfo(self.dtype).max):
            raise ValueError(f"token id out of range for {self.dtype} in post {post_id}")
        array = np.append(array, self.eot_id).astype(self.dtype)
        self._bin.write(array.tobytes())
        self._ids.write(post_id + "\n")
        self.tokens += array.size
        self._offsets.append(self.tokens)

    def add_batch(self, post_ids: Sequence[str], token_ids: Sequence[Sequence[int]]) -> None:
        """Add many posts at once: the same bytes as `add` for each, in one write."""
        if len(post_ids) != len(token_ids):
            raise ValueError(f"{len(post_ids)} post ids but {len(token_ids)} token lists")
        if not post_ids:
            return
        if any("\n" in p for p in post_ids):
            raise ValueError("a post id contains a newline")
        lengths = np.fromiter(map(len, token_ids), dtype=np.int64, count=len(token_ids)) + 1
        ends = np.cumsum(lengths)
        flat = np.empty(int(ends[-1]), dtype=np.int64)
        is_eot = np.zeros(flat.size, dtype=bool)
        is_eot[ends - 1] = True
        flat[~is_eot] = np.fromiter(
            itertools.chain.from_iterable(token_ids), dtype=np.int64, count=flat.size - ends.size
        )
        flat[is_eot] = self.eot_id
        if flat.min() < 0 or flat.max() > np.iinfo(self.dtype).max:
            raise ValueError(f"token id out of range for {self.dtype} in posts {post_ids[0]}..{post_ids[-1]}")
        self._bin.write(flat.astype(self.dtype).tobytes())
        self._ids.write("".join(p + "\n" for p in post_ids))
        self._offsets.extend((self.tokens + ends).tolist())
        self.tokens += flat.size

    def close(self) -> dict[str, int | str]:
        """Flush, fsync and rename into place; returns this shard's entry for index.json."""
        for handle in (self._bin, self._ids):
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
        with open(self._tmp(".idx.npy"), "wb") as handle:
            np.save(handle, np.asarray(self._offsets, dtype=np.int64))
            handle.flush()
            os.fsync(handle.fileno())
        for suffix in (".bin", ".ids", ".idx.npy"):
            os.replace(self._tmp(suffix), self.directory / f"{self.name}{suffix}")
        return {"name": self.name, "tokens": self.tokens, "posts": self.posts}


def write_index(directory: Path, index: dict) -> None:
    """Write index.json atomically (it is what makes a set of shards visible to readers)."""
    tmp = Path(directory) / f".{INDEX_NAME}.tmp"
    tmp.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, Path(directory) / INDEX_NAME)


def append_tombstones(directory: Path, post_ids: Iterable[str]) -> int:
    """Record posts deleted after their shards were written; returns how many were new."""
    path = Path(directory) / TOMBSTONES_NAME
    known = read_tombstones(directory)
    new = sorted({p for p in post_ids if p not in known})
    if new:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write("".join(p + "\n" for p in new))
            handle.flush()
            os.fsync(handle.fileno())
    return len(new)


def read_tombstones(directory: Path) -> set[str]:
    path = Path(directory) / TOMBSTONES_NAME
    if not path.exists():
        return set()
    return {line for line in path.read_text(encoding="utf-8").splitlines() if line}


@dataclass
class Shard:
    """One published shard, memory-mapped on first use."""

    directory: Path
    name: str
    dtype: np.dtype
    n_tokens: int
    n_posts: int

    @cached_property
    def tokens(self) -> np.memmap:
        return np.memmap(self.directory / f"{self.name}.bin", dtype=self.dtype, mode="r")

    @cached_property
    def offsets(self) -> np.ndarray:
        return np.load(self.directory / f"{self.name}.idx.npy")

    @cached_property
    def post_ids(self) -> list[str]:
        return (self.directory / f"{self.name}.ids").read_text(encoding="utf-8").splitlines()

    def post_tokens(self, i: int) -> np.ndarray:
        """Tokens of the i-th post, its end-of-post id included."""
        return self.tokens[self.offsets[i] : self.offsets[i + 1]]


@dataclass
class ShardSet:
    """Everything in a `shards/` directory, as index.json describes it."""

    directory: Path
    index: dict = field(repr=False)

    @classmethod
    def open(cls, directory: Path) -> ShardSet:
        directory = Path(directory)
        path = directory / INDEX_NAME
        if not path.exists():
            raise FileNotFoundError(
                f"no token shards in {directory} (missing {INDEX_NAME}); run `roost curate` first"
            )
        return cls(directory, json.loads(path.read_text(encoding="utf-8")))

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.index["dtype"])

    @property
    def vocab_size(self) -> int:
        return int(self.index["vocab_size"])

    @property
    def eot_id(self) -> int:
        return int(self.index["eot_id"])

    def shards(self, split: str) -> list[Shard]:
        if split not in self.index["splits"]:
            raise KeyError(f"no {split!r} split in {self.directory}; have {sorted(self.index['splits'])}")
        return [
            Shard(self.directory, s["name"], self.dtype, int(s["tokens"]), int(s["posts"]))
            for s in self.index["splits"][split]
        ]

    def tombstones(self) -> set[str]:
        return read_tombstones(self.directory)
