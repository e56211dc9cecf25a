"""`roost import` through the real CLI: counts, quarantine, and idempotence by post id."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import zstandard
from typer.testing import CliRunner

from roost.cli import app
from roost.cli.imports import FORMAT_NAMES
from roost.formats import FORMATS
from roost.quarantine import read_quarantine
from roost.rawstore import RawStore
from roost.workspace import Workspace
from tests.conftest import FORMATS_DIR, need


def _invoke(home: Path, *args: str) -> dict:
    result = CliRunner().invoke(app, ["--home", str(home), "import", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _tables(db: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(db) as con:
        return {
            table: con.execute(f"SELECT rowid, * FROM {table} ORDER BY rowid").fetchall()
            for table in ("posts", "deletes", "cursors")
        }


def test_import_twice_leaves_the_store_unchanged(tmp_path: Path) -> None:
    need(FORMATS_DIR)
    home = tmp_path / "home"
    first = _invoke(home, str(FORMATS_DIR))
    db = Workspace(home).raw_dir / "raw.db"
    before = _tables(db)
    second = _invoke(home, str(FORMATS_DIR))
    assert _tables(db) == before
    imported = [f for f in first["files"] if not f["left_out"]]
    assert len(imported) == 15 and [f["path"] for f in first["files"] if f["left_out"]] == [
        str(FORMATS_DIR / "README.md")
    ]
    assert sum(f["net_new"] for f in imported) == 111 and all(f["net_new"] == 0 for f in second["files"])
    assert all(f["counts"]["quarantined"] == 0 and f["error"] is None for f in imported)
    # The same counts both times: reading does not depend on what the store holds.
    assert [f["counts"] for f in first["files"]] == [f["counts"] for f in second["files"]]
    with RawStore.in_dir(Workspace(home).raw_dir) as store:
        # 120 post events, less the 7 tweet_parser originals embedded twice and the 2 v2 tweets
        # that are both included in one page and the data of another.
        assert store.count() == len(before["posts"]) == 111
        assert store.is_deleted("6832057002")
        assert store.get("at://did:plc:o2rolxey6s5k7d4lxcz3inl4/app.bsky.feed.post/3mptbyp7lu223") is not None


def test_import_reports_counts_per_file_and_quarantines_bad_lines(tmp_path: Path) -> None:
    source = need(FORMATS_DIR / "twitter_v1_stream_twitter4j.jsonl")
    damaged = tmp_path / "stream.jsonl"
    damaged.write_bytes(
        source.read_bytes() + b'{"id": 1, "user": {"id": 2}, "text": "x", "created_at": "soon"}\n'
    )
    home = tmp_path / "home"
    report = _invoke(home, str(damaged))
    (result,) = report["files"]
    assert result["format"] == "twitter-v1"
    assert result["counts"] == {
        "records": 7,
        "posts": 3,
        "deletes": 1,
        "skipped": {"limit": 1, "scrub_geo": 1},
        "quarantined": 1,
        "bytes_read": len(source.read_bytes()),
    }
    (entry,) = read_quarantine(Workspace(home).quarantine_dir, "import")
    assert entry.position.startswith("line 7 ") and "'soon'" in entry.reason
    assert report["quarantine"] == str(Workspace(home).quarantine_dir / "import.jsonl")


def test_human_output_and_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    path = need(FORMATS_DIR / "twitter_archive_tweets.js")
    result = runner.invoke(app, ["--home", str(tmp_path / "h"), "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "twitter-archive" in result.output and "8 records: 8 posts" in result.output
    unknown = tmp_path / "notes.txt"
    unknown.write_text("just some notes\n")
    result = runner.invoke(app, ["--home", str(tmp_path / "h"), "import", str(unknown)])
    assert result.exit_code == 1 and "cannot tell the format" in result.output
    result = runner.invoke(app, ["--home", str(tmp_path / "h"), "import", str(path), "--format", "tweets"])
    assert result.exit_code == 1 and "unknown format 'tweets'" in result.output
    result = runner.invoke(app, ["--home", str(tmp_path / "h"), "import", str(path), "--map", "text"])
    assert result.exit_code == 1 and "expected FIELD=VALUE" in result.output


def test_map_and_default_reach_the_parsers(tmp_path: Path) -> None:
    table = tmp_path / "posts.csv"
    table.write_text("tweet_id,body\n1,hello\n")
    archive = tmp_path / "tweets.js"
    archive.write_bytes(need(FORMATS_DIR / "twitter_archive_tweets.js").read_bytes())
    home = tmp_path / "home"
    _invoke(home, str(table), "--map", "id=tweet_id", "--map", "text=body", "--default", "author_id=me")
    _invoke(home, str(archive), "--default", "author_id=42")
    with RawStore.in_dir(Workspace(home).raw_dir) as store:
        assert store.get("1").author_id == "me"
        assert store.get("2029903943413772741").author_id == "42"


def test_help_lists_every_format() -> None:
    assert FORMAT_NAMES.split(", ") == list(FORMATS)


def test_roost_simulate_output_imports_whole(tmp_path: Path) -> None:
    import typer.main

    if "simulate" not in typer.main.get_command(app).commands:  # type: ignore[attr-defined]
        pytest.skip("roost simulate is not part of this build yet")
    runner = CliRunner()
    out = tmp_path / "sim.jsonl.zst"
    home = tmp_path / "home"
    made = runner.invoke(
        app, ["--home", str(home), "simulate", "--posts", "2000", "--seed", "1", "--out", str(out)]
    )
    assert made.exit_code == 0, made.output
    lines = zstandard.ZstdDecompressor().decompressobj().decompress(out.read_bytes()).splitlines()
    deletes = sum(b'"type":"delete"' in line for line in lines)
    (result,) = _invoke(home, str(out))["files"]
    assert result["format"] == "roost"
    counts = result["counts"]
    assert (counts["posts"], counts["deletes"], counts["quarantined"]) == (2000, deletes, 0)
    assert (result["net_new"], result["tombstoned"]) == (2000 - deletes, deletes)
    (again,) = _invoke(home, str(out))["files"]
    assert (again["net_new"], again["tombstoned"]) == (0, 0)
