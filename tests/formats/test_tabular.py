"""JSON Lines, CSV and Parquet through a column mapping, and the defaults for what a record lacks."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from roost.formats import ImportCounts, detect_format, read_events
from roost.posts import Post
from roost.quarantine import Quarantine, read_quarantine
from tests.conftest import REAL_POSTS, need

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _posts(path: Path, fmt: str | None = None, **options: object) -> list[Post]:
    return [e.post for e in read_events(path, fmt, **options) if e.post is not None]


def test_real_posts_import_with_deterministic_defaults() -> None:
    path = need(REAL_POSTS)
    assert detect_format(path) == "jsonl"
    counts = ImportCounts()
    first = last = None
    for event in read_events(path, counts=counts):
        first = first or event.post
        last = event.post
    assert (counts.records, counts.posts, counts.quarantined) == (59049, 59049, 0)
    assert first is not None and last is not None
    assert first.id == "tweeteval-sentiment-val-00000"
    assert first.text.startswith("Dark Souls 3 April Launch Date Confirmed")
    assert (first.author_id, first.created_at, first.lang, first.source) == ("unknown", EPOCH, "en", "jsonl")
    assert last.lang == "es"


def test_real_posts_keep_extra_holds_the_other_columns() -> None:
    with open(need(REAL_POSTS), "rb") as f:
        line = f.readline()
    path = Path(REAL_POSTS)
    event = next(read_events(path, keep_extra=True))
    record = json.loads(line)
    assert event.post is not None and event.post.extra is not None
    assert event.post.extra == {k: v for k, v in record.items() if k not in ("id", "text", "lang")}


def test_jsonl_mapping_nested_columns_and_epoch_times(tmp_path: Path) -> None:
    path = tmp_path / "dump.jsonl"
    rows = [
        {
            "tweet_id": 17,
            "body": "hello #World @bob https://x.org/a.",
            "user": {"id": 5},
            "ts": 1617293551000,
            "likes": "3",
            "metrics": {"views": 9},
        },
        {
            "tweet_id": "18",
            "body": "reply",
            "user": {"id": "5"},
            "ts": "2021-04-01T17:00:00+02:00",
            "parent": 17,
        },
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    mapping = {
        "id": "tweet_id",
        "text": "body",
        "author_id": "user.id",
        "created_at": "ts",
        "reply_to": "parent",
    }
    first, second = _posts(path, "jsonl", mapping=mapping)
    assert (first.id, first.author_id, first.text) == ("17", "5", rows[0]["body"])
    assert first.created_at == dt.datetime(2021, 4, 1, 16, 12, 31, tzinfo=dt.UTC)
    assert (first.hashtags, first.mentions, first.urls) == (["World"], ["bob"], ["https://x.org/a"])
    assert (first.metrics.likes, first.metrics.views) == (3, 9)
    assert second.created_at == dt.datetime(2021, 4, 1, 15, 0, tzinfo=dt.UTC)
    assert second.reply_to == "17"


def test_records_without_ids_get_content_hashes(tmp_path: Path) -> None:
    path = tmp_path / "bare.jsonl"
    path.write_text('{"text": "one"}\n{"text": "two"}\n{"text": "one"}\n')
    ids = [p.id for p in _posts(path, "jsonl")]
    assert ids[0] == ids[2] != ids[1] and all(i.startswith("sha256:") and len(i) == 39 for i in ids)
    assert ids == [p.id for p in _posts(path, "jsonl")]  # the same again on a second read


def test_defaults_fill_what_records_lack(tmp_path: Path) -> None:
    path = tmp_path / "posts.jsonl"
    path.write_text('{"id": "1", "text": "a"}\n{"id": "2", "text": "b", "author_id": "zoe"}\n')
    defaults = {"author_id": "me", "created_at": "2024-05-01T00:00:00Z", "lang": "fr"}
    first, second = _posts(path, "jsonl", defaults=defaults)
    assert (first.author_id, second.author_id) == ("me", "zoe")
    assert first.created_at == dt.datetime(2024, 5, 1, tzinfo=dt.UTC) and first.lang == "fr"


def test_unknown_fields_in_a_mapping_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "posts.jsonl"
    path.write_text('{"id": "1", "text": "a"}\n')
    with pytest.raises(ValueError, match="unknown Post field 'txt'"):
        read_events(path, "jsonl", mapping={"txt": "body"})
    with pytest.raises(ValueError, match="id cannot have a default"):
        read_events(path, "jsonl", defaults={"id": "x"})
    with pytest.raises(ValueError, match="takes no options"):
        read_events(path, "jetstream", mapping={"text": "body"})


def test_csv_rows_entity_columns_and_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "posts.csv"
    path.write_bytes(
        b"id,body,when,tags,who\n"
        b'1,"hi, all",2020-01-02T03:04:05Z,"#a, b",\n'
        b"2,,2020-01-02T03:04:05Z,,\n"  # no text: quarantined
        b"3,caf\xe9,2020-01-02T03:04:05Z,,\n"  # Latin-1 byte: quarantined
        b"4,extra field,2020-01-02T03:04:05Z,,,surplus\n"  # more fields than the header
        b'5,"[1, 2] and #tag",1577934245,"[""x"", ""y""]",u9\n'
    )
    assert detect_format(path) == "csv"
    counts = ImportCounts()
    with Quarantine(tmp_path / "q", "import") as quarantine:
        posts = [
            e.post
            for e in read_events(
                path,
                quarantine=quarantine,
                counts=counts,
                mapping={"text": "body", "created_at": "when", "hashtags": "tags", "author_id": "who"},
            )
        ]
    assert [p.id for p in posts] == ["1", "5"]
    assert posts[0].text == "hi, all" and posts[0].hashtags == ["a", "b"] and posts[0].author_id == "unknown"
    assert posts[1].hashtags == ["x", "y"] and posts[1].author_id == "u9"
    assert posts[1].created_at == dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert posts[0].source == "csv"
    assert counts.quarantined == 3
    reasons = [(q.position, q.reason) for q in read_quarantine(tmp_path / "q", "import")]
    assert reasons[0][0] == "row 1" and "no text: the text is empty" in reasons[0][1]
    assert reasons[1][0] == "row 2" and "not valid UTF-8" in reasons[1][1]
    assert reasons[2][0] == "row 3" and "has 6 fields, the header has 5" in reasons[2][1]


def test_parquet_with_timestamps_and_lists(tmp_path: Path) -> None:
    path = tmp_path / "posts.parquet"
    table = pa.table(
        {
            "post_id": pa.array([1, 2], pa.int64()),
            "text": ["one #x", "two"],
            "author_id": ["a", None],
            "created_at": pa.array(
                [dt.datetime(2022, 1, 1, 12), dt.datetime(2022, 1, 2, 12)],
                pa.timestamp("ms", tz="Europe/Berlin"),
            ),
            "hashtags": [["p", "q"], None],
            "likes": [5, None],
        }
    )
    pq.write_table(table, path)
    assert detect_format(path) == "parquet"
    first, second = _posts(path, mapping={"id": "post_id"})
    assert (first.id, first.author_id, first.hashtags, first.metrics.likes) == ("1", "a", ["p", "q"], 5)
    assert first.created_at == dt.datetime(2022, 1, 1, 12, tzinfo=dt.UTC)
    assert (second.author_id, second.hashtags, second.metrics.likes) == ("unknown", [], 0)
    assert first.source == "parquet"


def test_corrupt_parquet_is_one_quarantined_record(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not really parquet")
    counts = ImportCounts()
    assert list(read_events(path, "parquet", counts=counts)) == []
    assert (counts.records, counts.quarantined) == (1, 1)
