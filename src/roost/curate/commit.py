"""The last tasks of a generation: train the tokenizer if there is none, tokenize, commit.

Commit moves the generation's parts, shards and tokenizer into place, publishes its slice of the
dedup index and the authors' activity, appends the sampled removals to quarantine, rewrites
`shards/index.json` and `corpus/manifest.json`, and only then records the generation as committed.
Every step can be redone: a move that already happened is skipped, an index generation that exists
is kept, the quarantine file is cut back to its length before this commit began. A commit killed
anywhere and rerun ends the same as one never killed.

`apply_tombstones` runs after every run: posts deleted after they were curated go to the tombstone
lists that the training loader and corpus readers obey.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from roost.curate.clusters import latest_authors
from roost.curate.config import CurateConfig
from roost.curate.corpus import MANIFEST_NAME, corpus_parts, part_name, read_manifest
from roost.curate.dedup import DedupIndex, hash64_many
from roost.curate.shards import INDEX_NAME, SPLITS, append_tombstones, write_index
from roost.curate.spam import merge_activity
from roost.curate.steps import Exclusion
from roost.curate.tokens import (
    has_tokenizer,
    merge_entries,
    rebuild_shards,
    shard_index,
    train_corpus_tokenizer,
    write_part_shards,
)
from roost.curate.work import (
    Plan,
    State,
    WorkDir,
    read_state,
    save_npy_atomic,
    write_json_atomic,
    write_state,
)
from roost.quarantine import Quarantine
from roost.rawstore import RawStore
from roost.tokenizer import TOKENIZER_FILE, load_tokenizer, tokenizer_hash
from roost.workspace import Workspace


def _new_parts(wd: WorkDir, plan: Plan) -> list[Path]:
    return [wd.path("final", part_name(plan.part_base + c)) for c in range(plan.chunks)]


def ensure_tokenizer(wd: WorkDir, plan: Plan) -> dict[str, Any]:
    """Train the tokenizer on the whole corpus (committed parts and this generation's) if none exists."""
    ws = wd.ws
    if has_tokenizer(ws.tokenizer_dir):
        return {"trained": False, "sha256": tokenizer_hash(ws.tokenizer_dir)}
    parts = corpus_parts(ws.corpus_dir) + _new_parts(wd, plan)
    settings = plan.config.tokenizer
    sha = train_corpus_tokenizer(parts, wd.root / "tokenizer", settings.vocab_size, settings.min_frequency)
    return {"trained": True, "sha256": sha}


def tokenizer_in_use(wd: WorkDir) -> Path:
    """Where this generation's tokenizer is: freshly trained in the work dir, or the workspace's."""
    fresh = wd.root / "tokenizer"
    return fresh if has_tokenizer(fresh) else wd.ws.tokenizer_dir


def tokenize_chunk(wd: WorkDir, plan: Plan, chunk: int) -> dict[str, Any]:
    tokenizer = load_tokenizer(tokenizer_in_use(wd))
    number = plan.part_base + chunk
    directory = wd.root / "shards"
    directory.mkdir(parents=True, exist_ok=True)
    entries = write_part_shards(wd.path("final", part_name(number)), number, tokenizer, directory)
    return {"entries": entries}


def _move(source: Path, target: Path) -> None:
    """Rename unless already done (a rerun of a commit that got past this file)."""
    if source.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)


def _append_quarantine(wd: WorkDir, plan: Plan) -> None:
    """Append this generation's sampled removals, exactly once even if the commit is rerun."""
    ws = wd.ws
    quarantine = Quarantine(ws.quarantine_dir, "curate")
    guard = wd.root / "quarantine-offset.json"
    if guard.exists():
        offset = json.loads(guard.read_text())["offset"]
        if quarantine.path.exists():
            os.truncate(quarantine.path, offset)
    else:
        offset = quarantine.path.stat().st_size if quarantine.path.exists() else 0
        write_json_atomic(guard, {"offset": offset})
    decoder = msgspec.json.Decoder(Exclusion)
    with quarantine:
        for stage in ("prep", "final"):
            for c in range(plan.chunks):
                for line in wd.path(stage, f"c{c:05d}.excl.jsonl").read_bytes().splitlines():
                    excluded = decoder.decode(line)
                    record = {"id": excluded.id, "author_id": excluded.author_id, "text": excluded.text}
                    quarantine.put(
                        excluded.reason, record, source="raw.db", position=f"rowid {excluded.rowid}"
                    )
    if quarantine.path.exists():
        with open(quarantine.path, "rb") as handle:
            os.fsync(handle.fileno())


