"""`roost index build|status|trending|suggest` and `roost search` on a small workspace."""

from __future__ import annotations

import itertools
import json

from typer.testing import CliRunner

from roost.cli import app
from roost.firehose.log import LogWriter
from roost.firehose.simulate import SimConfig, simulate
from roost.workspace import Workspace


def test_build_then_search_from_the_command_line(tmp_path) -> None:
    ws = Workspace(tmp_path / "home").ensure()
    ws.config_path.write_text('[search]\nembedder = "none"\ngenerator = "none"\npartition_posts = 300\n')
    with LogWriter(ws.firehose_dir) as writer:
        writer.append(list(itertools.islice(simulate(SimConfig(seed=2)), 1200)))
    runner = CliRunner()
    home = ["--home", str(ws.home)]

    built = runner.invoke(app, [*home, "index", "build", "--workers", "1", "--json"])
    assert built.exit_code == 0, built.output
    report = json.loads(built.output)
    assert report["cursor"] == 1199 and report["partitions"] >= 3

    found = runner.invoke(app, [*home, "search", "football", "--mode", "lexical", "-n", "5", "--json"])
    assert found.exit_code == 0, found.output
    hits = json.loads(found.output)["hits"]
    assert hits and all(
        "football" in (h["post"]["text"] + " ".join(h["post"]["hashtags"])).lower() for h in hits
    )

    latest = runner.invoke(app, [*home, "search", "--lang", "fr", "--sort", "latest", "-n", "20", "--json"])
    times = [h["post"]["created_at"] for h in json.loads(latest.output)["hits"]]
    assert times and times == sorted(times, reverse=True)
    assert runner.invoke(app, [*home, "search", "football"]).exit_code == 0  # the table for people

    status = json.loads(runner.invoke(app, [*home, "index", "status", "--json"]).output)
    assert status["cursor"] == 1199 and len(status["partitions"]) == report["partitions"]
    trending = runner.invoke(app, [*home, "index", "trending", "--window", "180", "--json"])
    assert trending.exit_code == 0 and isinstance(json.loads(trending.output), list)

    empty = runner.invoke(app, [*home, "search"])
    assert empty.exit_code == 1 and "give a query" in empty.output
    bad_time = runner.invoke(app, [*home, "search", "x", "--since", "noon"])
    assert bad_time.exit_code == 1 and "ISO-8601" in bad_time.output
