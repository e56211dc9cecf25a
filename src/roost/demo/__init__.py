"""`roost demo`: the whole system in one command, on one machine, from nothing.

It builds a workspace stage by stage within a time budget (the simulated platform streamed through
the firehose into the raw store, curation, pretraining, chat tuning, export, the search index, the
ads), then serves every stage and the web UI from one server and prints the URL with a key.

Each finished stage leaves a done-marker (`<home>/demo/<stage>.json`, its summary), so a rerun
reuses it and goes on with the first unfinished one; an interrupted stage resumes where it stopped,
since every stage underneath is resumable. The plan (how many posts, which model) is fixed by the
first run and kept in `<home>/demo/plan.json`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from roost.demo import stages
from roost.demo.display import StageDisplay
from roost.demo.plan import DEFAULT_BUDGET_S, Plan, plan_for
from roost.workspace import Workspace


@dataclass(frozen=True)
class Stage:
    name: str
    what: str  # what it is doing, while it runs
    run: Callable[[stages.Context, Any], stages.Result]


STAGES = (
    Stage("firehose", "simulating the platform and streaming it through the firehose", stages.stream),
    Stage("curate", "cleaning, deduplicating and tokenizing the posts", stages.curate),
    Stage("train", "pretraining the model on the posts", stages.pretrain),
    Stage("chat", "tuning it for conversation on reply threads", stages.chat_tune),
    Stage("export", "exporting it for transformers", stages.export),
    Stage("search", "tuning the embedder and indexing every post", stages.index),
    Stage("ads", "campaigns, copy from the model, a simulated day of ad traffic", stages.ads),
)


def demo_dir(ws: Workspace) -> Path:
    return ws.home / "demo"


def load_plan(ws: Workspace, budget_s: float) -> Plan:
    """The plan of this workspace's demo: the first run's, or a new one for `budget_s`."""
    path = demo_dir(ws) / "plan.json"
    if path.exists():
        return Plan(**json.loads(path.read_text(encoding="utf-8")))
    from roost.firehose.simulate import SimConfig

    plan = plan_for(budget_s, posts_per_day=ws.config("simulate", SimConfig).posts_per_day)
    _write_json(path, dataclasses.asdict(plan))
    return plan


def build(ws: Workspace, budget_s: float, console: Console) -> dict[str, dict[str, Any]]:
    """Run every stage not done yet, within `budget_s` seconds; return each stage's summary."""
    plan = load_plan(ws, budget_s)
    summaries: dict[str, dict[str, Any]] = {}
    with StageDisplay(console, [(s.name, s.name) for s in STAGES]) as display:
        ctx = stages.Context(ws, plan, time.monotonic() + budget_s, display.note)
        for stage in STAGES:
            marker = demo_dir(ws) / f"{stage.name}.json"
            if marker.exists():
                record = json.loads(marker.read_text(encoding="utf-8"))
                display.reused(stage.name, record["line"])
                summaries[stage.name] = record["summary"]
                continue
            started = time.monotonic()
            with display.stage(stage.name, stage.what) as report:
                summary, line = stage.run(ctx, report)
            seconds = time.monotonic() - started
            _write_json(
                marker,
                {
                    "summary": summary,
                    "line": line,
                    "seconds": round(seconds, 1),
                    "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                },
            )
            display.done(stage.name, line, seconds)
            summaries[stage.name] = summary
    return summaries


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def check_port(host: str, port: int) -> None:
    """Fail now, not after the build, when the port is taken."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise OSError(
                f"cannot listen on {host}:{port} ({exc.strerror}); choose another with --port"
            ) from None


def serve(ws: Workspace, *, host: str, port: int, live_rate: float, console: Console) -> None:
    """Serve the demo until Ctrl-C or SIGTERM: the app, the platform still posting at `live_rate`
    events/s, and the firehose consumers reading from the server."""
    from roost.app import create_app
    from roost.app import serve as run_server
    from roost.demo.serving import PARTNERS, RAW_STORE, live_consumer, live_feed, person_keys, stop_on_sigterm

    api_key, admin_key = person_keys(ws)
    export = ws.export_dir / stages.CHAT_RUN
    console.print("[dim]loading the model and the search index…[/]")
    app = create_app(ws, model=str(export) if (export / "config.json").exists() else "")
    local = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"
    stop = threading.Event()

    def note(text: str) -> None:
        console.print(text, highlight=False)

    plan = load_plan(ws, DEFAULT_BUDGET_S)
    feed = threading.Thread(target=live_feed, args=(ws, plan, live_rate, stop, note), name="demo-platform")
    threads = [feed]
    threads += [
        threading.Thread(target=live_consumer, args=(ws, local, spec, stop, note), name=f"demo-{spec.name}")
        for spec in (RAW_STORE, *PARTNERS)
    ]
    _welcome(console, local, api_key, admin_key, live_rate)
    with stop_on_sigterm():
        for thread in threads:
            thread.start()
        try:
            run_server(app, host=host, port=port)
        except KeyboardInterrupt:
            pass  # uvicorn shut down gracefully, then re-raised the signal it caught
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
    console.print("roost demo stopped. `roost demo` starts it again (the built stages are kept).")


def _welcome(console: Console, url: str, api_key: str, admin_key: str, live_rate: float) -> None:
    link = f"{url}/#key={api_key}&admin={admin_key}"
    console.print()
    console.print(
        "[bold green]roost is running.[/] Open the web UI (the keys ride in the link's #fragment, "
        "which never reaches a server log):",
        highlight=False,
    )
    console.print(f"  {link}", soft_wrap=True, highlight=False, markup=False)
    console.print(
        f"  API key (search, chat, ads, /v1):  {api_key}", soft_wrap=True, highlight=False, markup=False
    )
    console.print(
        f"  firehose admin key:                {admin_key}", soft_wrap=True, highlight=False, markup=False
    )
    console.print(
        f"  OpenAI-compatible API at {url}/v1, e.g.  roost chat --url {url} --api-key {api_key}",
        soft_wrap=True,
        highlight=False,
        markup=False,
    )
    console.print(
        f"[dim]The simulated platform keeps posting ({live_rate:g} events/s); these keys are new "
        "each run and the previous run's are revoked. Ctrl-C stops.[/]",
        highlight=False,
    )
