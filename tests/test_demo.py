"""`roost demo` end to end on a fresh home with a tiny time budget: Ctrl-C during the build stops
it and a rerun goes on from there; every stage leaves its output; a rerun reuses every stage and
serves it all from one server; every stage answers there (and nothing else: bad keys and unknown
paths get JSON errors); and Ctrl-C stops the server cleanly."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from roost.curate.shards import ShardSet
from roost.firehose.consumers import Registry
from roost.firehose.log import Log
from roost.rawstore import RawStore
from roost.train.run import RunDir

if TYPE_CHECKING:
    from tests.web.demo_session import DemoHome, DemoServer

pytest_plugins = ["tests.web.demo_session"]
pytestmark = pytest.mark.slow

STAGES = ["firehose", "curate", "train", "chat", "export", "search", "ads"]


@pytest.fixture(scope="module")
def server(demo_home: DemoHome, launch_demo: Callable[[Path], DemoServer]) -> Iterator[DemoServer]:
    running = launch_demo(demo_home.ws.home)
    print(f"\nroost demo reused its stages and served in {running.startup_seconds:.1f} s")
    yield running
    running.stop()


def test_every_stage_leaves_its_output(demo_home: DemoHome) -> None:
    ws, summaries = demo_home.ws, demo_home.summaries
    assert list(summaries) == STAGES
    for stage in STAGES:
        marker = json.loads((ws.home / "demo" / f"{stage}.json").read_text())
        assert marker["summary"] == summaries[stage] and marker["line"]
    # the platform, through a real firehose server, into the raw store (exactly once)
    events = summaries["firehose"]["events"]
    assert Log(ws.firehose_dir).head == events - 1 > 1000
    with RawStore.in_dir(ws.raw_dir) as store:
        assert store.count() == summaries["firehose"]["posts"] > 0
        assert store.cursor("firehose") == events - 1
    # curation: corpus, tokenizer, shards
    assert (ws.corpus_dir / "manifest.json").exists() and (ws.tokenizer_dir / "tokenizer.json").exists()
    assert ShardSet.open(ws.shards_dir).shards("train")
    assert 0 < summaries["curate"]["kept"] <= summaries["firehose"]["posts"]
    # pretraining and chat tuning: metrics, a checkpoint, the loss plot
    for stage, run, objective in (("train", "demo", "pretrain"), ("chat", "demo-chat", "sft")):
        run_dir = RunDir(ws.runs_dir / run)
        assert run_dir.read_config()[0].objective == objective
        assert run_dir.metrics_path.read_text().count('"loss"') >= summaries[stage]["step"] >= 1
        assert any(run_dir.checkpoints_dir.glob("step-*/.metadata"))
        assert run_dir.plot_path.exists()
    # the export transformers loads
    export = ws.export_dir / "demo-chat"
    assert json.loads((export / "config.json").read_text())["model_type"] == "llama"
    assert (export / "model.safetensors").stat().st_size > 0 and (export / "tokenizer.json").exists()
    # the index took every post the log holds (the raw store counts those still there, and deletes)
    assert (ws.index_dir / "index.db").exists()
    assert summaries["search"]["posts"] == summaries["firehose"]["posts"] + summaries["firehose"]["deletes"]
    # campaigns with copy the chat model wrote (each variant passed or rejected with reasons), and
    # a simulated day of ad traffic
    assert summaries["ads"]["campaigns"] == 4
    assert summaries["ads"]["variants_passed"] + summaries["ads"]["variants_rejected"] > 0
    day = json.loads((ws.home / "demo" / "ads-day.json").read_text())
    assert day["requests"] > 0 and day["audit"] == [] and day["campaigns"]


def test_ctrl_c_while_building_stops_it_and_a_rerun_goes_on(demo_home: DemoHome) -> None:
    first, second = demo_home.interrupted, demo_home.output
    assert "Interrupted. The finished stages are kept" in first and "Traceback" not in first
    assert "✓ firehose" in first and "✓ curate" in first and "✓ train" not in first
    assert "✓ firehose (reused)" in second and "✓ curate (reused)" in second
    assert "✓ train (reused)" not in second
    # The trainer checkpointed when told to stop, and the rerun resumed from there.
    log = (demo_home.ws.home / "demo" / "logs" / "demo.log").read_text(encoding="utf-8")
    assert "resumed from step" in log, log[-2000:]


def test_a_rerun_reuses_every_stage_and_serves(server: DemoServer) -> None:
    for stage in STAGES:
        assert f"✓ {stage} (reused)" in server.output
    assert "roost is running" in server.output


def test_every_stage_answers_on_the_one_server(server: DemoServer, demo_home: DemoHome) -> None:
    with server.http() as http:
        status = http.get("/web/status").json()
        assert status["model"] == "demo-chat"
        assert status["stages"] == dict.fromkeys(["firehose", "chat", "search", "ads", "training"], True)
        assert http.get("/v1/models").json()["data"][0]["id"] == "demo-chat"
        reply = http.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "hello"}], "max_tokens": 4, "temperature": 0},
        ).json()
        assert reply["usage"]["completion_tokens"] >= 1
        post = http.get("/search/query", params={"q": "the", "limit": 1}).json()["hits"][0]["post"]
        word = max(post["text"].split(), key=len)
        hits = http.get("/search/query", params={"q": word, "mode": "lexical"}).json()["hits"]
        assert any(h["post"]["id"] == post["id"] for h in hits)
        assert http.post("/search/answer", json={"query": word}).status_code == 200
        runs = {r["name"]: r for r in http.get("/web/runs").json()["runs"]}
        assert set(runs) == {"demo", "demo-chat"} and runs["demo"]["loss_curve"]["step"]
        assert http.get("/").headers["content-security-policy"].startswith("default-src 'none'")
        campaigns = http.get("/ads/campaigns").json()
        assert len(campaigns) == 4 and all(
            http.get(f"/ads/campaigns/{c['id']}/creatives").json() for c in campaigns
        )
        assert http.get(f"/ads/campaigns/{campaigns[0]['id']}/preview").status_code == 200
        assert http.get("/web/ads/day").json()["campaigns"]
    with server.http(server.admin_key) as admin:
        stats = admin.get("/firehose/admin/stats").json()
        assert stats["head"] >= demo_home.summaries["firehose"]["events"] - 1
        names = {c["name"] for c in admin.get("/firehose/admin/consumers").json()["consumers"]}
        assert {"raw-store", "acme-research", "presse-fr"} <= names


def test_wrong_keys_and_unknown_paths_get_json_errors(server: DemoServer) -> None:
    with server.http("rk_0000000000000000_" + "x" * 43) as http:
        for path in ("/v1/models", "/search/query?q=a", "/web/runs"):
            answer = http.get(path)
            assert answer.status_code == 401 and answer.json()["error"]
        assert http.get("/firehose/admin/stats").status_code == 401  # an API key is not an admin key
        missing = http.get("/no/such/page")
        assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"


def test_ctrl_c_stops_it_cleanly(server: DemoServer, demo_home: DemoHome) -> None:
    from roost.firehose.live import open_writer

    assert server.stop() == 0
    assert "roost demo stopped" in server.output
    assert "Traceback" not in server.output
    # The keys it printed appear once each, in its welcome, and nowhere in what it logged after.
    assert server.output.count(server.api_key) == 3 and server.output.count(server.admin_key) == 2
    with open_writer(demo_home.ws):  # the simulated platform let go of the log
        pass
    # Its consumers' streams ended with a server_shutdown frame (the hub was told before uvicorn
    # waited for open responses), not by a dropped connection.
    registry = Registry(demo_home.ws.consumers_db)
    ends = [e for e in registry.audit_log(limit=50) if e.action == "disconnect"]
    registry.close()
    last = {}
    for entry in reversed(ends):
        last[entry.consumer] = entry.detail
    for name in ("raw-store", "presse-fr"):
        assert last[name]["reason"] == "server_shutdown" and last[name]["final_sent"]
