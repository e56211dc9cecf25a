"""Simulator throughput, next to the generator a user would write by hand, in the same run.

Measures posts/s for generating Events only, and for generating and writing JSON lines, for
roost's simulator and for a naive baseline: a loop that fills a dozen templates with
`random.choice`, builds dicts and writes them with `json.dumps`; then roost writing JSON lines from
`--workers` processes (as many shards). It also prints how varied the text is (distinct posts,
distinct word trigrams), which is what the simulator's extra work buys.

    python -m benchmarks.bench_simulate [--posts 200000] [--workers 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import random
import resource
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from roost.firehose.sim_output import write_events, write_lines
from roost.firehose.sim_parallel import parallel_lines
from roost.firehose.simulate import SimConfig, Simulator

# -- the baseline a user would write ------------------------------------------------------------

NAIVE_TEMPLATES = [
    "I love {thing}! #{tag}",
    "{thing} is overrated, change my mind",
    "Just tried {thing}, pretty good",
    "Anyone else think {thing} is amazing? #{tag}",
    "Can't believe {thing} happened today",
    "What do you think about {thing}?",
    "{thing} is the best thing ever #{tag}",
    "Not a fan of {thing} tbh",
    "Check out {thing} https://example.com/{n}",
    "Hot take: {thing} is mid",
    "@{user} have you seen {thing}?",
    "Good morning! {thing} time #{tag}",
]
NAIVE_THINGS = ["the new phone", "pizza", "the game last night", "this album", "remote work", "the weather",
                "coffee", "the finale", "my cat", "the election", "crypto", "running"]  # fmt: skip
NAIVE_TAGS = ["tech", "food", "music", "sports", "news", "life", "mood", "fun"]


def naive_posts() -> Iterator[dict]:
    rng = random.Random(1)
    users = [f"user{i}" for i in range(20_000)]
    start = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    for i in itertools.count():
        template = rng.choice(NAIVE_TEMPLATES)
        text = template.format(
            thing=rng.choice(NAIVE_THINGS), tag=rng.choice(NAIVE_TAGS), n=i, user=rng.choice(users)
        )
        yield {
            "id": str(1_000_000 + i),
            "text": text,
            "author_id": rng.choice(users),
            "created_at": (start + dt.timedelta(seconds=i * 1.7)).isoformat(),
            "lang": "en",
            "hashtags": [w[1:] for w in text.split() if w.startswith("#")],
            "likes": rng.randint(0, 100),
        }


# -- measuring -----------------------------------------------------------------------------------


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def children_cpu() -> float:
    """CPU seconds of this process's finished child processes (the workers, once joined)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def roost_generate(simulator: Simulator, n: int, texts: list[str]) -> None:
    """Consume n posts (and the deletes between them), keeping only the texts (not GC-tracked)."""
    for event in simulator:
        if event.post is not None:
            if event.post.repost_of is None:
                texts.append(event.post.text)
            n -= 1
            if n == 0:
                return


def text_variety(texts: list[str]) -> tuple[float, int]:
    """Share of distinct texts, and the number of distinct word trigrams."""
    trigrams = set()
    for text in texts:
        words = text.split()
        trigrams.update(zip(words, words[1:], words[2:], strict=False))
    return len(set(texts)) / len(texts), len(trigrams)


def loop_ns() -> float:
    """How fast this machine runs plain Python right now (ns per loop iteration), for context."""
    start = time.perf_counter()
    x = 0
    for i in range(2_000_000):
        x += i
    return (time.perf_counter() - start) / 2_000_000 * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    n, workers = args.posts, args.workers

    simulators: list[Simulator] = []
    build_wall, _ = timed(lambda: simulators.append(Simulator(SimConfig())))
    roost_texts: list[str] = []
    gen_wall, gen_cpu = timed(lambda: roost_generate(simulators[0], n, roost_texts))
    naive_texts: list[str] = []
    naive_wall, naive_cpu = timed(
        lambda: naive_texts.extend(p["text"] for p in itertools.islice(naive_posts(), n))
    )

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sim.jsonl"
        report = None

        fresh = Simulator(SimConfig())  # built outside the timing, as the one above was

        def roost_write() -> None:
            nonlocal report
            report = write_events(fresh, out, n)

        write_wall, write_cpu = timed(roost_write)
        roost_bytes = out.stat().st_size
        naive_out = Path(tmp) / "naive.jsonl"

        def naive_write() -> None:
            with open(naive_out, "w") as fh:
                for post in itertools.islice(naive_posts(), n):
                    fh.write(json.dumps(post) + "\n")

        naive_write_wall, naive_write_cpu = timed(naive_write)
        naive_bytes = naive_out.stat().st_size

        sharded = Simulator(SimConfig(shards=workers))
        before = children_cpu()
        parallel_wall, parallel_cpu = timed(lambda: write_lines(parallel_lines(sharded, workers), out, n))
        workers_cpu = children_cpu() - before

    roost_distinct, roost_trigrams = text_variety(roost_texts)
    naive_distinct, naive_trigrams = text_variety(naive_texts)

    def rate(count: int, seconds: float) -> str:
        return f"{count / seconds / 1000:,.0f}k"

    print(f"machine: {os.cpu_count()} CPUs, plain-Python loop at {loop_ns():.0f} ns/iteration right now")
    print("(ratios use CPU time, which other processes on a shared machine disturb less than wall time)")
    print(f"world build (20,000 users, 4 grammars): {build_wall:.2f} s")
    print(
        f"generate only:    roost {rate(n, gen_wall)} posts/s (cpu {rate(n, gen_cpu)}) vs naive templates "
        f"{rate(n, naive_wall)} posts/s (cpu {rate(n, naive_cpu)})  "
        f"(roost at {naive_cpu / gen_cpu:.2f}x its speed)"
    )
    print(
        f"generate + JSONL: roost {rate(n, write_wall)} posts/s (cpu {rate(n, write_cpu)}) [msgspec] "
        "vs naive "
        f"{rate(n, naive_write_wall)} posts/s (cpu {rate(n, naive_write_cpu)}) [json.dumps]  "
        f"(roost at {naive_write_cpu / write_cpu:.2f}x its speed)"
    )
    # With a core each, the busiest process sets the pace: the parent merging and writing, or a worker.
    capacity = n / max(parallel_cpu, workers_cpu / workers)
    print(
        f"generate + JSONL, {workers} workers ({workers} shards): roost {rate(n, parallel_wall)} posts/s "
        "wall "
        f"(cpu: {capacity / 1000:,.0f}k with a core per process; parent {parallel_cpu:.2f} s, workers "
        f"{workers_cpu:.2f} s)  vs naive {rate(n, naive_write_wall)}  (goal: 100k posts/s)"
    )
    print(
        f"  {roost_bytes / n:.0f} vs {naive_bytes / n:.0f} bytes per post; "
        f"roost's file also holds {report.deletes:,} delete events"
    )
    print(
        f"text variety:     roost {roost_distinct:.1%} distinct posts, {roost_trigrams:,} distinct word "
        f"trigrams vs naive {naive_distinct:.1%}, {naive_trigrams:,}"
    )


if __name__ == "__main__":
    main()