def _publish_index(wd: WorkDir, plan: Plan) -> None:
    """This generation's slice of the dedup index, and the authors' activity up to it."""
    index = DedupIndex(wd.ws.corpus_dir / ".index")
    bands = plan.config.dedup.bands
    reps = [np.load(wd.path("final", f"c{c:05d}.reps.npy")) for c in range(plan.chunks)]

    def band_values(j: int) -> np.ndarray:
        values = []
        for c, rows in enumerate(reps):
            if j == bands:
                values.append(np.load(wd.path("prep", f"c{c:05d}.meta.npy"))["exact"][rows])
            else:
                values.append(np.load(wd.path("prep", f"c{c:05d}.sig.npy"), mmap_mode="r")[j][rows])
        return np.concatenate(values) if values else np.zeros(0, np.uint64)

    tables, words = [], []
    offset = 0
    for c, rows in enumerate(reps):
        tables.append(pq.read_table(wd.path("prep", f"c{c:05d}.parquet"), columns=["id", "key"]).take(rows))
        chunk_words = np.load(wd.path("prep", f"c{c:05d}.words.npy"))
        chunk_words = chunk_words[np.isin(chunk_words["row"], rows)]
        chunk_words["row"] = offset + np.searchsorted(rows, chunk_words["row"])
        words.append(chunk_words)
        offset += rows.size
    table = pa.concat_tables(tables).combine_chunks()
    kept = np.concatenate([np.load(wd.path("final", f"c{c:05d}.kept.npy")) for c in range(plan.chunks)])
    index.write_generation(plan.generation, band_values, bands, table, np.concatenate(words), kept)

    snapshot = index.directory / f"authors-g{plan.generation:04d}.npy"
    if not snapshot.exists():
        tables = [np.load(wd.path("prep", f"c{c:05d}.authors.npy")) for c in range(plan.chunks)]
        previous = latest_authors(index, plan.generation)
        save_npy_atomic(snapshot, merge_activity(tables + ([previous] if previous is not None else [])))


def _generation_summary(wd: WorkDir, plan: Plan, cluster: dict[str, Any]) -> dict[str, Any]:
    read = kept = 0
    removed: Counter[str] = Counter()
    steps: dict[str, Counter[str]] = {}
    splits: Counter[str] = Counter()
    tokens: Counter[str] = Counter()
    for c in range(plan.chunks):
        prep = wd.done_stats("prepare", c)
        final = wd.done_stats("finalize", c)
        read += prep["read"]
        kept += final["kept"]
        removed.update(prep["removed"])
        removed.update(final["removed"])
        splits.update(final["split"])
        for step, counters in prep["steps"].items():
            steps.setdefault(step, Counter()).update(counters)
        for split, entry in wd.done_stats("tokenize", c)["entries"].items():
            if entry is not None:
                tokens[split] += entry["tokens"]
    return {
        "generation": plan.generation,
        "rowids": [plan.after_rowid, plan.upto_rowid],
        "parts": [part_name(plan.part_base + c) for c in range(plan.chunks)],
        "read": read,
        "kept": kept,
        "removed": dict(sorted(removed.items())),
        "steps": {step: dict(sorted(c.items())) for step, c in sorted(steps.items())},
        "dedup": cluster,
        "split": dict(sorted(splits.items())),
        "tokens": dict(sorted(tokens.items())),
    }


