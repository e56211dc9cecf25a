"""The demo's stages, in order, each calling the stage's own code or command: stream the simulated
platform through a real firehose server into the raw store, curate, pretrain, tune for chat,
export, build the search index, and seed the ads.

Each stage returns a summary (kept as its done-marker, so a rerun reuses it) and a line for a
person. Training and indexing run as the `roost` commands a user would type, in processes of
their own session: Ctrl-C reaches only the demo, which then asks them to stop (the trainer
checkpoints on SIGTERM) and waits, so an interrupted stage resumes where it stopped.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roost.demo.display import Report
from roost.demo.plan import Plan
from roost.web.routes import SIMULATED_DAY
from roost.workspace import Workspace

PRETRAIN_RUN = "demo"
CHAT_RUN = "demo-chat"
APPEND_BATCH = 2_000  # events per group commit while filling the log (what importers use)


class StageFailed(RuntimeError):
    """A stage could not finish; the message says what to look at."""


@dataclass
class Context:
    ws: Workspace
    plan: Plan
    deadline: float  # time.monotonic() by which the build should be over
    note: Callable[[str], None]

    @property
    def logs_dir(self) -> Path:
        return self.ws.home / "demo" / "logs"

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def seconds_for(self, elastic: int) -> float:
        """The time of elastic stage `elastic` (0 pretraining, 1 chat tuning, 2 the embedder), out
        of what is left of the budget now."""
        return self.plan.elastic_seconds(elastic, self.left())


Result = tuple[dict[str, Any], str]  # (summary kept in the done-marker, a line for a person)


# -- running roost's own commands --------------------------------------------------------------------
def run_command(
    ctx: Context,
    name: str,
    args: list[str],
    *,
    poll: Callable[[], None] | None = None,
    stop_signal: int = signal.SIGTERM,
) -> str:
    """Run `python -m <args>` in a session of its own, calling `poll` twice a second; return its
    stdout. Its stderr goes to demo/logs/<name>.log. On Ctrl-C it gets `stop_signal` and a minute to
    stop before it is killed; then the interrupt goes on."""
    ctx.logs_dir.mkdir(parents=True, exist_ok=True)
    log = ctx.logs_dir / f"{name}.log"
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    with open(log, "ab") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", *args], stdout=subprocess.PIPE, stderr=err, env=env, start_new_session=True
        )
        try:
            while True:
                try:
                    out, _ = process.communicate(timeout=0.5)
                    break
                except subprocess.TimeoutExpired:
                    if poll is not None:
                        poll()
        except KeyboardInterrupt:
            _stop(process, stop_signal)
            raise
    if process.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-12:]
        raise StageFailed(
            f"`{' '.join(args[:4])} …` failed (exit {process.returncode}); the end of {log}:\n"
            + "\n".join(tail)
        )
    return out.decode()


def _stop(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def _roost(ctx: Context, *args: str) -> list[str]:
    return ["roost", "--home", str(ctx.ws.home), *args]


# -- 1. the platform through the firehose ------------------------------------------------------------
def stream(ctx: Context, report: Report) -> Result:
    """Simulate the platform into the firehose log while a consumer streams it from a real
    firehose server (on a free port) into the raw store, exactly once."""
    from roost.demo.serving import RAW_STORE, ServerThread, consumer_key
    from roost.firehose.client import StreamConsumer
    from roost.firehose.config import FirehoseConfig
    from roost.firehose.live import open_writer
    from roost.firehose.server import create_app
    from roost.rawstore import RawStore

    ws, target = ctx.ws, ctx.plan.events
    config = ws.config("firehose", FirehoseConfig)
    _, key = consumer_key(ws, RAW_STORE)
    stop = threading.Event()
    outcome: dict[str, Any] = {}

    def consume() -> None:
        try:
            with RawStore.in_dir(ws.raw_dir) as store:  # opened on the thread that writes it
                consumer = StreamConsumer(server.url, key, store, name=config.consumer_name)
                outcome["consumer"] = consumer
                consumer.run(stop=stop, until=target - 1)
                outcome["posts"], outcome["deletes"] = store.count(), store.count_deletes()
        except BaseException as exc:
            outcome["error"] = exc

    with ServerThread(create_app(config, ws)) as server, open_writer(ws) as writer:
        thread = threading.Thread(target=consume, name="demo-ingest")
        thread.start()
        try:
            # A rerun after an interruption goes on with the same simulated stream where it stopped.
            events = iter(simulated_platform(ws, ctx.plan))
            for _ in itertools.islice(events, writer.head + 1):
                pass
            while batch := list(itertools.islice(events, min(APPEND_BATCH, target - writer.head - 1))):
                writer.append(batch)
                report(writer.head + 1, target, _ingest_detail(writer.head + 1, outcome))
            while thread.is_alive():
                thread.join(0.25)
                report(writer.head + 1, target, _ingest_detail(writer.head + 1, outcome))
        finally:
            stop.set()
            server.end_streams()
            thread.join()
    if "error" in outcome:
        raise StageFailed(f"the firehose consumer stopped: {outcome['error']}") from outcome["error"]
    summary = {"events": writer.head + 1, "posts": outcome["posts"], "deletes": outcome["deletes"]}
    return summary, (
        f"{summary['events']:,} events through the firehose: {summary['posts']:,} posts "
        f"and {summary['deletes']:,} deletes in the raw store"
    )


def simulated_platform(ws: Workspace, plan: Plan) -> Any:
    """The demo's simulated platform: [simulate] from roost.toml, starting at the plan's time
    unless roost.toml sets a start of its own. The same every time, so a rerun can go on."""
    import datetime as dt

    import msgspec

    from roost.firehose.simulate import SimConfig, Simulator

    config = ws.config("simulate", SimConfig)
    if "start" not in ws.table().get("simulate", {}):
        config = msgspec.structs.replace(config, start=dt.datetime.fromisoformat(plan.sim_start))
    return Simulator(config)


def _ingest_detail(appended: int, outcome: dict[str, Any]) -> str:
    consumer = outcome.get("consumer")
    stored = (consumer.stats.cursor or -1) + 1 if consumer else 0
    return f"{appended:,} appended · {stored:,} streamed into the raw store"


# -- 2. curation --------------------------------------------------------------------------------------
def curate(ctx: Context, report: Report) -> Result:
    from roost.curate.corpus import read_manifest
    from roost.curate.pipeline import curate as run_curate

    def progress(step: str, done: int, total: int) -> None:
        report(done, total, f"{step}: {done}/{total} tasks")

    run_curate(ctx.ws, workers=min(2, os.cpu_count() or 1), progress=progress)
    manifest = read_manifest(ctx.ws.corpus_dir)
    if not manifest:
        raise StageFailed(f"curation wrote no manifest in {ctx.ws.corpus_dir}")
    removed = sum(manifest["removed"].values())
    tokens = manifest["tokens"]
    summary = {"read": manifest["read"], "kept": manifest["posts"], "removed": removed, "tokens": tokens}
    return summary, (
        f"{summary['kept']:,} of {summary['read']:,} posts kept ({removed:,} removed); "
        f"{tokens.get('train', 0):,} training tokens"
    )


# -- 3, 4. training -----------------------------------------------------------------------------------
def pretrain(ctx: Context, report: Report) -> Result:
    seconds = ctx.seconds_for(0)
    return _train(ctx, report, PRETRAIN_RUN, seconds, ["--preset", ctx.plan.preset])


def chat_tune(ctx: Context, report: Report) -> Result:
    seconds = ctx.seconds_for(1)
    return _train(ctx, report, CHAT_RUN, seconds, ["--preset", ctx.plan.preset, "--sft", PRETRAIN_RUN])


def _train(ctx: Context, report: Report, run: str, seconds: float, extra: list[str]) -> Result:
    settings = [f"--set={key}={value}" for key, value in ctx.plan.train.items()]
    metrics = ctx.ws.runs_dir / run / "metrics.jsonl"
    started = time.monotonic()

    def poll() -> None:
        last = _last_step(metrics)
        detail = "starting (building the model, reading the data)"
        if last:
            detail = (
                f"step {last['step']} · loss {last['loss']:.3f} · {last.get('tokens_per_s', 0):,.0f} tok/s"
            )
        report(min(time.monotonic() - started, seconds), seconds, detail)

    args = ["roost.train", "--home", str(ctx.ws.home), "--name", run, *extra, *settings]
    out = run_command(ctx, run, [*args, "--time-budget", f"{seconds:.0f}", "--json"], poll=poll)
    result = json.loads(out.strip().splitlines()[-1])
    summary = {k: result[k] for k in ("step", "loss", "val_loss", "val_bpb", "tokens", "tokens_per_s", "mfu")}
    val = f", validation {result['val_loss']:.3f}" if result.get("val_loss") else ""
    mfu = f", MFU {result['mfu']:.1%}" if result.get("mfu") else ""
    return summary, (
        f"{run}: {result['step']} steps, loss {result['loss']:.3f}{val}, "
        f"{result['tokens_per_s']:,.0f} tokens/s{mfu}"
    )


def _last_step(metrics: Path) -> dict[str, Any] | None:
    """The newest step record of a metrics.jsonl being written (None before the first)."""
    try:
        lines = metrics.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # the line being written
        if "loss" in record:
            return record
    return None


# -- 5. export ----------------------------------------------------------------------------------------
def export(ctx: Context, report: Report) -> Result:
    from roost.export.hf import export_hf
    from roost.train.run import find_run

    report(detail=f"writing {CHAT_RUN} in Hugging Face's Llama layout")
    path = export_hf(find_run(ctx.ws.runs_dir, CHAT_RUN).path, ctx.ws.export_dir / CHAT_RUN)
    files = sorted(p.name for p in Path(path).iterdir())
    return {
        "path": str(path),
        "files": files,
    }, f"{CHAT_RUN} → {path} ({len(files)} files, transformers loads it)"


# -- 6. search ----------------------------------------------------------------------------------------
def index(ctx: Context, report: Report) -> Result:
    """Tune the small search embedder, then index the whole log. Its embeddings are waited for
    (fast: over 2,000 posts a second on two cores); without a tuned embedder (too few posts to
    learn from) the chat model embeds, far slower, so the build does not wait: the server's index
    embeds the rest in the background while it serves."""
    seconds = ctx.seconds_for(2)
    started = time.monotonic()

    def poll_tune() -> None:
        progress = min(time.monotonic() - started, seconds)
        report(progress, seconds, "tuning the search embedder on replies and hashtags")

    batch = str(ctx.plan.embedder_batch)
    tune = ["index", "tune-embedder", "--time-budget", f"{seconds:.0f}", "--batch", batch]
    try:
        tuned = json.loads(run_command(ctx, "embedder", [*_roost(ctx, *tune), "--json"], poll=poll_tune))
        embedder = f"embedder recall@1 {tuned['recall_at_1_before']:.2f} → {tuned['recall_at_1_after']:.2f}"
    except StageFailed as exc:
        reason = str(exc).splitlines()[-1]
        ctx.note(f"[yellow]search embedder not tuned[/] ({reason}); the chat model embeds instead")
        tuned, embedder = None, "the chat model embeds them while the server runs"
    began = time.monotonic()

    def poll_build() -> None:
        report(detail=f"indexing every post ({time.monotonic() - began:.0f} s)")

    build = ["index", "build", "--json", *(["--wait-dense"] if tuned else [])]
    built = json.loads(run_command(ctx, "index", _roost(ctx, *build), poll=poll_build))
    summary = {"posts": built["posts"], "partitions": built["partitions"], "embedder": tuned}
    where = f"{built['posts']:,} posts in {built['partitions']} partition(s)"
    return summary, f"{where}, lexical + dense; {embedder}"


# -- 7. ads -------------------------------------------------------------------------------------------
ADS_CAMPAIGNS = 4  # the first campaigns of the ads simulator's market: running shoes, two football, earbuds


def ads(ctx: Context, report: Report) -> Result:
    """Train the topic model ads target with, add a few campaigns (from the ads simulator's market)
    with copy written by the chat model, and run a simulated day of ad traffic."""
    import msgspec

    from roost.ads.config import AdsConfig
    from roost.ads.simulate import DayConfig, simulate_day
    from roost.ads.store import Store
    from roost.ads.topics import MODEL_NAME, train_topics

    ws, plan = ctx.ws, ctx.plan
    report(detail="training the topic classifier on simulated posts")
    topics = train_topics(plan.topic_posts)
    config = ws.config("ads", AdsConfig)
    with Store.open(ws, config.database, sqlite_synchronous=config.sqlite_synchronous) as store:
        store.save_model(MODEL_NAME, topics.to_bytes(), topics.meta)
    report(detail="adding campaigns and writing their copy with the chat model")
    campaigns, passed, rejected = _seed_campaigns(ws)
    report(detail=f"simulating a day of ad traffic over {plan.ads_posts:,} posts")
    day_config = DayConfig(posts=plan.ads_posts, users=max(200, plan.ads_posts // 2))
    day = msgspec.to_builtins(simulate_day(ws, day_config))
    (ws.home / SIMULATED_DAY).write_text(json.dumps(day) + "\n", encoding="utf-8")
    ctr = day["clicks"] / day["impressions"] if day["impressions"] else 0.0
    summary = {
        "campaigns": campaigns,
        "variants_passed": passed,
        "variants_rejected": rejected,
        "day": {k: day[k] for k in ("requests", "impressions", "clicks", "spent_micros")},
    }
    return summary, (
        f"{campaigns} campaigns, {passed} generated variants passed ({rejected} rejected); a simulated "
        f"day: {day['impressions']:,} impressions, {day['clicks']:,} clicks (CTR {ctr:.1%})"
    )


def _seed_campaigns(ws: Workspace) -> tuple[int, int, int]:
    """(campaigns, variants passed, variants rejected). Campaigns start a day ago, like the
    simulated platform's posts, so that they are live and target its conversations."""
    import datetime as dt

    import msgspec

    from roost.ads.service import AdsService, CreativeRejected
    from roost.ads.simulate import scenario

    service = AdsService.open(ws, index=None)  # copy is written by the newest run: the chat model
    store = service.store
    passed = rejected = 0
    try:
        known = {a.name: a for a in store.advertisers()}
        plans = scenario(dt.datetime.now(dt.UTC) - dt.timedelta(days=1))[:ADS_CAMPAIGNS]
        for plan in plans:
            advertiser = known.get(plan.advertiser) or store.add_advertiser(plan.advertiser)
            if any(c.name == plan.spec.name for c in store.campaigns(advertiser_id=advertiser.id)):
                continue  # added by an interrupted build
            campaign = store.add_campaign(advertiser.id, plan.spec)
            for text in plan.creatives:
                try:  # the market's hand-written copy, with where it leads (every ad must say)
                    service.add_creative(campaign.id, f"{text} {campaign.landing_url}")
                except CreativeRejected:
                    rejected += 1
            brief = {"product": plan.advertiser, "audience": f"people into {plan.topic}", "n": 2}
            result, _ = service.generate(campaign.id, brief, save=True)
            passed += len(result.variants)
            rejected += len(result.rejected)
        return len(store.campaigns()), passed, rejected
    except msgspec.ValidationError as exc:
        raise StageFailed(f"seeding the ads: {exc}") from exc
    finally:
        service.close()
