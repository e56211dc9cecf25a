"""Small, seeded training inputs for tests: posts from a toy grammar, a tokenizer trained on them,
token shards in curation's format, and a Parquet corpus with reply threads."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from roost.curate.shards import ShardWriter, token_dtype, write_index
from roost.tokenizer import END_OF_POST, save_tokenizer, special_id, train_tokenizer
from roost.workspace import Workspace

WORDS = {
    "who": ["the cat", "my neighbour", "a robot", "the team", "our bus", "this city", "the band", "grandma"],
    "did": ["loves", "broke", "found", "painted", "missed", "fixed", "sold", "wrote about"],
    "what": ["the fence", "a song", "the old bike", "pizza", "the rain", "my keys", "a garden", "the match"],
    "when": ["today", "again", "at dawn", "last night", "on monday", "for hours", "before lunch", "twice"],
    "tail": ["!", "...", " lol", " #weekend", " #news", " 🙂", " — wow", "?"],
}


def make_posts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(WORDS[k]) for k in ("who", "did", "what", "when")) + rng.choice(WORDS["tail"])
        for _ in range(n)
    ]


def write_tokenizer(ws: Workspace, posts: list[str], vocab_size: int = 512):
    tokenizer = train_tokenizer(posts, vocab_size=vocab_size)
    save_tokenizer(tokenizer, ws.tokenizer_dir)
    return tokenizer


def write_shards(
    ws: Workspace, posts: list[str], tokenizer, *, train_shards: int = 2, val_posts: int = 200
) -> None:
    """Posts split into `train_shards` train shards and one val shard, ids p000000..."""
    eot = special_id(tokenizer, END_OF_POST)
    vocab = tokenizer.get_vocab_size()
    dtype = token_dtype(vocab)
    ids = [f"p{i:06d}" for i in range(len(posts))]
    encodings = tokenizer.encode_batch([*posts], add_special_tokens=False)
    train_ids = list(range(len(posts) - val_posts))
    val_ids = list(range(len(posts) - val_posts, len(posts)))
    splits: dict[str, list] = {"train": [], "val": []}
    for split, members, count in (("train", train_ids, train_shards), ("val", val_ids, 1)):
        for k, part in enumerate(np.array_split(np.asarray(members), count)):
            writer = ShardWriter(ws.shards_dir, f"{split}-{k:05d}", dtype, eot)
            for i in part:
                writer.add(ids[i], encodings[i].ids)
            splits[split].append(writer.close())
    write_index(ws.shards_dir, {"dtype": dtype.name, "vocab_size": vocab, "eot_id": eot, "splits": splits})


def build_workspace(ws: Workspace, n_posts: int = 1500, seed: int = 0) -> None:
    posts = make_posts(n_posts, seed)
    tokenizer = write_tokenizer(ws, posts)
    write_shards(ws, posts, tokenizer)


def write_corpus(directory: Path, rows: list[dict]) -> None:
    """A curated-corpus Parquet file from rows with id, text, reply_to (other columns filled)."""
    directory.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "id": [r["id"] for r in rows],
            "text": [r["text"] for r in rows],
            "author_id": [r.get("author_id", "u1") for r in rows],
            "created_at": [r.get("created_at", "2024-01-01T00:00:00Z") for r in rows],
            "lang": ["en"] * len(rows),
            "reply_to": [r.get("reply_to") for r in rows],
            "repost_of": pa.array([None] * len(rows), pa.string()),
            "quote_of": pa.array([None] * len(rows), pa.string()),
            "hashtags": [[] for _ in rows],
        }
    )
    pq.write_table(table, directory / "part-00000.parquet")
