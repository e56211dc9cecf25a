"""Files split into records: JSON Lines, arrays (whole or broken), single documents, positions."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import tracemalloc
from pathlib import Path

import zstandard

from roost.formats import ImportCounts, detect_format, read_events
from roost.formats.framing import js_variable, json_records
from roost.posts import Event, Post, encode
from roost.quarantine import Quarantine, read_quarantine


def _post(i: int) -> dict:
    return {
        "id": str(i),
        "text": f'post {i} with ] and }} and \\" inside',
        "author_id": "a",
        "created_at": "2024-01-01T00:00:00Z",
    }


def test_jsonl_skips_blank_lines_and_reports_line_and_byte(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + json.dumps(_post(1)).encode() + b"\n\n  \n{broken\n" + json.dumps(_post(2)).encode()
    )
    records = list(json_records(path))
    assert [(r.unit, r.index) for r in records] == [("line", 1), ("line", 4), ("line", 5)]
    assert records[1].offset == len(path.read_bytes().split(b"{broken")[0])
    counts = ImportCounts()
    with Quarantine(tmp_path / "q", "import") as quarantine:
        ids = [e.id for e in read_events(path, "roost", quarantine=quarantine, counts=counts)]
    assert ids == ["1", "2"]
    (entry,) = read_quarantine(tmp_path / "q", "import")
    assert entry.position == f"line 4 (byte {records[1].offset})"
    assert entry.reason.startswith("invalid JSON") and entry.record == "{broken"
    assert entry.source == str(path)


def test_array_elements_and_a_js_prefix(tmp_path: Path) -> None:
    path = tmp_path / "tweets.js"
    path.write_text(
        "window.YTD.tweets.part0 = [\n" + ",\n".join(json.dumps(_post(i)) for i in range(3)) + "\n];\n"
    )
    assert js_variable(path) == "window.YTD.tweets.part0"
    assert [json.loads(bytes(r.data))["id"] for r in json_records(path)] == ["0", "1", "2"]


def test_broken_array_keeps_every_whole_element(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    whole = "[" + ", ".join(json.dumps(_post(i)) for i in range(4)) + "]"
    cut = whole[: whole.index('"post 3')]  # a download that stopped inside the last element
    path.write_text(cut.replace('"id": "1"', '"id": "1",,'))  # and a damaged element before it
    counts = ImportCounts()
    with Quarantine(tmp_path / "q", "import") as quarantine:
        ids = [e.id for e in read_events(path, "roost", quarantine=quarantine, counts=counts)]
    assert ids == ["0", "2"]
    assert (counts.records, counts.quarantined) == (4, 2)
    first, last = read_quarantine(tmp_path / "q", "import")
    assert first.position.startswith("element 1 ") and first.reason.startswith("invalid JSON")
    assert last.position.startswith("element 3 ") and "breaks off in element 3" in last.reason
    assert last.record.startswith('{"id": "3"')


def test_pretty_printed_document_is_one_record(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    path.write_text(json.dumps(_post(7), indent=2))
    (record,) = json_records(path)
    assert record.unit == "document" and record.position() == "document"
    assert [e.id for e in read_events(path, "roost")] == ["7"]


def test_roost_lines_round_trip_exactly(tmp_path: Path) -> None:
    fields = {**_post(3), "created_at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC)}
    post = Post(**fields, source="simulate", hashtags=["x"])
    events = [Event.of_post(post), Event.of_delete("2"), Event(type="post", id="3", post=post, seq=41)]
    path = tmp_path / "sim.jsonl"
    path.write_bytes(b"".join(encode(e) + b"\n" for e in events) + encode(post) + b"\n")
    got = list(read_events(path))
    assert [encode(e) for e in got] == [
        encode(events[0]),
        encode(events[1]),
        encode(events[0]),
        encode(events[0]),
    ]
    assert got[0].post is not None and got[0].post.source == "simulate"


def test_array_element_offsets_are_exact(tmp_path: Path) -> None:
    path = tmp_path / "tweets.js"
    path.write_text(
        "window.YTD.tweets.part0 = [ " + " ,\n\t ".join(json.dumps(_post(i)) for i in range(5)) + " ]"
    )
    content = path.read_bytes()
    for record in json_records(path):
        assert content[record.offset : record.offset + len(record.data)] == bytes(record.data)


def test_gzip_and_zstd_files_read_like_plain_ones(tmp_path: Path) -> None:
    lines = b"".join(json.dumps(_post(i)).encode() + b"\n" for i in range(3))
    array = b"[" + b",".join(json.dumps(_post(i)).encode() for i in range(3)) + b"]"
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(lines))
    (tmp_path / "b.json.zst").write_bytes(zstandard.ZstdCompressor().compress(array))
    (tmp_path / "c.csv.gz").write_bytes(gzip.compress(b"id,text\n0,post 0\n1,post 1\n2,post 2\n"))
    for name, fmt in (("a.jsonl.gz", "roost"), ("b.json.zst", "roost"), ("c.csv.gz", "csv")):
        assert detect_format(tmp_path / name) == fmt
        assert [e.id for e in read_events(tmp_path / name)] == ["0", "1", "2"]


def test_a_cut_gzip_file_keeps_what_came_before_the_cut(tmp_path: Path) -> None:
    lines = b"".join(json.dumps(_post(i)).encode() + b"\n" for i in range(2000))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(gzip.compress(lines)[:-4000])
    counts = ImportCounts()
    with Quarantine(tmp_path / "q", "import") as quarantine:
        ids = [e.id for e in read_events(path, "roost", quarantine=quarantine, counts=counts)]
    assert ids == [str(i) for i in range(len(ids))] and 0 < len(ids) < 2000
    entries = read_quarantine(tmp_path / "q", "import")
    assert "damaged or cut short" in entries[-1].reason and counts.quarantined == len(entries) <= 2


def test_reading_streams_in_flat_memory(tmp_path: Path) -> None:
    line = encode(Event.of_delete("x" * 150))
    lines = tmp_path / "big.jsonl"
    lines.write_bytes(b"\n".join(line.replace(b"xxxxxxxx", b"%08d" % i, 1) for i in range(40_000)) + b"\n")
    array = tmp_path / "big.json"
    array.write_bytes(b"[" + lines.read_bytes().strip().replace(b"\n", b",") + b"]")
    for path, bound in ((lines, 1 << 20), (array, lines.stat().st_size // 2)):
        tracemalloc.start()
        counts = ImportCounts()
        for _ in read_events(path, "roost", counts=counts):
            pass
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert counts.deletes == 40_000
        # JSON Lines hold one line at a time; an array is mapped, and only its element views are held.
        assert peak < bound, f"{path.name}: peak {peak:,} bytes for a {path.stat().st_size:,}-byte file"
