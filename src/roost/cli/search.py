"""`roost search QUERY` and `roost index build|follow|serve|status|tune-embedder|suggest|trending`:
thin commands over roost.search."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import typer

from roost.cli.common import JsonOption, console, emit, fail, option_time, workspace

index_app = typer.Typer(
    help="The search index: build it, follow the firehose, serve /search.", no_args_is_help=True
)


def search_command(
    ctx: typer.Context,
    query: str = typer.Argument("", help='Words, "phrases", #tags, -excluded words.'),
    sort: str = typer.Option("top", "--sort", help="top (relevance, recency, engagement) or latest."),
    mode: str = typer.Option("hybrid", "--mode", help="hybrid, lexical or dense."),
    limit: int = typer.Option(10, "--limit", "-n", help="How many posts."),
    lang: str | None = typer.Option(None, "--lang", help="Only posts in this language (ISO 639-1)."),
    author: str | None = typer.Option(None, "--author", help="Only posts by this author id."),
    hashtag: str | None = typer.Option(None, "--hashtag", help="Only posts with this hashtag."),
    since: str | None = typer.Option(None, "--since", help="Only posts created at or after (ISO-8601)."),
    until: str | None = typer.Option(None, "--until", help="Only posts created before (ISO-8601)."),
    links: bool | None = typer.Option(None, "--links/--no-links", help="Only posts with (or without) links."),
    answer: bool = typer.Option(False, "--answer", help="Summarise what people say, citing posts."),
    as_json: bool = JsonOption,
) -> None:
    """Search the index (read-only: works next to a running `roost index follow`)."""
    import msgspec

    from roost.search.answer import Answerer
    from roost.search.index import SearchIndex
    from roost.search.query import Filters, SearchRequest
    from roost.search.retrieve import Retriever
    from roost.search.server import load_generator

    ws = workspace(ctx)
    try:
        filters = Filters(
            since=option_time(since, "since"),
            until=option_time(until, "until"),
            lang=lang,
            author=author,
            hashtag=hashtag,
            has_links=links,
        )
        request = msgspec.convert({"query": query, "sort": sort, "mode": mode, "limit": limit}, SearchRequest)
        request.filters = filters
        index = SearchIndex.open(ws, readonly=True)
    except (msgspec.ValidationError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    try:
        if answer:
            generator = load_generator(ws, index.config.generator)
            result: Any = Answerer(Retriever(index, generator), generator).answer(query, filters)
            emit(result, as_json, _render_answer)
        else:
            emit(Retriever(index).search(request), as_json, _render_hits)
    except ValueError as exc:
        fail(str(exc))
    finally:
        index.close()


def _render_hits(response: Any) -> None:
    for rank, hit in enumerate(response.hits, start=1):
        post = hit.post
        sides = "".join(s for s, r in (("L", hit.lexical_rank), ("D", hit.dense_rank)) if r is not None)
        console.print(
            f"[bold]{rank:>3}[/] [dim]{post.created_at:%Y-%m-%d %H:%M} @{post.author_id} {post.lang or '-'} "
            f"{sides} {hit.score:.3f} ♥{post.metrics.likes}[/]  {post.id}",
            highlight=False,
        )
        console.print("     " + " ".join(post.text.split()), markup=False, highlight=False)
    console.print(f"[dim]{len(response.hits)} posts in {response.took_ms:.1f} ms[/]")


def _render_answer(result: Any) -> None:
    if result.abstained:
        console.print(f"[yellow]no answer:[/] {result.reason}")
        return
    console.print(result.text, markup=False, highlight=False)


@index_app.command("build")
def build_command(
    ctx: typer.Context,
    workers: int | None = typer.Option(
        None, "--workers", help="Processes writing partitions ([search] build_workers)."
    ),
    wait_dense: bool = typer.Option(False, "--wait-dense", help="Also wait until every post is embedded."),
    as_json: bool = JsonOption,
) -> None:
    """Index the workspace's firehose log from the index's cursor to the log's head."""
    from roost.search.follow import build
    from roost.search.index import SearchIndex

    ws = workspace(ctx)
    if not ws.firehose_dir.exists():
        fail(f"no firehose log in {ws.firehose_dir}: `roost simulate` or `roost firehose` writes one")
    with SearchIndex.open(ws) as index:
        report = build(index, ws.firehose_dir, workers=workers, wait_dense=wait_dense)
    result = {**report.__dict__, "posts_per_s": report.posts_per_s}
    emit(
        result,
        as_json,
        lambda r: console.print(
            f"indexed {r['posts']:,} posts ({r['deletes']:,} deletes) into {r['partitions']} partitions "
            f"in {r['lexical_seconds']:.1f} s ({r['posts_per_s']:,.0f} posts/s); cursor {r['cursor']}"
        ),
    )


