"""The curated corpus on disk: Parquet parts (zstd) plus `manifest.json`, and how to read them.

`corpus/part-NNNNN.parquet` holds curated posts, one row each, with the columns of CORPUS_SCHEMA;
training's conversation tuning and search read them. `manifest.json` lists the parts and counts
what every step did. A post deleted after it was curated is listed in `corpus/tombstones.txt` (the
same list as `shards/tombstones.txt`); `read_corpus` leaves such posts out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from roost.curate.shards import read_tombstones
from roost.curate.steps import Doc
from roost.curate.work import publish, tmp_path

MANIFEST_NAME = "manifest.json"
PART_GLOB = "part-*.parquet"

_POST_FIELDS = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("text", pa.string(), nullable=False),
    pa.field("author_id", pa.string(), nullable=False),
    pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("lang", pa.string(), nullable=False),
    pa.field("lang_score", pa.float32(), nullable=False),
    pa.field("declared_lang", pa.string()),
    pa.field("reply_to", pa.string()),
    pa.field("repost_of", pa.string()),
    pa.field("quote_of", pa.string()),
    pa.field("hashtags", pa.list_(pa.string()), nullable=False),
    pa.field("likes", pa.int64(), nullable=False),
    pa.field("reposts", pa.int64(), nullable=False),
    pa.field("replies", pa.int64(), nullable=False),
    pa.field("quotes", pa.int64(), nullable=False),
    pa.field("views", pa.int64(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
]

#: What the prepare stage writes per chunk: the posts that survived the per-post steps.
PREPARED_SCHEMA = pa.schema(
    [
        pa.field("rowid", pa.int64(), nullable=False),
        *_POST_FIELDS,
        pa.field("soft_reason", pa.string()),
        pa.field("key", pa.string(), nullable=False),  # dedup.near_key: what near-duplicates share
    ]
)

#: The curated corpus: `text` is normalised and scrubbed, `lang` is the language curation settled on
#: (declared_lang is what the platform said), `cluster_id` is the id of the post kept for the
#: near-duplicate cluster (its own id when it has no duplicates), `split` is train or val.
CORPUS_SCHEMA = pa.schema(
    [
        *_POST_FIELDS,
        pa.field("cluster_id", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
    ]
)


def prepared_table(docs: Sequence[Doc]) -> pa.Table:
    """A batch of documents as a PREPARED_SCHEMA table."""
    posts = [d.post for d in docs]
    metrics = [p.metrics for p in posts]
    columns: dict[str, Any] = {
        "rowid": [d.rowid for d in docs],
        "id": [p.id for p in posts],
        "text": [d.text for d in docs],
        "author_id": [p.author_id for p in posts],
        "created_at": [p.created_at for p in posts],
        "lang": [d.lang for d in docs],
        "lang_score": [d.lang_score for d in docs],
        "declared_lang": [p.lang for p in posts],
        "reply_to": [p.reply_to for p in posts],
        "repost_of": [p.repost_of for p in posts],
        "quote_of": [p.quote_of for p in posts],
        "hashtags": [p.hashtags for p in posts],
        "likes": [m.likes for m in metrics],
        "reposts": [m.reposts for m in metrics],
        "replies": [m.replies for m in metrics],
        "quotes": [m.quotes for m in metrics],
        "views": [m.views for m in metrics],
        "source": [p.source for p in posts],
        "soft_reason": [d.soft_reason for d in docs],
        "key": [d.key for d in docs],
    }
    return pa.table(columns, schema=PREPARED_SCHEMA)


class ParquetOut:
    """A Parquet file written under a temporary name and renamed into place when closed."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = Path(path)
        self.tmp = tmp_path(self.path)
        self.writer = pq.ParquetWriter(self.tmp, schema, compression="zstd")
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self.writer.write_table(table)
            self.rows += table.num_rows

    def close(self) -> None:
        self.writer.close()
        publish(self.tmp, self.path)


def part_name(part: int) -> str:
    return f"part-{part:05d}.parquet"


def corpus_parts(corpus_dir: Path) -> list[Path]:
    """The corpus's parts in order (those the manifest lists; every part file if there is none)."""
    corpus_dir = Path(corpus_dir)
    manifest = read_manifest(corpus_dir)
    if manifest is not None:
        return [corpus_dir / name for name in manifest["parts"]]
    return sorted(corpus_dir.glob(PART_GLOB))


def read_corpus(
    corpus_dir: Path, columns: Sequence[str] | None = None, *, batch_size: int = 65_536
) -> Iterator[pa.RecordBatch]:
    """Stream the curated posts, part by part, leaving out posts deleted since they were curated."""
    corpus_dir = Path(corpus_dir)
    tombstones = pa.array(sorted(read_tombstones(corpus_dir)), pa.string())
    wanted = list(columns) if columns is not None else None
    read_columns = wanted if wanted is None or "id" in wanted else [*wanted, "id"]
    for path in corpus_parts(corpus_dir):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size, columns=read_columns):
            if len(tombstones):
                batch = batch.filter(pc.invert(pc.is_in(batch.column("id"), tombstones)))
            if wanted is not None and read_columns != wanted:
                batch = batch.select(wanted)
            yield batch


def iter_texts(parts: Iterable[Path], batch_size: int = 8192) -> Iterator[str]:
    """Every post text of these parts, in order (what the tokenizer is trained on)."""
    for path in parts:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size, columns=["text"]):
            yield from batch.column(0).to_pylist()


def read_manifest(corpus_dir: Path) -> dict[str, Any] | None:
    path = Path(corpus_dir) / MANIFEST_NAME
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))