def commit_generation(wd: WorkDir, plan: Plan) -> dict[str, Any]:
    ws = wd.ws
    for name in (TOKENIZER_FILE, "tokenizer_config.json", "special_tokens_map.json"):
        _move(wd.root / "tokenizer" / name, ws.tokenizer_dir / name)
    for c in range(plan.chunks):
        name = part_name(plan.part_base + c)
        _move(wd.path("final", name), ws.corpus_dir / name)
    _move(wd.path("cluster", "clusters.parquet"), ws.corpus_dir / f"clusters-g{plan.generation:04d}.parquet")
    new_entries: dict[str, list[dict]] = {split: [] for split in SPLITS}
    for c in range(plan.chunks):
        for split, entry in wd.done_stats("tokenize", c)["entries"].items():
            if entry is not None:
                new_entries[split].append(entry)
                for suffix in (".bin", ".ids", ".idx.npy"):
                    _move(
                        wd.root / "shards" / f"{entry['name']}{suffix}",
                        ws.shards_dir / f"{entry['name']}{suffix}",
                    )
    _publish_index(wd, plan)
    _append_quarantine(wd, plan)

    tokenizer = load_tokenizer(ws.tokenizer_dir)
    sha = tokenizer_hash(ws.tokenizer_dir)
    index_path = ws.shards_dir / INDEX_NAME
    old_entries = json.loads(index_path.read_text())["splits"] if index_path.exists() else {}
    shards = shard_index(tokenizer, sha, merge_entries(old_entries, new_entries))
    ws.shards_dir.mkdir(parents=True, exist_ok=True)
    write_index(ws.shards_dir, shards)

    summary = _generation_summary(wd, plan, wd.done_stats("cluster", 0))
    manifest = read_manifest(ws.corpus_dir) or {"generations": []}
    generations = [g for g in manifest["generations"] if g["generation"] != plan.generation] + [summary]
    write_manifest(ws, generations, shards)
    state = read_state(ws.corpus_dir)
    write_state(
        ws.corpus_dir,
        State(generation=plan.generation, upto_rowid=plan.upto_rowid, parts=state.parts + plan.chunks),
    )
    return summary


def write_manifest(ws: Workspace, generations: list[dict[str, Any]], shards: dict) -> None:
    """corpus/manifest.json: the parts, and what every generation read, kept and removed, and why."""
    removed: Counter[str] = Counter()
    for g in generations:
        removed.update(g["removed"])
    manifest = {
        "parts": [p for g in generations for p in g["parts"]],
        "read": sum(g["read"] for g in generations),
        "posts": sum(g["kept"] for g in generations),
        "removed": dict(sorted(removed.items())),
        "tokenizer": {"sha256": shards["tokenizer_sha256"], "vocab_size": shards["vocab_size"]},
        "tokens": shards["tokens"],
        "generations": generations,
    }
    write_json_atomic(ws.corpus_dir / MANIFEST_NAME, manifest)


def finish_generation(wd: WorkDir) -> None:
    """After the state says committed: drop the work dir and superseded author snapshots."""
    index_dir = wd.ws.corpus_dir / ".index"
    for old in sorted(index_dir.glob("authors-g*.npy"))[:-1]:
        old.unlink()
    wd.remove()
    work = wd.ws.corpus_dir / ".work"
    if work.exists() and not any(work.iterdir()):
        work.rmdir()


def apply_tombstones(ws: Workspace) -> int:
    """List every deleted post that is in the corpus; returns how many were newly listed."""
    index = DedupIndex(ws.corpus_dir / ".index")
    if not index.generations():
        return 0
    with RawStore.in_dir(ws.raw_dir) as store:
        deleted = list(store.iter_deleted_ids())
    if not deleted:
        return 0
    in_corpus = index.contains(hash64_many(deleted))
    found = [post_id for post_id, hit in zip(deleted, in_corpus, strict=True) if hit]
    if not found:
        return 0
    added = append_tombstones(ws.corpus_dir, found)
    ws.shards_dir.mkdir(parents=True, exist_ok=True)
    append_tombstones(ws.shards_dir, found)
    return added


def retrain_tokenizer(ws: Workspace, vocab_size: int | None = None) -> dict[str, Any]:
    """Train a new tokenizer on the whole corpus and re-tokenize every shard with it."""
    if WorkDir(ws, read_state(ws.corpus_dir).generation + 1).plan_path.exists():
        raise RuntimeError("a curation run is unfinished; finish it with `roost curate` first")
    parts = corpus_parts(ws.corpus_dir)
    if not parts:
        raise FileNotFoundError(f"no curated corpus in {ws.corpus_dir}; run `roost curate` first")
    settings = ws.config("curate", CurateConfig).tokenizer
    scratch = ws.tokenizer_dir.with_name(f".{ws.tokenizer_dir.name}.{os.getpid()}.tmp")
    sha = train_corpus_tokenizer(parts, scratch, vocab_size or settings.vocab_size, settings.min_frequency)
    for child in sorted(scratch.iterdir()):
        _move(child, ws.tokenizer_dir / child.name)
    scratch.rmdir()
    numbers = [int(p.stem.removeprefix("part-")) for p in parts]
    shards = rebuild_shards(parts, numbers, ws.tokenizer_dir, ws.shards_dir)
    manifest = read_manifest(ws.corpus_dir)
    if manifest is not None:
        write_manifest(ws, manifest["generations"], shards)
    return {"sha256": sha, "vocab_size": shards["vocab_size"], "tokens": shards["tokens"]}
