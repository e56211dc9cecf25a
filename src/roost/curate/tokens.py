"""The tokenizer, trained on the curated corpus, and the token shards written with it.

Each corpus part becomes at most one shard per split (`train-NNNNN`, `val-NNNNN`, numbered like
the part), so shards can be written in parallel and a new generation only adds shards. The split of
a post comes from a hash of its id (corpus column `split`). `index.json` (roost.curate.shards) is
what makes shards visible to the training loader; it is rewritten whole, atomically.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from tokenizers import Tokenizer

from roost.curate.corpus import iter_texts
from roost.curate.shards import SPLITS, ShardWriter, token_dtype, write_index
from roost.tokenizer import (
    END_OF_POST,
    TOKENIZER_FILE,
    load_tokenizer,
    save_tokenizer,
    special_id,
    tokenizer_hash,
    train_tokenizer,
)

_ENCODE_BATCH = 4096


def train_corpus_tokenizer(
    parts: Iterable[Path], directory: Path, vocab_size: int, min_frequency: int
) -> str:
    """Train byte-level BPE on every text of `parts`, save it in `directory`; returns its sha256."""
    tokenizer = train_tokenizer(iter_texts(parts), vocab_size=vocab_size, min_frequency=min_frequency)
    return save_tokenizer(tokenizer, directory)


def write_part_shards(part: Path, number: int, tokenizer: Tokenizer, directory: Path) -> dict[str, Any]:
    """Tokenize one corpus part into `directory`: per split, a shard named after the part number.

    Returns each split's index entry (None for a split with no posts).
    """
    # One thread: parts are tokenized in parallel by worker processes already, and the tokenizer's
    # own threads would spend more CPU per post than they save in time.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    table = pq.read_table(part, columns=["id", "text", "split"])
    eot = special_id(tokenizer, END_OF_POST)
    dtype = token_dtype(tokenizer.get_vocab_size())
    # Shard files are built in a directory private to this process, then renamed into place.
    scratch = directory / f".tmp-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    entries: dict[str, Any] = {}
    ids, texts, splits = (table.column(c).to_pylist() for c in ("id", "text", "split"))
    for split in SPLITS:
        rows = [i for i, s in enumerate(splits) if s == split]
        if not rows:
            entries[split] = None
            continue
        writer = ShardWriter(scratch, f"{split}-{number:05d}", dtype, eot)
        for start in range(0, len(rows), _ENCODE_BATCH):
            batch = rows[start : start + _ENCODE_BATCH]
            encodings = tokenizer.encode_batch_fast([texts[i] for i in batch], add_special_tokens=False)
            writer.add_batch([ids[i] for i in batch], [e.ids for e in encodings])
        entries[split] = writer.close()
        for suffix in (".bin", ".ids", ".idx.npy"):
            name = f"{split}-{number:05d}{suffix}"
            os.replace(scratch / name, directory / name)
    shutil.rmtree(scratch, ignore_errors=True)
    return entries


def shard_index(tokenizer: Tokenizer, tokenizer_sha: str, entries: dict[str, list[dict[str, Any]]]) -> dict:
    """index.json's content for these shard entries (per split, in order)."""
    return {
        "dtype": token_dtype(tokenizer.get_vocab_size()).name,
        "vocab_size": tokenizer.get_vocab_size(),
        "eot_id": special_id(tokenizer, END_OF_POST),
        "tokenizer_sha256": tokenizer_sha,
        "splits": {split: entries.get(split, []) for split in SPLITS},
        "tokens": {split: sum(int(e["tokens"]) for e in entries.get(split, [])) for split in SPLITS},
    }


def merge_entries(old: dict[str, list[dict]], new: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Shard entries of both, new ones replacing old ones of the same name, ordered by name."""
    merged: dict[str, list[dict]] = {}
    for split in SPLITS:
        by_name = {e["name"]: e for e in old.get(split, [])}
        by_name.update({e["name"]: e for e in new.get(split, [])})
        merged[split] = [by_name[name] for name in sorted(by_name)]
    return merged


def rebuild_shards(parts: list[Path], part_numbers: list[int], tokenizer_dir: Path, shards_dir: Path) -> dict:
    """Re-tokenize every part with the tokenizer in `tokenizer_dir`; returns the new index."""
    tokenizer = load_tokenizer(tokenizer_dir)
    shards_dir.mkdir(parents=True, exist_ok=True)
    entries: dict[str, list[dict]] = {split: [] for split in SPLITS}
    for part, number in zip(parts, part_numbers, strict=True):
        for split, entry in write_part_shards(part, number, tokenizer, shards_dir).items():
            if entry is not None:
                entries[split].append(entry)
    index = shard_index(tokenizer, tokenizer_hash(tokenizer_dir), entries)
    write_index(shards_dir, index)
    return index


def has_tokenizer(directory: Path) -> bool:
    return (Path(directory) / TOKENIZER_FILE).exists()