@index_app.command("follow")
def follow_command(
    ctx: typer.Context,
    url: str | None = typer.Option(
        None, "--url", help="A firehose server to follow (default: the local log)."
    ),
    key: str | None = typer.Option(
        None, "--key", envvar="ROOST_FIREHOSE_KEY", help="Consumer key for --url."
    ),
) -> None:
    """Keep the index up to date with the firehose until interrupted (Ctrl-C)."""
    import signal
    import threading

    from roost.search.follow import follow_log, follow_stream
    from roost.search.index import SearchIndex

    ws = workspace(ctx)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with SearchIndex.open(ws) as index:
        if url:
            stats = follow_stream(index, url, key or "", stop=stop)
        else:
            stats = follow_log(index, ws.firehose_dir, stop=stop)
    console.print(f"applied {stats.events:,} events in {stats.batches:,} batches; cursor {stats.last_seq}")


@index_app.command("serve")
def serve_command(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8100, "--port", help="Port to listen on."),
    url: str | None = typer.Option(
        None, "--url", help="A firehose server to follow (default: the local log)."
    ),
    key: str | None = typer.Option(
        None, "--key", envvar="ROOST_FIREHOSE_KEY", help="Consumer key for --url."
    ),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error."),
) -> None:
    """Follow the firehose and serve /search (Bearer keys from `roost keys add`)."""
    from roost.search.server import serve
    from roost.workspace import ConfigError

    try:
        serve(workspace(ctx), host=host, port=port, url=url, key=key, log_level=log_level)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))


