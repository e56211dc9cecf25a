"""Import throughput per format, next to a bare `json.loads` loop over the same records.

The real samples in ../shared/data/formats are small, so each is replicated with fresh ids into
a file of about `--records` records per format (in a temporary folder); the tabular formats use
../shared/data/real_posts. For each format it times: the bare loop a user would write first
(`json.loads` per line or element; `csv.DictReader` and pyarrow's `to_pylist` for CSV and
Parquet), `read_events` alone (parse), and `roost import`'s path into a fresh raw store
(parse + store). Run: `python -m benchmarks.bench_import [--records N]`.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from roost.formats import ImportCounts, read_events
from roost.formats.ingest import import_file
from roost.posts import Event, Post, encode
from roost.rawstore import RawStore

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FORMATS_DIR = SHARED / "formats"
REAL_POSTS = SHARED / "real_posts" / "posts.jsonl"


def _lines(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FORMATS_DIR / name).read_text().splitlines() if line.strip()]


def _json(name: str) -> Any:
    text = (FORMATS_DIR / name).read_text()
    return json.loads(text[text.index("=") + 1 :] if name.endswith(".js") else text)


def _renamed(value: Any, copy: int, keys: tuple[str, ...]) -> Any:
    """`value` with every string under one of `keys` given the suffix of replica `copy`."""
    if isinstance(value, dict):
        return {
            k: f"{v}{copy:06d}" if k in keys and isinstance(v, str) else _renamed(v, copy, keys)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_renamed(v, copy, keys) for v in value]
    return value


def _replicas(records: list[Any], target: int, keys: tuple[str, ...]) -> Iterator[Any]:
    for n in range(target):
        copy, index = divmod(n, len(records))
        yield _renamed(records[index], copy, keys) if copy else records[index]


def _write_lines(path: Path, records: Iterator[Any]) -> Path:
    with open(path, "w") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def _real_rows(target: int) -> list[dict[str, Any]]:
    rows = []
    with open(REAL_POSTS) as f:
        for line in f:
            rows.append(json.loads(line))
            if len(rows) == target:
                break
    return rows


def build_inputs(folder: Path, target: int) -> dict[str, Path]:
    """One file per format with about `target` records, from the samples."""
    files: dict[str, Path] = {}
    v1 = [
        r
        for r in _lines("twitter_v1_stream_tweet_parser.jsonl")
        + _lines("twitter_v1_stream_python_twitter.jsonl")
    ]
    files["twitter-v1"] = _write_lines(folder / "v1.jsonl", _replicas(v1, target, ("id_str",)))
    v2 = _lines("twitter_v2_api_responses.jsonl") + _lines("twitter_v2_filtered_stream.jsonl")
    files["twitter-v2"] = _write_lines(folder / "v2.jsonl", _replicas(v2, target, ("id",)))
    archive = list(_replicas(_json("twitter_archive_tweets.js"), target, ("id", "id_str")))
    files["twitter-archive"] = folder / "tweets.js"
    files["twitter-archive"].write_text("window.YTD.tweets.part0 = " + json.dumps(archive, indent=2))
    jet = _lines("bluesky_jetstream.jsonl") + _lines("bluesky_jetstream_golden.jsonl")
    files["jetstream"] = _write_lines(folder / "jetstream.jsonl", _replicas(jet, target, ("rkey",)))
    statuses = [_json("mastodon_status_docs_example.json"), _json("mastodon_status_fosstodon.json")]
    statuses += _json("mastodon_timeline_tag_rstats.json")
    files["mastodon"] = _write_lines(folder / "mastodon.jsonl", _replicas(statuses, target, ("id",)))

    rows = _real_rows(target)
    files["jsonl"] = _write_lines(folder / "posts.jsonl", iter(rows))
    files["csv"] = folder / "posts.csv"
    with open(files["csv"], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "text", "lang", "task"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    files["parquet"] = folder / "posts.parquet"
    pq.write_table(
        pa.Table.from_pylist([{k: r[k] for k in ("id", "text", "lang", "task")} for r in rows]),
        files["parquet"],
    )
    files["roost"] = folder / "events.jsonl"
    with open(files["roost"], "wb") as f:
        for i, row in enumerate(rows):
            created_at = dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=i)
            author = f"u{i % 997}"
            post = Post(
                id=row["id"], text=row["text"], author_id=author, created_at=created_at, lang=row["lang"]
            )
            f.write(encode(Event.of_post(post)) + b"\n")
    return files


def baseline(fmt: str, path: Path) -> int:
    """The loop a user writes first: parse every record into Python objects, nothing more."""
    if fmt == "csv":
        with open(path, newline="") as f:
            return sum(1 for _ in csv.DictReader(f))
    if fmt == "parquet":
        return sum(len(batch.to_pylist()) for batch in pq.ParquetFile(path).iter_batches())
    if fmt == "twitter-archive":
        text = path.read_text()
        return len(json.loads(text[text.index("=") + 1 :]))
    with open(path, "rb") as f:
        return sum(1 for line in f if json.loads(line) is not None)


def _best(repeat: int, run: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    """(fastest seconds over `repeat` runs of `run(*args)`, its result)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run(*args)
        best = min(best, time.perf_counter() - start)
    return best, result


def parse_only(fmt: str, path: Path) -> ImportCounts:
    counts = ImportCounts()
    for _ in read_events(path, fmt, counts=counts):
        pass
    return counts


def parse_and_store(fmt: str, path: Path, folder: Path) -> int:
    db = folder / f"{fmt}.db"
    with RawStore(db) as store:
        result = import_file(store, path, fmt)
    db.unlink()
    return result.counts.posts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=50_000, help="records per format")
    parser.add_argument("--repeat", type=int, default=2, help="best of this many runs (parse and baseline)")
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {args.records:,} records per format")
    columns = ("format", "MB", "json.loads rec/s", "parse rec/s", "ratio", "parse posts/s", "+store posts/s")
    print(f"{columns[0]:16}" + "".join(f"{c:>17}" for c in columns[1:]))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for fmt, path in build_inputs(folder, args.records).items():
            base_s, records = _best(args.repeat, baseline, fmt, path)
            parse_s, counts = _best(args.repeat, parse_only, fmt, path)
            assert counts.quarantined == 0 and counts.records == records, (fmt, counts, records)
            store_s, posts = _best(1, parse_and_store, fmt, path, folder)
            cells = (
                f"{path.stat().st_size / 1e6:.1f}",
                f"{records / base_s:,.0f}",
                f"{records / parse_s:,.0f}",
                f"{base_s / parse_s:.2f}x",
                f"{counts.posts / parse_s:,.0f}",
                f"{posts / store_s:,.0f}",
            )
            print(f"{fmt:16}" + "".join(f"{c:>17}" for c in cells), flush=True)
    print("ratio = json.loads time / roost parse time over the same records (above 1: roost is faster)")


if __name__ == "__main__":
    main()
