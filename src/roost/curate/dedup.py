"""Exact and near-duplicate detection: character 5-gram MinHash (rensa), banded LSH, verified pairs.

Word n-grams give short posts no signature at all, so posts are shingled by characters, after the
text is cut down to what makes it the same post: case folded, links, mentions, PII tags, punctuation
and emoji dropped. rensa computes the MinHash slots from shingle hashes made here in bulk with numpy.
Each slot keeps its low 16 bits (b-bit MinHash), `rows` slots pack into one 64-bit band key, and a
post is a candidate duplicate of another when a whole band matches; candidates are kept when the
slots estimate a Jaccard similarity of at least `threshold`. Exact duplicates (the same normalised
text, case folded) form their own band and need no check.

The work is the standard multi-stage one, so it spreads over ranks: signatures per chunk (the
prepare stage), edges per band (`band_edges`, `index_edges`), clusters once (`components`, in
clusters.py). What is already in the corpus is kept in a persisted index (`DedupIndex`): per
generation, every band sorted, so new posts are looked up by binary search instead of re-reading it.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import rensa

from roost.curate.config import DedupConfig
from roost.curate.steps import Doc, Step

_PLACEHOLDERS = re.compile(r"@user\b|\bhttp\b|\[(?:email|phone|ip|card|secret)\]")
_NOT_ALNUM = re.compile(r"[\W_]+")
_TRAILING_HASHTAGS = re.compile(r"(?:\s*#\w+[^\w#]*)+$")
_ASCII_NON_ALNUM_TO_SPACE = bytes(c if chr(c).isalnum() else 32 for c in range(256))
_SLOT_BITS = 16
_SLOT_MASK = np.uint64((1 << _SLOT_BITS) - 1)
# Packed keys of up to 3 slots stay below 2**48; keys with this bit are per-post, never shared.
_UNIQUE_BIT = 1 << 63
# Odd 64-bit multipliers for the shingle polynomial (digits of pi and e; any odd constants work).
_SHINGLE_MULTIPLIERS = np.array(
    [
        *(0x243F6A8885A308D3, 0x13198A2E03707345, 0xA4093822299F31D1, 0x082EFA98EC4E6C89),
        *(0x452821E638D01377, 0xBE5466CF34E90C6D, 0xC0AC29B7C97C50DD, 0x3F84D5B5B5470917),
        *(0x9216D5D98979FB1B, 0xB7E151628AED2A6B),
    ],
    dtype=np.uint64,
)


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique for 1-D arrays, by sorting: numpy 2.4's np.unique hashes and is ~50x slower here."""
    values = np.sort(values)
    return values[np.r_[True, values[1:] != values[:-1]]] if values.size else values