@index_app.command("status")
def status_command(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Partitions, posts, the cursor and how far the vector index got."""
    import json

    from roost.search.follow import DEFAULT_NAME
    from roost.search.store import IndexStore

    ws = workspace(ctx)
    path = ws.index_dir / "index.db"
    if not path.exists():
        fail(f"no search index in {ws.index_dir}: run `roost index build`")
    store = IndexStore(path, readonly=True)
    parts = []
    for p in store.partitions():
        meta = ws.index_dir / f"p{p.part:05d}" / "vectors.json"
        vectors = json.loads(meta.read_text()) if meta.exists() else None
        parts.append({**p.__dict__, "vectors_watermark": vectors["watermark"] if vectors else None})
    result = {
        "cursor": store.cursor(DEFAULT_NAME),
        "posts": sum(p["posts"] for p in parts),
        "partitions": parts,
    }
    emit(
        result,
        as_json,
        lambda r: console.print(
            f"{r['posts']:,} posts in {len(r['partitions'])} partitions; cursor {r['cursor']}"
        ),
    )


@index_app.command("suggest")
def suggest_command(
    ctx: typer.Context,
    prefix: str = typer.Argument(..., help="What was typed so far."),
    as_json: bool = JsonOption,
) -> None:
    """Query suggestions: popular past queries, hashtags, the model's continuations."""
    from roost.search.index import SearchIndex
    from roost.search.retrieve import Retriever
    from roost.search.server import load_generator

    ws = workspace(ctx)
    with SearchIndex.open(ws, readonly=True, embedder=None) as index:
        generator = load_generator(ws, index.config.generator)
        suggestions = Retriever(index, generator).suggest(prefix)
    emit(suggestions, as_json, lambda items: [console.print(f"{s.text}  [dim]{s.source}[/]") for s in items])


@index_app.command("trending")
def trending_command(
    ctx: typer.Context,
    window: int = typer.Option(60, "--window", help="Minutes up to the newest post."),
    limit: int = typer.Option(10, "--limit", "-n"),
    as_json: bool = JsonOption,
) -> None:
    """Hashtags used more in the window than in the day before it."""
    from roost.search.index import SearchIndex
    from roost.search.retrieve import Retriever

    ws = workspace(ctx)
    with SearchIndex.open(ws, readonly=True, embedder=None) as index:
        trends = Retriever(index).trending(dt.timedelta(minutes=window), limit=limit)
    emit(
        trends,
        as_json,
        lambda items: [
            console.print(f"#{t.hashtag}  {t.count} posts (expected {t.expected:.1f}), score {t.score:.1f}")
            for t in items
        ],
    )


@index_app.command("tune-embedder")
def tune_command(
    ctx: typer.Context,
    posts: Path | None = typer.Option(
        None, "--posts", help="JSONL of posts/events or Parquet (default: the workspace's)."
    ),
    base: str | None = typer.Option(
        None, "--base", help="Run or export to start from (default: a small model from scratch)."
    ),
    layers: int = typer.Option(
        0, "--layers", help="Keep only the base model's first N layers (faster embeddings)."
    ),
    steps: int = typer.Option(1500, "--steps"),
    batch: int = typer.Option(128, "--batch"),
    lr: float | None = typer.Option(None, "--lr", help="Default 5e-4 from scratch, 1e-4 from a base."),
    time_budget: float = typer.Option(
        0.0, "--time-budget", help="Stop after this many seconds (0: no limit)."
    ),
    max_posts: int = typer.Option(200_000, "--max-posts", help="Read at most this many posts."),
    as_json: bool = JsonOption,
) -> None:
    """Tune the in-house model into the search embedder (contrastive: replies and shared hashtags
    are the positive pairs); saved to <index>/embedder, which [search] embedder = "auto" uses."""
    import itertools

    import torch

    from roost.search.embedder import TUNED_DIR
    from roost.search.tune import (
        TuneConfig,
        cooccurrence_init,
        make_pairs,
        save_embedder,
        small_model,
        tokenizer_for,
        truncate_layers,
        tune,
        workspace_posts,
    )

    ws = workspace(ctx)
    torch.manual_seed(0)
    corpus = list(itertools.islice(workspace_posts(ws, posts), max_posts))
    if not corpus:
        fail("no posts to tune on: give --posts, or fill the workspace (roost simulate / import / curate)")
    if base:
        from roost.serve.loader import load_served_model

        served = load_served_model(ws, base, device="cpu", dtype="float32")
        model, tokenizer = truncate_layers(served.model, layers), served.tokenizer
    else:
        from roost.tokenizer import load_tokenizer

        tokenizer = (
            load_tokenizer(ws.tokenizer_dir)
            if (ws.tokenizer_dir / "tokenizer.json").exists()
            else tokenizer_for([p.text for p in corpus])
        )
        model = small_model(tokenizer)
        cooccurrence_init(model, tokenizer, [p.text for p in corpus])
    config = TuneConfig(
        steps=steps, batch=batch, lr=lr or (1e-4 if base else 5e-4), time_budget_s=time_budget
    )
    try:
        report = tune(model, tokenizer, make_pairs(corpus), config)
    except ValueError as exc:
        fail(str(exc))
    out = save_embedder(model, tokenizer, ws.index_dir / TUNED_DIR, steps=report.steps)
    emit(
        {**report.__dict__, "saved": str(out)},
        as_json,
        lambda r: console.print(
            f"tuned {r['steps']} steps in {r['seconds']:.0f} s on {sum(r['pairs'].values()):,} pairs; "
            "held-out recall@1 "
            f"{r['recall_at_1_before']:.3f} -> {r['recall_at_1_after']:.3f}; saved {r['saved']}"
        ),
    )
