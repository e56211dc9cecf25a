"""The global stage: duplicate clusters, bot accounts, and replies kept so threads survive.

It runs once per generation, after every band's candidate pairs are in: near-duplicate candidates
are verified (MinHash estimate, then exact Jaccard for close calls; one-word insertions exactly),
exact and verified pairs form clusters, and each cluster keeps one post: one already in the corpus
if there is one, else the lowest id (shortest, then lexicographically smallest: numeric order for
numeric ids) among posts that are neither spam nor soft-removed. Bots are authors in the
most-active tail or blasting copies; all their posts go. Last, a reply removed only for being short
or a duplicate comes back when its parent is in the corpus, chain by chain, because conversation
tuning learns from whole threads.

Per post it keeps numbers, not Python objects (a reason code, a representative's index; ids and
keys as Arrow strings), so two million posts fit well within a gigabyte. The result is, per chunk,
the rows whose fate is not "keep, its own cluster": a Parquet table of (row, reason or null,
cluster_id) that finalize applies.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from roost.curate.config import DedupConfig
from roost.curate.dedup import (
    DedupIndex,
    equal_slots,
    jaccard_pairs,
    one_word_added,
    representatives,
    sorted_unique,
)
from roost.curate.spam import blasting_authors, merge_activity, most_active_authors
from roost.curate.stages import SOFT_REASONS, chunk_sizes
from roost.curate.work import Plan, WorkDir, publish, tmp_path

#: Every reason this stage gives, by code (0: kept).
REASONS = (None, "spam.most_active", "spam.copy_paste", *SOFT_REASONS, "dedup.exact", "dedup.near")
_CODE = {reason: code for code, reason in enumerate(REASONS)}
#: Removals a reply is forgiven when its parent is in the corpus.
RESCUABLE = np.array([_CODE[r] for r in (*SOFT_REASONS, "dedup.exact", "dedup.near")], dtype=np.uint8)
#: corpus/clusters-gNNNN.parquet: every post of the generation that is in a duplicate cluster, the
#: id of the post its cluster kept, and why it was removed (null: it is in the corpus).
CLUSTERS_SCHEMA = pa.schema([("id", pa.string()), ("cluster_id", pa.string()), ("reason", pa.string())])
_DECISIONS_SCHEMA = pa.schema([("row", pa.uint32()), ("reason", pa.string()), ("cluster_id", pa.string())])

# How far from the threshold a MinHash estimate must be to decide without an exact check: a tenth
# is 1.5 standard errors of a 60-slot estimate, and pairs that close are the ones compared exactly.
_SURE = 0.1
# Candidate pairs per numpy batch when counting equal slots, and when comparing exactly; band
# candidates (summed over the bands) per part of the verification. Together they bound the memory.
_PAIR_BLOCK = 1 << 20
_EXACT_BLOCK = 20_000
_PART_EDGES = 1 << 22


def latest_authors(index: DedupIndex, before: int) -> np.ndarray | None:
    """The cumulative per-author activity as of the last generation before `before`."""
    snapshots = sorted(index.directory.glob("authors-g*.npy")) if index.directory.exists() else []
    snapshots = [p for p in snapshots if int(p.stem.removeprefix("authors-g")) < before]
    return np.load(snapshots[-1]) if snapshots else None


class _Space:
    """Keys of one generation's graph: the generation's posts, then each indexed generation's rows."""

    def __init__(self, wd: WorkDir, plan: Plan) -> None:
        self.wd, self.plan = wd, plan
        self.offsets = np.r_[0, np.cumsum(chunk_sizes(wd, plan), dtype=np.int64)]
        self.n = int(self.offsets[-1])
        self.generations = DedupIndex(wd.ws.corpus_dir / ".index").generations()
        self.bases = np.r_[0, np.cumsum([g.size for g in self.generations], dtype=np.int64)] + self.n

    def split(self, keys: np.ndarray) -> Iterator[tuple[int | None, Any, np.ndarray, np.ndarray]]:
        """For sorted `keys`: (chunk or None, index generation or None, rows in it, positions)."""
        for c in range(self.plan.chunks):
            lo, hi = np.searchsorted(keys, self.offsets[c : c + 2])
            if hi > lo:
                yield c, None, keys[lo:hi] - self.offsets[c], np.arange(lo, hi)
        for g, generation in enumerate(self.generations):
            lo, hi = np.searchsorted(keys, self.bases[g : g + 2])
            if hi > lo:
                yield None, generation, keys[lo:hi] - self.bases[g], np.arange(lo, hi)

    def prepared(self, chunk: int) -> Path:
        return self.wd.path("prep", f"c{chunk:05d}.parquet")

    def exact(self, keys: np.ndarray, meta: np.ndarray) -> np.ndarray:
        out = np.empty(keys.size, dtype=np.uint64)
        for chunk, generation, rows, positions in self.split(keys):
            out[positions] = (
                meta["exact"][rows + self.offsets[chunk]] if generation is None else generation.exact(rows)
            )
        return out

    def band_column(self, band: int) -> np.ndarray:
        """MinHash band `band` of every post of the generation, in key order."""
        return np.concatenate(
            [
                np.load(self.wd.path("prep", f"c{c:05d}.sig.npy"), mmap_mode="r")[band]
                for c in range(self.plan.chunks)
            ]
            or [np.zeros(0, np.uint64)]
        )

    def equal_slots(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """How many MinHash slots each pair of the generation's posts shares. One band at a time:
        memory holds one band of every post and a block of pairs, never whole signatures."""
        dedup = self.plan.config.dedup
        equal = np.zeros(u.size, dtype=np.uint8)
        for band in range(dedup.bands):
            column = self.band_column(band)
            for start in range(0, u.size, _PAIR_BLOCK):
                stop = start + _PAIR_BLOCK
                equal[start:stop] += equal_slots(column[u[start:stop]], column[v[start:stop]], dedup.rows)
        return equal

    def strings(self, keys: np.ndarray, column: str) -> pa.Array:
        """Post `id`, or near-dup `key`, of each of the sorted `keys`, as one Arrow string array."""
        pieces = []
        for chunk, generation, rows, _ in self.split(keys):
            if generation is not None:
                pieces.append(pa.array(generation.reps(rows, column), pa.string()))
                continue
            found = pq.read_table(self.prepared(chunk), columns=[column]).column(0).take(pa.array(rows))
            pieces.append(found.combine_chunks() if isinstance(found, pa.ChunkedArray) else found)
        return pa.concat_arrays(pieces) if pieces else pa.array([], pa.string())

    def jaccard(self, u: np.ndarray, v: np.ndarray, k: int) -> np.ndarray:
        """Exact character k-gram Jaccard similarity of each pair's near-dup keys."""
        nodes = sorted_unique(np.concatenate([u, v]))
        keys = self.strings(nodes, "key")
        out = np.empty(u.size)
        for start in range(0, u.size, _EXACT_BLOCK):
            stop = start + _EXACT_BLOCK
            a, b = np.searchsorted(nodes, u[start:stop]), np.searchsorted(nodes, v[start:stop])
            used = sorted_unique(np.concatenate([a, b]))
            out[start:stop] = jaccard_pairs(
                keys.take(pa.array(used)).to_pylist(), np.searchsorted(used, a), np.searchsorted(used, b), k
            )
        return out


def _band_file(wd: WorkDir, band: int) -> Path:
    return wd.path("buckets", f"b{band:03d}.npy")


def _edges(wd: WorkDir, band: int) -> tuple[np.ndarray, np.ndarray]:
    """One bucket file's pairs, each once."""
    pairs = np.load(_band_file(wd, band))
    return _unpack(sorted_unique(_pack(pairs[0], pairs[1])))


def _pack(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A pair as one int64 (keys are below 2**31), so sorting and uniqueness are of one array."""
    return (u.astype(np.int64) << 32) | v


def _unpack(pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return pairs >> 32, pairs & 0xFFFFFFFF


def _near_pairs(space: _Space, config: DedupConfig) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """The verified near-duplicate pairs among the MinHash bands' candidates, sorted.

    A pair is usually a candidate in several bands, and there can be tens of millions of them; so
    candidates are taken part by part (by their first key modulo the number of parts), and each
    part's union over the bands is estimated before the next part is read: memory holds one part's
    candidates and the pairs that passed or need a closer look, never every band's candidates.
    The MinHash slots settle most candidates; the close calls, and pairs with a post of an earlier
    generation (whose slots the index does not keep), are compared exactly, all together at the end
    (one pass over the posts' texts).
    """
    files = [_band_file(space.wd, j) for j in range(config.bands)]
    edges = sum(np.load(path, mmap_mode="r").shape[1] for path in files)
    parts = max(1, -(-edges // _PART_EDGES))
    verified, unsure, candidates = [], [], 0
    for part in range(parts):
        packed = []
        for path in files:
            u, v = np.load(path, mmap_mode="r")
            mine = np.flatnonzero(u % parts == part) if parts > 1 else slice(None)
            packed.append(_pack(np.asarray(u[mine]), np.asarray(v[mine])))
        pairs = sorted_unique(np.concatenate(packed))
        del packed
        candidates += pairs.size
        u, v = _unpack(pairs)
        inside = np.flatnonzero((u < space.n) & (v < space.n))
        estimate = space.equal_slots(u[inside], v[inside]) / (config.bands * config.rows)
        sure = np.abs(estimate - config.threshold) >= _SURE
        verified.append(pairs[inside[sure & (estimate >= config.threshold)]])
        close = np.ones(pairs.size, dtype=bool)
        close[inside[sure]] = False
        unsure.append(pairs[close])
    close = np.concatenate(unsure)
    u, v = _unpack(close)
    similar = space.jaccard(u, v, config.shingle_chars) >= config.threshold
    pairs = np.sort(np.concatenate([*verified, close[similar]]))
    return *_unpack(pairs), {"near_candidates": candidates, "near_verified": int(pairs.size)}


def _words_added(space: _Space, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Which (shorter, longer) candidates really are the shorter post with one word inserted."""
    nodes = sorted_unique(np.concatenate([u, v]))
    keys = space.strings(nodes, "key")
    ok = np.zeros(u.size, dtype=bool)
    for start in range(0, u.size, _EXACT_BLOCK):
        stop = start + _EXACT_BLOCK
        shorter = keys.take(pa.array(np.searchsorted(nodes, u[start:stop]))).to_pylist()
        longer = keys.take(pa.array(np.searchsorted(nodes, v[start:stop]))).to_pylist()
        ok[start:stop] = [one_word_added(a, b) for a, b in zip(shorter, longer, strict=True)]
    return ok


def _rank(ids: pa.Array, priority: np.ndarray) -> np.ndarray:
    """Each node's place in keep-order: by priority, then the lowest id (shortest, then smallest)."""
    table = pa.table({"priority": priority, "length": pc.utf8_length(ids), "id": ids})
    order = pc.sort_indices(
        table, sort_keys=[("priority", "ascending"), ("length", "ascending"), ("id", "ascending")]
    )
    rank = np.empty(len(ids), dtype=np.int64)
    rank[order.to_numpy()] = np.arange(len(ids))
    return rank


def cluster_generation(wd: WorkDir, plan: Plan) -> dict[str, Any]:
    """Decide every post's fate that depends on other posts; write the decisions per chunk."""
    config, dedup = plan.config, plan.config.dedup
    space = _Space(wd, plan)
    n = space.n
    meta = np.concatenate([np.load(wd.path("prep", f"c{c:05d}.meta.npy")) for c in range(plan.chunks)])
    stats: dict[str, Any] = {}

    # Duplicate pairs: exact ones as they are, near and word-insertion candidates once verified.
    exact_u, exact_v = _edges(wd, dedup.bands)
    near_u, near_v, near_stats = _near_pairs(space, dedup)
    word_u, word_v = _edges(wd, dedup.bands + 1)
    words_ok = _words_added(space, word_u, word_v)
    stats.update(exact_pairs=int(exact_u.size), **near_stats, word_insertions=int(words_ok.sum()))
    near_u = np.concatenate([near_u, word_u[words_ok]])
    near_v = np.concatenate([near_v, word_v[words_ok]])
    del words_ok, word_u, word_v
    nodes = sorted_unique(np.concatenate([exact_u, exact_v, near_u, near_v]))
    exact_pairs = (np.searchsorted(nodes, exact_u), np.searchsorted(nodes, exact_v))
    near_pairs = (np.searchsorted(nodes, near_u), np.searchsorted(nodes, near_v))
    del exact_u, exact_v, near_u, near_v
    is_new = nodes < n
    new_rows = nodes[is_new]
    ids = space.strings(nodes, "id")
    exact = space.exact(nodes, meta)

    def clusters(spam: np.ndarray) -> np.ndarray:
        """Representatives: indexed posts first, then posts neither spam nor soft, then the rest."""
        priority = np.zeros(nodes.size, dtype=np.int8)
        priority[is_new] = np.where(spam[new_rows], 3, np.where(meta["soft"][new_rows] != 0, 2, 1))
        return representatives(nodes.size, exact_pairs, near_pairs, _rank(ids, priority))

    # Bots: the most-active tail (counting every post read, kept or not) and copy-paste blasters
    # (judged on the clusters as they are before anyone is called a bot).
    index = DedupIndex(wd.ws.corpus_dir / ".index")
    spam = np.zeros(n, dtype=bool)
    rep = clusters(spam)
    code = np.zeros(n, dtype=np.uint8)
    bot_counts = {"most_active": 0, "copy_paste": 0}
    if "spam" in config.steps:
        tables = [np.load(wd.path("prep", f"c{c:05d}.authors.npy")) for c in range(plan.chunks)]
        previous = latest_authors(index, plan.generation)
        activity = merge_activity(tables + ([previous] if previous is not None else []))
        originals = meta["parent"][new_rows] == 0
        bots = {
            "most_active": most_active_authors(activity, config.spam),
            "copy_paste": blasting_authors(
                rep[is_new][originals],
                meta["author"][new_rows][originals],
                meta["created"][new_rows][originals],
                activity,
                config.spam,
            ),
        }
        for kind, authors in bots.items():  # copy_paste wins when both apply
            hit = np.isin(meta["author"], authors)
            code[hit] = _CODE[f"spam.{kind}"]
            spam |= hit
            bot_counts[kind] = int(authors.size)
    stats["bot_accounts"] = bot_counts
    soft = (meta["soft"] != 0) & ~spam
    for i, reason in enumerate(SOFT_REASONS):
        code[soft & (meta["soft"] == i + 1)] = _CODE[reason]

    # Each cluster keeps its representative; the others are its duplicates.
    if spam.any():
        rep = clusters(spam)
    spam_node = np.zeros(nodes.size, dtype=bool)
    spam_node[is_new] = spam[new_rows]
    duplicate = is_new & (rep != np.arange(nodes.size)) & ~spam_node
    code[nodes[duplicate]] = np.where(
        exact[duplicate] == exact[rep[duplicate]], _CODE["dedup.exact"], _CODE["dedup.near"]
    )
    stats["clusters"] = int(sorted_unique(rep[rep != np.arange(nodes.size)]).size)
    representative = np.full(n, -1, dtype=np.int64)  # per post of the generation: its rep's node
    representative[new_rows] = rep[is_new]

    stats["rescued_replies"] = _rescue_replies(meta, code, index)
    _write_decisions(wd, plan, space, code, representative, ids)
    return stats


def _rescue_replies(meta: np.ndarray, code: np.ndarray, index: DedupIndex) -> int:
    """Keep replies removed only as short or duplicate whose parent is kept; returns how many."""
    candidates = np.flatnonzero(np.isin(code, RESCUABLE) & (meta["parent"] != 0))
    if candidates.size == 0:
        return 0
    kept = np.sort(meta["id"][code == 0])
    in_index = index.contains(meta["parent"][candidates])
    rescued = 0
    while candidates.size:
        parents = meta["parent"][candidates]
        pos = np.minimum(np.searchsorted(kept, parents), max(kept.size - 1, 0))
        ok = in_index | ((kept[pos] == parents) if kept.size else False)
        if not ok.any():
            break
        code[candidates[ok]] = 0
        rescued += int(ok.sum())
        kept = np.sort(np.concatenate([kept, meta["id"][candidates[ok]]]))
        candidates, in_index = candidates[~ok], in_index[~ok]
    return rescued


def _write_decisions(
    wd: WorkDir, plan: Plan, space: _Space, code: np.ndarray, representative: np.ndarray, ids: pa.Array
) -> None:
    """Per chunk, the rows not simply kept as their own cluster; and every clustered post, with
    its cluster id and what became of it, for people to audit (`corpus/clusters-gNNNN.parquet`)."""
    reasons = pa.array(REASONS, pa.string())
    clustered = []
    for c in range(plan.chunks):
        lo, hi = int(space.offsets[c]), int(space.offsets[c + 1])
        rows = np.flatnonzero((code[lo:hi] != 0) | (representative[lo:hi] >= 0))
        own = pq.read_table(space.prepared(c), columns=["id"]).column(0).take(pa.array(rows)).combine_chunks()
        reps = representative[lo:hi][rows]
        in_cluster = reps >= 0
        cluster_ids = pc.if_else(pa.array(in_cluster), ids.take(pa.array(np.maximum(reps, 0))), own)
        reason = reasons.take(pa.array(code[lo:hi][rows]))
        _write_table(
            pa.table(
                {"row": rows.astype(np.uint32), "reason": reason, "cluster_id": cluster_ids},
                _DECISIONS_SCHEMA,
            ),
            wd.path("cluster", f"c{c:05d}.parquet"),
        )
        mask = pa.array(in_cluster)
        clustered.append(
            pa.table(
                {
                    "id": own.filter(mask),
                    "cluster_id": cluster_ids.filter(mask),
                    "reason": reason.filter(mask),
                },
                schema=CLUSTERS_SCHEMA,
            )
        )
    _write_table(pa.concat_tables(clustered), wd.path("cluster", "clusters.parquet"))


def _write_table(table: pa.Table, path: Path) -> None:
    tmp = tmp_path(path)
    pq.write_table(table, tmp, compression="zstd")
    publish(tmp, path)
