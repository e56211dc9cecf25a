"""Model quality on a CPU budget: simulate the platform, curate it, train the ~20M preset for ten
minutes, and compare bits per byte on held-out posts with `zstd -19` using a dictionary trained on
the training posts; then bits per byte on the real posts in ../shared, and a short conversation
tuning run on the simulated reply threads.

Every stage is the real one: `roost.firehose.simulate` → raw store → `roost.curate.pipeline.curate`
(corpus, tokenizer, shards with a held-out split) → `roost.train.trainer` → `roost.train.evaluate`.
zstd sees exactly the texts the model is scored on (curated, one post per line), compressed two
ways: each post alone with the dictionary (what the model does: no other post as context) and all
held-out posts as one stream with it (zstd's best case).

    python -m benchmarks.train_quality [--minutes 10] [--events 100000] [--home DIR]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import torch
import zstandard

from roost.curate.pipeline import curate
from roost.firehose.simulate import SimConfig, simulate
from roost.rawstore import RawStore
from roost.tokenizer import load_tokenizer
from roost.train.checkpoint import load_model
from roost.train.config import TrainConfig
from roost.train.evaluate import evaluate_texts, read_texts
from roost.train.trainer import Trainer, train
from roost.workspace import Workspace

REAL_POSTS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real_posts" / "posts.jsonl"
DICTIONARY_BYTES = 112_640  # zstd --train's default --maxdict


def build_corpus(ws: Workspace, events: int, seed: int) -> dict:
    started = time.perf_counter()
    with RawStore.in_dir(ws.raw_dir) as store:
        store.apply(itertools.islice(simulate(SimConfig(seed=seed)), events))
    result = curate(ws)
    return {
        "events": events,
        "kept": result.kept,
        "tokens": result.tokens,
        "seconds": time.perf_counter() - started,
    }


def corpus_texts(ws: Workspace) -> tuple[list[str], list[str]]:
    """(training posts, held-out posts) as curation split them."""
    train_texts, held_out = [], []
    for path in sorted(ws.corpus_dir.glob("part-*.parquet")):
        table = pq.read_table(path, columns=["text", "split"])
        for text, split in zip(
            table.column("text").to_pylist(), table.column("split").to_pylist(), strict=True
        ):
            (held_out if split == "val" else train_texts).append(text)
    return train_texts, held_out


def zstd_bits_per_byte(train_texts: list[str], texts: list[str]) -> dict[str, float]:
    samples = [t.encode("utf-8") + b"\n" for t in train_texts]
    dictionary = zstandard.train_dictionary(DICTIONARY_BYTES, samples, level=19)
    raw = sum(len(t.encode("utf-8")) + 1 for t in texts)
    alone = zstandard.ZstdCompressor(
        level=19, dict_data=dictionary, write_checksum=False, write_content_size=False, write_dict_id=False
    )
    per_post = sum(len(alone.compress(t.encode("utf-8") + b"\n")) for t in texts)
    stream = zstandard.ZstdCompressor(level=19, dict_data=dictionary).compress(
        "".join(t + "\n" for t in texts).encode("utf-8")
    )
    plain = zstandard.ZstdCompressor(level=19).compress("".join(t + "\n" for t in texts).encode("utf-8"))
    return {
        "zstd_per_post": 8 * per_post / raw,
        "zstd_stream": 8 * len(stream) / raw,
        "zstd_stream_no_dict": 8 * len(plain) / raw,
    }


def base_config(**changes: object) -> TrainConfig:
    settings = dict(
        preset="20m",
        seq_len=256,
        micro_batch=8,
        global_batch=16,
        lr=2e-3,
        warmup_steps=20,
        dtype="bfloat16",
        compile=True,
        eval_every=50,
        eval_sequences=64,
        checkpoint_every=50,
        keep_checkpoints=1,
        log_every=10,
    )
    return TrainConfig(**{**settings, **changes})


def steps_for(ws: Workspace, budget_s: float) -> tuple[int, float]:
    """How many steps fit in the budget, from a few timed steps (after compilation)."""
    trainer = Trainer(ws, base_config(max_steps=10**6), "calibration")
    trainer.train_step(trainer.loader.next_step())
    started = time.perf_counter()
    for _ in range(3):
        trainer.train_step(trainer.loader.next_step())
    step_s = (time.perf_counter() - started) / 3
    return max(20, int(budget_s / step_s)), step_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--real-posts", type=int, default=5000, help="how many real posts to score")
    parser.add_argument("--sft-minutes", type=float, default=2.0)
    parser.add_argument("--home", type=Path, help="keep the workspace here (default: a temporary one)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(args.home or Path(tmp) / "home").ensure()
        if not (ws.shards_dir / "index.json").exists():
            built = build_corpus(ws, args.events, args.seed)
            print(
                f"corpus: {built['events']:,} simulated events → {built['kept']:,} curated posts, "
                f"{built['tokens']} tokens, in {built['seconds']:.0f} s",
                flush=True,
            )
        started = time.perf_counter()
        steps, step_s = steps_for(ws, args.minutes * 60)
        print(
            f"calibration ({time.perf_counter() - started:.0f} s with compilation): {step_s:.2f} s/step → "
            f"{steps} steps for {args.minutes:g} minutes",
            flush=True,
        )
        result = train(ws, base_config(max_steps=steps, time_budget_s=args.minutes * 60 * 1.15), "quality")
        print(
            f"trained: step {result.step} ({result.stopped}), {result.tokens:,} tokens, "
            f"{result.tokens_per_s:,.0f} tok/s, {result.seconds:.0f} s, val loss {result.val_loss:.3f}",
            flush=True,
        )

        model, config = load_model(ws.runs_dir / "quality")
        tokenizer = load_tokenizer(ws.runs_dir / "quality" / "tokenizer")
        train_texts, held_out = corpus_texts(ws)
        ours = evaluate_texts(model, tokenizer, held_out, seq_len=config.max_seq_len, batch_size=32)
        zstd = zstd_bits_per_byte(train_texts, held_out)
        print(f"held-out simulated posts ({len(held_out):,} posts, {ours.bytes:,} bytes):")
        print(f"  {'roost 20m':20s} {ours.bpb:.3f} bits/byte")
        for name, value in zstd.items():
            change = 100 * (1 - ours.bpb / value)
            word = "lower" if change > 0 else "higher"
            print(f"  {name:20s} {value:.3f} bits/byte  (roost {abs(change):.0f}% {word})")
        report = {"steps": result.step, "tokens": result.tokens, "held_out_bpb": ours.bpb, **zstd}

        if REAL_POSTS.exists():
            real = read_texts(REAL_POSTS, limit=args.real_posts)
            scored = evaluate_texts(model, tokenizer, real, seq_len=config.max_seq_len, batch_size=32)
            real_zstd = zstd_bits_per_byte(train_texts, real)
            print(
                f"real posts ({len(real):,} from ../shared): roost {scored.bpb:.3f} bits/byte; "
                f"zstd -19 per post with the simulated-posts dictionary {real_zstd['zstd_per_post']:.3f}, "
                f"as one stream {real_zstd['zstd_stream']:.3f}"
            )
            report.update(real_bpb=scored.bpb, real_zstd_per_post=real_zstd["zstd_per_post"])

        if args.sft_minutes > 0:
            sft = train(
                ws,
                base_config(
                    objective="sft",
                    init_from="quality",
                    lr=3e-4,
                    max_steps=10**6,
                    time_budget_s=args.sft_minutes * 60,
                    eval_every=20,
                    warmup_steps=5,
                    schedule="constant",
                ),
                "chat",
            )
            before = Trainer(ws, base_config(objective="sft", init_from="quality"), "chat-before").evaluate()
            print(
                f"conversation tuning: {sft.step} steps on the simulated reply threads; loss on held-out "
                f"replies {before.loss:.3f} → {sft.val_loss:.3f} nats/token"
            )
            report.update(sft_before=before.loss, sft_after=sft.val_loss)
        print(
            json.dumps(
                {
                    k: round(v, 4) if isinstance(v, float) and math.isfinite(v) else v
                    for k, v in report.items()
                }
            )
        )


if __name__ == "__main__":
    main()
