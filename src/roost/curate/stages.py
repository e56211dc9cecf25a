"""The per-chunk and per-band tasks of a generation: prepare, buckets, finalize.

prepare (one task per chunk of raw rows): decode, run the per-post steps, write the survivors as
Parquet plus, per post, a small metadata row (hashes of id, parent, author, exact text; time) and
its MinHash band keys. buckets (one task per band): the candidate duplicate pairs that band gives,
within the generation and against the persisted index. finalize (one task per chunk): apply the
global decisions (clusters.py) and write the chunk's corpus part.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from roost.curate.config import CurateConfig
from roost.curate.corpus import CORPUS_SCHEMA, PREPARED_SCHEMA, ParquetOut, part_name, prepared_table
from roost.curate.dedup import (
    DedupIndex,
    DedupSignature,
    band_edges,
    hash64,
    id_order,
    index_edges,
    word_edges,
)
from roost.curate.langid import LanguageId
from roost.curate.normalize import Normalize
from roost.curate.pii import ScrubPii
from roost.curate.quality import QualityFilter
from roost.curate.spam import BoilerplateSpam, author_activity
from roost.curate.steps import Doc, Exclusions, Step, run_steps, step_stats
from roost.curate.work import Plan, WorkDir, save_npy_atomic, write_bytes_atomic
from roost.posts import decode_post
from roost.rawstore import RawStore

#: Per post of a prepared chunk: hashes of its id, parent (0: not a reply), author and exact text,
#: its id's sort key (dedup.id_order), its time (µs since the epoch), and its soft removal (index
#: into SOFT_REASONS + 1; 0: none).
META_DTYPE = np.dtype(
    [
        ("id", "<u8"),
        ("parent", "<u8"),
        ("author", "<u8"),
        ("exact", "<u8"),
        ("order", "<u8"),
        ("created", "<i8"),
        ("soft", "u1"),
    ]
)
#: Removals a reply is forgiven when its parent is in the corpus (see clusters.py).
SOFT_REASONS = ("quality.too_short",)
#: The one-added-word keys of a chunk's short posts (dedup.word_keys): kind 0 is a post's own key,
#: kind 1 the key with one word dropped; row is the post's row in the chunk.
WORDS_DTYPE = np.dtype([("value", "<u8"), ("row", "<u4"), ("kind", "u1")])

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)
_WRITE_BATCH = 8192


def build_steps(config: CurateConfig) -> list[Step]:
    """The per-post steps the config turns on, in pipeline order."""
    enabled = set(config.steps)
    steps: list[Step] = []
    if "normalize" in enabled:
        steps.append(Normalize(config.normalize))
    if "pii" in enabled:
        steps.append(ScrubPii(config.pii))
    if "quality" in enabled:
        steps.append(QualityFilter(config.quality))
    if "spam" in enabled:
        steps.append(BoilerplateSpam(config.spam))
    if "langid" in enabled:
        steps.append(LanguageId(config.langid))
    dedup = (
        config.dedup if "dedup" in enabled else msgspec.structs.replace(config.dedup, exact=False, near=False)
    )
    steps.append(DedupSignature(dedup))
    return steps


def micros(ts: dt.datetime) -> int:
    return (ts - _EPOCH) // _MICROSECOND


def _read_chunk(
    store: RawStore, after: int, upto: int, exclusions: Exclusions, seen: tuple[list[int], list[int]]
) -> Iterator[Doc]:
    authors: dict[str, int] = {}  # authors post many times; hash each once
    for rowid, data in store.iter_raw(after_rowid=after):
        if rowid > upto:
            return
        try:
            post = decode_post(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            exclusions.add_undecodable(rowid, data, str(exc))
            continue
        author = authors.get(post.author_id)
        if author is None:
            author = authors[post.author_id] = hash64(post.author_id)
        doc = Doc(
            post=post, text=post.text, rowid=rowid, author_hash=author, created_us=micros(post.created_at)
        )
        seen[0].append(author)
        seen[1].append(doc.created_us)
        yield doc


def prepare_chunk(wd: WorkDir, plan: Plan, chunk: int) -> dict[str, Any]:
    """Run the per-post steps over one chunk of raw rows and write what survives."""
    config = plan.config
    after, upto = plan.chunk_range(chunk)
    exclusions = Exclusions(config.quarantine_sample)
    steps = build_steps(config)
    seen: tuple[list[int], list[int]] = ([], [])  # author hash and time of every post read: bots
    soft_code = {reason: i + 1 for i, reason in enumerate(SOFT_REASONS)}
    metas: list[tuple] = []
    bands: list[bytes] = []
    words: list[tuple[int, int, int]] = []
    name = f"c{chunk:05d}"
    out = ParquetOut(wd.path("prep", f"{name}.parquet"), PREPARED_SCHEMA)
    with RawStore.in_dir(wd.ws.raw_dir) as store:
        stream = run_steps(steps, _read_chunk(store, after, upto, exclusions, seen), exclusions)
        batch: list[Doc] = []
        for doc in stream:
            post = doc.post
            metas.append(
                (
                    hash64(post.id),
                    hash64(post.reply_to) if post.reply_to else 0,
                    doc.author_hash,
                    doc.exact_hash,
                    id_order(post.id),
                    doc.created_us,
                    soft_code.get(doc.soft_reason, 0) if doc.soft_reason else 0,
                )
            )
            if doc.word_keys is not None:
                own, dropped = doc.word_keys
                row = len(bands)
                if own:
                    words.append((own, row, 0))
                words.extend((value, row, 1) for value in dropped)
            bands.append(doc.bands)
            batch.append(doc)
            if len(batch) >= _WRITE_BATCH:
                out.write(prepared_table(batch))
                batch = []
        out.write(prepared_table(batch))
    out.close()
    meta = np.array(metas, dtype=META_DTYPE)
    sig = np.frombuffer(b"".join(bands), dtype=np.uint64).reshape(len(bands), config.dedup.bands)
    save_npy_atomic(wd.path("prep", f"{name}.meta.npy"), meta)
    # Band-major: the buckets stage reads one band of every chunk, contiguously.
    save_npy_atomic(wd.path("prep", f"{name}.sig.npy"), np.ascontiguousarray(sig.T))
    save_npy_atomic(wd.path("prep", f"{name}.words.npy"), np.array(words, dtype=WORDS_DTYPE))
    activity = author_activity(np.array(seen[0], dtype=np.uint64), np.array(seen[1], dtype=np.int64))
    save_npy_atomic(wd.path("prep", f"{name}.authors.npy"), activity)
    write_bytes_atomic(wd.path("prep", f"{name}.excl.jsonl"), _jsonl(exclusions.sampled))
    return {
        "read": len(seen[0]) + exclusions.counts["read.decode_error"],
        "decoded": len(seen[0]),
        "kept": len(metas),
        "removed": dict(sorted(exclusions.counts.items())),
        "steps": step_stats(steps),
    }


def _jsonl(records: list) -> bytes:
    encoder = msgspec.json.Encoder()
    return b"".join(encoder.encode(r) + b"\n" for r in records)


def chunk_sizes(wd: WorkDir, plan: Plan) -> list[int]:
    """Posts each prepared chunk holds (from the done-markers)."""
    return [wd.done_stats("prepare", c)["kept"] for c in range(plan.chunks)]


def bucket_band(wd: WorkDir, plan: Plan, band: int) -> dict[str, Any]:
    """Candidate duplicate pairs from one band: 0..bands-1 the MinHash bands, `bands` the exact-text
    hash, `bands + 1` the one-added-word keys.

    Keys are positions in the generation (chunk after chunk); indexed posts of earlier generations
    follow them, generation after generation.
    """
    dedup = plan.config.dedup
    kind = "near" if band < dedup.bands else "exact" if band == dedup.bands else "words"
    enabled = "dedup" in plan.config.steps and (dedup.exact if kind == "exact" else dedup.near)
    generations = DedupIndex(wd.ws.corpus_dir / ".index").generations()
    found: list[tuple[np.ndarray, np.ndarray]] = []
    if enabled and kind == "words":
        found = _word_band(wd, plan, generations)
    elif enabled:
        parts, orders = [], []
        for c in range(plan.chunks):
            meta = np.load(wd.path("prep", f"c{c:05d}.meta.npy"))
            orders.append(meta["order"])
            if kind == "exact":
                parts.append(meta["exact"])
            else:
                parts.append(np.array(np.load(wd.path("prep", f"c{c:05d}.sig.npy"), mmap_mode="r")[band]))
        values = np.concatenate(parts)
        keys = np.arange(values.size, dtype=np.int64)
        # Equal texts are equal transitively, so a star per bucket says all; near pairs need cliques.
        found = [band_edges(values, keys, np.concatenate(orders), clique_max=0 if kind == "exact" else 16)]
        base = values.size
        for generation in generations:
            index_values, index_rows = generation.band(band)
            found.append(index_edges(values, keys, index_values, index_rows.astype(np.int64) + base))
            base += generation.size
    u = np.concatenate([f[0] for f in found]) if found else np.zeros(0, np.int64)
    v = np.concatenate([f[1] for f in found]) if found else np.zeros(0, np.int64)
    save_npy_atomic(wd.path("buckets", f"b{band:03d}.npy"), np.stack([u, v]))
    return {"kind": kind, "edges": int(u.size)}


def _word_band(wd: WorkDir, plan: Plan, generations: list) -> list[tuple[np.ndarray, np.ndarray]]:
    """One-added-word pairs within the generation, and with the indexed generations both ways."""
    offsets = np.r_[0, np.cumsum(chunk_sizes(wd, plan), dtype=np.int64)]
    own: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    dropped: list[tuple[np.ndarray, np.ndarray]] = []
    for c in range(plan.chunks):
        words = np.load(wd.path("prep", f"c{c:05d}.words.npy"))
        keys = words["row"].astype(np.int64) + offsets[c]
        mine = words["kind"] == 0
        order = np.load(wd.path("prep", f"c{c:05d}.meta.npy"))["order"][words["row"][mine]]
        own.append((words["value"][mine], keys[mine], order))
        dropped.append((words["value"][~mine], keys[~mine]))
    own_values, own_keys, own_orders = (np.concatenate([p[i] for p in own]) for i in range(3))
    dropped_values, dropped_keys = (np.concatenate([p[i] for p in dropped]) for i in range(2))
    del own, dropped
    # One post per distinct own key, the lowest id: posts with equal keys are duplicates through
    # the MinHash bands already, and pairing every copy of "let's go" with every "let's go X" would
    # be quadratic.
    first = ~_repeats(own_values, own_orders)
    own_values, own_keys = own_values[first], own_keys[first]
    found = [word_edges(own_values, own_keys, dropped_values, dropped_keys)]
    base = int(offsets[-1])
    for generation in generations:
        index = generation.words()
        index_keys = index["row"].astype(np.int64) + base
        index_own, index_dropped = index["kind"] == 0, index["kind"] == 1
        found.append(
            word_edges(own_values, own_keys, index["value"][index_dropped], index_keys[index_dropped])
        )
        found.append(
            word_edges(index["value"][index_own], index_keys[index_own], dropped_values, dropped_keys)
        )
        base += generation.size
    return found


def _repeats(values: np.ndarray, order_keys: np.ndarray) -> np.ndarray:
    """Mask of the entries whose value another entry with a lower order key has too."""
    order = np.lexsort((order_keys, values))
    repeated = np.zeros(values.size, dtype=bool)
    repeated[order[1:]] = values[order][1:] == values[order][:-1]
    return repeated


def split_of(id_hash: np.ndarray, val_fraction: float) -> np.ndarray:
    """train/val by a hash of the post id: a post stays in its split across every rerun."""
    is_val = (id_hash % np.uint64(1_000_000)) < np.uint64(round(val_fraction * 1_000_000))
    return np.where(is_val, "val", "train")


def finalize_chunk(wd: WorkDir, plan: Plan, chunk: int) -> dict[str, Any]:
    """Apply the global decisions to one chunk and write its corpus part."""
    name = f"c{chunk:05d}"
    table = pq.read_table(wd.path("prep", f"{name}.parquet"))
    meta = np.load(wd.path("prep", f"{name}.meta.npy"))
    decisions = pq.read_table(wd.path("cluster", f"{name}.parquet"))
    n = table.num_rows
    ids = table.column("id").to_pylist()
    reasons: list[str | None] = [None] * n
    cluster_ids = list(ids)
    for row, reason, cluster_id in zip(
        decisions.column("row").to_pylist(),
        decisions.column("reason").to_pylist(),
        decisions.column("cluster_id").to_pylist(),
        strict=True,
    ):
        reasons[row] = reason
        cluster_ids[row] = cluster_id
    # A post deleted after this chunk was read (the raw store dropped it since) does not go in.
    with RawStore.in_dir(wd.ws.raw_dir) as store:
        deleted = store.deleted_among(ids)
    for row, post_id in enumerate(ids):
        if post_id in deleted:
            reasons[row] = "deleted"
    keep = np.array([r is None for r in reasons], dtype=bool)

    exclusions = Exclusions(plan.config.quarantine_sample)
    rowids, authors, texts = (table.column(c).to_pylist() for c in ("rowid", "author_id", "text"))
    for row in np.flatnonzero(~keep):
        exclusions.add_record(reasons[row], rowids[row], ids[row], authors[row], texts[row])

    kept = table.filter(pa.array(keep))
    splits = split_of(meta["id"][keep], plan.config.tokenizer.val_fraction)
    corpus = kept.drop_columns(["rowid", "soft_reason", "key"])
    corpus = corpus.append_column(
        "cluster_id", pa.array([c for c, k in zip(cluster_ids, keep, strict=True) if k], pa.string())
    )
    corpus = corpus.append_column("split", pa.array(splits, pa.string())).cast(CORPUS_SCHEMA)
    out = ParquetOut(wd.path("final", part_name(plan.part_base + chunk)), CORPUS_SCHEMA)
    out.write(corpus)
    out.close()

    # What the persisted index needs: which rows represent their cluster, every kept id.
    is_rep = pc.equal(corpus.column("cluster_id"), corpus.column("id")).to_numpy(zero_copy_only=False)
    save_npy_atomic(wd.path("final", f"{name}.reps.npy"), np.flatnonzero(keep)[is_rep].astype(np.int64))
    save_npy_atomic(wd.path("final", f"{name}.kept.npy"), meta["id"][keep])
    write_bytes_atomic(wd.path("final", f"{name}.excl.jsonl"), _jsonl(exclusions.sampled))
    return {
        "kept": int(keep.sum()),
        "removed": dict(sorted(Counter(r for r in reasons if r is not None).items())),
        "split": {"train": int((splits == "train").sum()), "val": int((splits == "val").sum())},
    }