def hash64(text: str) -> int:
    """A stable 64-bit hash (BLAKE2b); Python's hash() changes from process to process."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def hash64_many(texts: Iterable[str]) -> np.ndarray:
    return np.fromiter((hash64(t) for t in texts), dtype=np.uint64)


def exact_key(text: str) -> str:
    """What two posts share when they are the same text: the normalised text, case folded."""
    return text.casefold()


def near_key(text: str, folded: bool = False) -> str:
    """What near-duplicates share: words only, case folded, without links, mentions, PII tags and
    trailing hashtags.

    `folded`: the text is case folded already (exact_key's result).
    """
    if not folded:
        text = text.casefold()
    if "@" in text or "http" in text or "[" in text:
        text = _PLACEHOLDERS.sub(" ", text)
    if "#" in text:
        # A trailing block of hashtags labels the post rather than says it: two jokes under one
        # hashtag game are not duplicates, and a copy with a hashtag added still is one.
        text = _TRAILING_HASHTAGS.sub("", text)
    if text.isascii():  # most posts: a bytes translation does what the regex does, ten times faster
        return " ".join(text.encode().translate(_ASCII_NON_ALNUM_TO_SPACE).decode().split())
    return _NOT_ALNUM.sub(" ", text).strip()


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads the polynomial's bits so every bit of the hash is usable."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def shingle_hashes(keys: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every character k-gram of every key, flat, with each key's start offset.

    A key shorter than k is one shingle (itself, padded). Computed for the whole batch at once:
    the keys are laid end to end as code points and windows that cross a boundary are dropped.
    """
    if k > _SHINGLE_MULTIPLIERS.size:
        raise ValueError(f"shingles of {k} characters: at most {_SHINGLE_MULTIPLIERS.size} supported")
    padded = [key if len(key) >= k else key + "\0" * (k - len(key)) for key in keys]
    lengths = np.fromiter(map(len, padded), dtype=np.int64, count=len(padded))
    ends = np.cumsum(lengths)
    points = np.frombuffer("".join(padded).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    points = points.astype(np.uint64)
    windows = points.size - k + 1
    h = points[:windows] * _SHINGLE_MULTIPLIERS[0]
    for j in range(1, k):
        h += points[j : j + windows] * _SHINGLE_MULTIPLIERS[j]
    valid = np.ones(windows, dtype=bool)
    crossing = (ends[:-1, None] - np.arange(1, k, dtype=np.int64)[None, :]).ravel()
    valid[crossing] = False
    offsets = np.zeros(len(padded) + 1, dtype=np.uint64)
    offsets[1:] = np.cumsum(lengths - k + 1)
    return _mix64(h[valid]), offsets


class Signer:
    """Packed MinHash band keys for a batch of near-dup keys: (n, bands) uint64."""

    def __init__(self, config: DedupConfig) -> None:
        if not 1 <= config.rows <= 64 // _SLOT_BITS:
            raise ValueError(f"dedup.rows must be 1..{64 // _SLOT_BITS} (16-bit slots packed in 64 bits)")
        self.bands, self.rows, self.seed = config.bands, config.rows, config.seed
        self.k = config.shingle_chars
        self.num_perm = config.bands * config.rows
        self._shifts = (np.arange(self.rows, dtype=np.uint64) * np.uint64(_SLOT_BITS))[None, None, :]

    def sign(self, keys: Sequence[str]) -> np.ndarray:
        n = len(keys)
        if n == 0:
            return np.zeros((0, self.bands), dtype=np.uint64)
        flat, offsets = shingle_hashes(keys, self.k)
        matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(flat, offsets, self.num_perm, self.seed)
        slots = np.fromiter(
            itertools.chain.from_iterable(matrix.to_rows()), dtype=np.uint32, count=n * self.num_perm
        )
        slots = (slots.astype(np.uint64) & _SLOT_MASK).reshape(n, self.bands, self.rows)
        return np.bitwise_or.reduce(slots << self._shifts, axis=2)


def equal_slots(a: np.ndarray, b: np.ndarray, rows: int) -> np.ndarray:
    """How many of the `rows` MinHash slots packed in each pair of band keys are equal (uint8)."""
    diff = a ^ b
    equal = np.zeros(diff.shape, dtype=np.uint8)
    for i in range(rows):
        equal += ((diff >> np.uint64(_SLOT_BITS * i)) & _SLOT_MASK) == 0
    return equal


def jaccard_pairs(keys: Sequence[str], a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """Jaccard similarity of the k-gram sets of keys[a[i]] and keys[b[i]], for every i.

    All in numpy: each key's distinct shingles, laid out per pair and sorted, so a shingle the two
    keys share shows up as two equal neighbours. Shingles are compared by 40 bits of their hash,
    with the key's (then the pair's) number in the top 24 bits so every sort is of one uint64
    array: so at most 2**24 keys and pairs per call, and two different shingles of one pair
    collide with odds around 1e-8.
    """
    if len(keys) >= 1 << 24 or a.size >= 1 << 24:
        raise ValueError("jaccard_pairs: at most 2**24 keys and pairs per call")
    if a.size == 0:
        return np.zeros(0)
    flat, offsets = shingle_hashes(keys, k)
    doc = np.repeat(np.arange(len(keys), dtype=np.uint64), np.diff(offsets).astype(np.int64))
    tagged = sorted_unique((doc << np.uint64(40)) | (flat >> np.uint64(24)))  # distinct (key, shingle)
    starts = np.searchsorted(tagged >> np.uint64(40), np.arange(len(keys) + 1, dtype=np.uint64))
    sizes = np.diff(starts)
    low_bits = tagged & np.uint64((1 << 40) - 1)

    def spread(side: np.ndarray) -> np.ndarray:
        counts = sizes[side]
        pair = np.repeat(np.arange(side.size, dtype=np.uint64), counts)
        within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return (pair << np.uint64(40)) | low_bits[np.repeat(starts[side], counts) + within]

    merged = np.sort(np.concatenate([spread(a), spread(b)]))
    shared = merged[1:][merged[1:] == merged[:-1]] >> np.uint64(40)
    inter = np.bincount(shared.astype(np.int64), minlength=a.size)
    return inter / (sizes[a] + sizes[b] - inter)


def word_keys(key: str, max_words: int) -> tuple[int, list[int]]:
    """Hashes for the one-added-word rule: (the key's own hash, 0 if it is not 2..max_words-1 words
    long; the hashes of the key with each one word dropped, if it is 3..max_words words long).

    Adding a word to a short post moves its character Jaccard far (from "great game" to "great game
    honestly" is 0.4), so for short posts a copy with one word inserted is found by exact lookup:
    the shorter post's key equals the longer one's with a word dropped.
    """
    if key.count(" ") >= max_words:  # too many words for the rule: skip the work
        return 0, []
    words = key.split()
    n = len(words)
    own = hash64(key) if 2 <= n < max_words else 0
    dropped = (
        sorted({hash64(" ".join(words[:i] + words[i + 1 :])) for i in range(n)})
        if 3 <= n <= max_words
        else []
    )
    return own, dropped


def one_word_added(shorter: str, longer: str) -> bool:
    """`longer` is `shorter` with exactly one word inserted somewhere (and `shorter` has 2+ words)."""
    a, b = shorter.split(), longer.split()
    return len(a) >= 2 and len(b) == len(a) + 1 and any(b[:i] + b[i + 1 :] == a for i in range(len(b)))


class DedupSignature(Step):
    """Attaches the exact-text hash and the MinHash band keys to each post, a batch at a time.

    A post with no words left (only emoji, say) gets band keys no other post can share, made from
    its id; so does every post when near-dedup is off, and exact dedup off hashes the id instead of
    the text. Downstream stages then treat every post alike.
    """

    name = "dedup"

    def __init__(self, config: DedupConfig, batch: int = 2048) -> None:
        super().__init__()
        self.signer = Signer(config)
        self.exact, self.near = config.exact, config.near
        self.max_words = config.word_insertion_max_words if config.near else 0
        self.batch = batch

    def __call__(self, docs: Iterable[Doc], rank: int = 0, world_size: int = 1) -> Iterator[Doc]:
        docs = iter(docs)
        bands = self.signer.bands
        while batch := list(itertools.islice(docs, self.batch)):
            folded = [exact_key(doc.text) for doc in batch]
            for doc, text in zip(batch, folded, strict=True):
                doc.exact_hash = hash64(text if self.exact else "\0id " + doc.post.id)
            keys = [near_key(text, folded=True) for text in folded]
            signed = [i for i, key in enumerate(keys) if key] if self.near else []
            rows = self.signer.sign([keys[i] for i in signed])
            for i, row in zip(signed, rows, strict=True):
                batch[i].bands = row.tobytes()
            for doc, key in zip(batch, keys, strict=True):
                doc.key = key
                if not (self.near and key):
                    doc.bands = np.full(bands, hash64(doc.post.id) | _UNIQUE_BIT, dtype=np.uint64).tobytes()
                elif self.max_words:
                    doc.word_keys = word_keys(key, self.max_words)
            self.stats["signed"] += len(signed)
            yield from batch


def id_order(post_id: str) -> int:
    """A 64-bit key that sorts numeric ids (snowflakes) as `lowest id` does; others by a hash."""
    if post_id.isdigit() and len(post_id) <= 18:
        return int(post_id)
    return (1 << 63) | (hash64(post_id) >> 1)


def band_edges(
    values: np.ndarray, keys: np.ndarray, order: np.ndarray, clique_max: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of posts whose band values are equal.

    A bucket of up to `clique_max` posts gives every pair, so each post meets whichever one ends
    up representing it; a bigger bucket gives a star around its first post by `order` (the lowest
    id, for numeric ids), keeping the pairs linear in the bucket's size.
    """
    empty = np.zeros(0, dtype=np.int64)
    if values.size < 2:
        return empty, empty
    by_value = np.lexsort((keys, order, values))
    values, keys = values[by_value], keys[by_value]
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    sizes = np.diff(np.r_[starts, values.size])
    us, vs = [empty], [empty]
    for size in sorted_unique(sizes[(sizes >= 2) & (sizes <= clique_max)]).tolist():
        first, second = np.triu_indices(size, 1)
        base = starts[sizes == size][:, None]
        us.append(keys[(base + first).ravel()])
        vs.append(keys[(base + second).ravel()])
    for start, size in zip(
        starts[sizes > clique_max].tolist(), sizes[sizes > clique_max].tolist(), strict=True
    ):
        us.append(np.full(size - 1, keys[start]))
        vs.append(keys[start + 1 : start + size])
    return np.concatenate(us).astype(np.int64), np.concatenate(vs).astype(np.int64)


def index_edges(
    values: np.ndarray, keys: np.ndarray, index_values: np.ndarray, index_keys: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Edges from new posts to indexed posts with an equal band value (the lowest such key).

    `index_values` is sorted, and equal values are ordered by `index_keys`.
    """
    if values.size == 0 or index_values.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    pos = np.minimum(np.searchsorted(index_values, values), index_values.size - 1)
    hit = index_values[pos] == values
    return np.asarray(index_keys[pos[hit]], dtype=np.int64), keys[hit]


def word_edges(
    own_values: np.ndarray, own_keys: np.ndarray, dropped_values: np.ndarray, dropped_keys: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (shorter, longer): a post's own word key equals another's with one word dropped."""
    if own_values.size == 0 or dropped_values.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    order = np.argsort(dropped_values, kind="stable")
    dropped_values, dropped_keys = dropped_values[order], dropped_keys[order]
    lo = np.searchsorted(dropped_values, own_values, side="left")
    hi = np.searchsorted(dropped_values, own_values, side="right")
    counts = hi - lo
    u = np.repeat(own_keys, counts)
    starts = np.repeat(lo - np.r_[0, np.cumsum(counts)[:-1]], counts)
    v = dropped_keys[np.arange(u.size) + starts]
    keep = u != v
    return np.asarray(u[keep], dtype=np.int64), np.asarray(v[keep], dtype=np.int64)


def components(n: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Connected components of n nodes: each node's label is the smallest node in its component.

    Label propagation with pointer jumping, all in numpy. Used for exact duplicates, where being
    the same text is transitive, so a component is a group of equal posts.
    """
    labels = np.arange(n, dtype=np.int64)
    while u.size:
        low = np.minimum(labels[u], labels[v])
        new = labels.copy()
        np.minimum.at(new, u, low)
        np.minimum.at(new, v, low)
        while not np.array_equal(jumped := new[new], new):
            new = jumped
        if np.array_equal(new, labels):
            break
        labels = new
    return labels


def greedy_clusters(n: int, u: np.ndarray, v: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Each node's representative, for n nodes joined by verified duplicate pairs (u, v).

    Nodes are taken in `order` (best first: already in the corpus, then the lowest id); each joins
    the first-ordered representative among its neighbours, or becomes one itself. Unlike connected
    components, this never chains: every member of a cluster is a checked duplicate of the post
    the cluster keeps, so a run of templated posts, each close to the next, is not one cluster.
    """
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    # Both directions of every pair, sorted by source as one int64 each (node ids are below 2**31):
    # each node's neighbours are then one slice.
    edges = np.concatenate([(u.astype(np.int64) << 32) | v, (v.astype(np.int64) << 32) | u])
    edges.sort()
    starts = memoryview(np.searchsorted(edges >> 32, np.arange(n + 1)).astype(np.int64))
    neighbours = memoryview((edges & 0xFFFFFFFF).astype(np.int32))
    del edges
    # The walk is sequential, so it is a Python loop; memoryviews hand it Python ints one at a time
    # from compact arrays, where lists would hold every entry as an object (~36 bytes).
    rank_of = memoryview(rank)
    out = np.full(n, -1, dtype=np.int64)
    rep = memoryview(out)
    for node in memoryview(order.astype(np.int64)):
        best, best_rank = node, n
        for other in neighbours[starts[node] : starts[node + 1]]:
            if rep[other] == other and rank_of[other] < best_rank:
                best, best_rank = other, rank_of[other]
        rep[node] = best
    return out


def representatives(
    n: int, exact: tuple[np.ndarray, np.ndarray], near: tuple[np.ndarray, np.ndarray], rank: np.ndarray
) -> np.ndarray:
    """The post each of n posts is kept as: itself, or the representative it duplicates.

    Exact duplicates group transitively (components); near pairs then join groups the greedy,
    non-chaining way. `rank` orders posts best first; a group is as good as its best post and is
    represented by it.
    """
    group = components(n, *exact)  # each post's group: its smallest member
    best = np.full(n, n, dtype=np.int64)
    np.minimum.at(best, group, rank)
    labels = sorted_unique(group)
    member = np.empty(n, dtype=np.int64)
    member[rank] = np.arange(n)  # post at each rank
    gu, gv = np.searchsorted(labels, group[near[0]]), np.searchsorted(labels, group[near[1]])
    apart = gu != gv
    group_rep = greedy_clusters(labels.size, gu[apart], gv[apart], np.argsort(best[labels], kind="stable"))
    return member[best[labels[group_rep]]][np.searchsorted(labels, group)]


class IndexGeneration:
    """One generation of the persisted index: the cluster representatives it added to the corpus.

    Files: `bands.npy` (bands+1, n) each MinHash band's values sorted, the last row being the
    exact-text hashes; `keys.npy` (bands+1, n) the row each sorted value belongs to (band-major, so
    one band is one contiguous read); `exact.npy` (n,) each row's exact-text hash; `words.npy` the
    one-added-word keys of short rows (value, row, kind); `reps.parquet` each row's post id and
    near-dup key; `ids.npy` the sorted hashes of every post id the generation kept.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @cached_property
    def size(self) -> int:
        return int(np.load(self.path / "exact.npy", mmap_mode="r").shape[0])

    def band(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Band j's sorted values and their rows (j == bands: the exact hashes)."""
        values = np.load(self.path / "bands.npy", mmap_mode="r")
        keys = np.load(self.path / "keys.npy", mmap_mode="r")
        return np.array(values[j]), np.array(keys[j])

    def exact(self, rows: np.ndarray) -> np.ndarray:
        return np.load(self.path / "exact.npy", mmap_mode="r")[rows]

    def words(self) -> np.ndarray:
        return np.load(self.path / "words.npy")

    def reps(self, rows: np.ndarray, column: str) -> list[str]:
        """Column `id` or `key` of these rows."""
        values = pq.read_table(self.path / "reps.parquet", columns=[column]).column(0)
        return values.take(pa.array(rows, pa.int64())).to_pylist()

    def kept_ids(self) -> np.ndarray:
        return np.load(self.path / "ids.npy")


class DedupIndex:
    """The persisted LSH index of the corpus: a directory of generations, `g0000`, `g0001`, ..."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def generations(self) -> list[IndexGeneration]:
        if not self.directory.exists():
            return []
        names = sorted(p.name for p in self.directory.iterdir() if re.fullmatch(r"g\d{4}", p.name))
        return [IndexGeneration(self.directory / name) for name in names]

    def contains(self, id_hashes: np.ndarray) -> np.ndarray:
        """Which of these post-id hashes the corpus already holds."""
        found = np.zeros(id_hashes.size, dtype=bool)
        for generation in self.generations():
            kept = generation.kept_ids()
            if kept.size:
                pos = np.minimum(np.searchsorted(kept, id_hashes), kept.size - 1)
                found |= kept[pos] == id_hashes
        return found

    def write_generation(
        self,
        generation: int,
        band_values: Callable[[int], np.ndarray],
        bands: int,
        reps: pa.Table,
        words: np.ndarray,
        kept_ids: np.ndarray,
    ) -> None:
        """Publish one generation, written aside and renamed into place as a whole.

        `band_values(j)` gives band j of every representative in row order (j == bands: the exact
        hashes); bands are fetched one at a time, so memory holds one band, not all of them. `reps`
        has the representatives' `id` and near-dup `key`; `words` their one-added-word keys.
        """
        final = self.directory / f"g{generation:04d}"
        if final.exists():
            return
        tmp = self.directory / f".g{generation:04d}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        n = reps.num_rows
        rows = np.arange(n, dtype=np.uint32)
        with (
            _NpyRows(tmp / "bands.npy", np.uint64, (bands + 1, n)) as sorted_values,
            _NpyRows(tmp / "keys.npy", np.uint32, (bands + 1, n)) as sorted_rows,
        ):
            for j in range(bands + 1):
                values = np.asarray(band_values(j), dtype=np.uint64)
                order = np.lexsort((rows, values))
                sorted_values.write(values[order])
                sorted_rows.write(rows[order])
        exact = values  # the last band fetched: the exact hashes, in row order
        for name, array in (
            ("ids", np.sort(kept_ids)),
            ("exact", exact),
            ("words", words[np.argsort(words["value"], kind="stable")]),
        ):
            with open(tmp / f"{name}.npy", "wb") as handle:
                np.save(handle, array)
        pq.write_table(reps, tmp / "reps.parquet", compression="zstd")
        for child in tmp.iterdir():
            with open(child, "rb") as handle:
                os.fsync(handle.fileno())
        try:
            os.replace(tmp, final)
        except OSError:  # another process published the same generation first
            if not final.exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)


class _NpyRows:
    """Writes a 2-D .npy file one row at a time (so it never has to be whole in memory)."""

    def __init__(self, path: Path, dtype: type, shape: tuple[int, int]) -> None:
        self.dtype = np.dtype(dtype)
        self.shape = shape
        self.rows = 0
        self.handle = open(path, "wb")  # noqa: SIM115 - closed in __exit__
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(self.handle, header)

    def write(self, row: np.ndarray) -> None:
        if row.shape != (self.shape[1],):
            raise ValueError(f"row of shape {row.shape}, expected ({self.shape[1]},)")
        self.handle.write(np.ascontiguousarray(row, dtype=self.dtype).tobytes())
        self.rows += 1

    def __enter__(self) -> _NpyRows:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()
        if exc[0] is None and self.rows != self.shape[0]:
            raise ValueError(f"wrote {self.rows} rows of {self.shape[0]}")
