"""GPU training throughput and MFU of `roost train` on one GPU: the 125M and 1B presets at
sequence 2048, bf16, compiled blocks. Sized to finish in under 5 minutes on one H100.

It runs the real trainer (`roost.train.trainer.Trainer.fit`) on token shards of random ids at each
preset's full vocabulary (the tokens' values do not change the work), without checkpoints or
evaluation, and prints tokens/s and MFU against the card's datasheet peak. `--tiny` runs the same
path on the tiny preset on whatever device is present (the CPU), to check that the script works.

    python benchmarks/gpu_train.py                 # 125m and 1b on cuda:0
    python benchmarks/gpu_train.py --tiny          # a smoke run anywhere
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from roost.curate.shards import ShardWriter, token_dtype, write_index
from roost.model.config import preset
from roost.tokenizer import END_OF_POST, save_tokenizer, special_id, train_tokenizer
from roost.train.config import TrainConfig
from roost.train.trainer import Trainer
from roost.workspace import Workspace

# (preset, micro-batch, global batch, steps): the micro-batches fit an 80 GB card with room to
# spare (1B: a 128K vocabulary makes the logits alone ~4 GB per 16K tokens).
RUNS = {"125m": (16, 32, 15), "1b": (4, 16, 12)}


def synthetic_workspace(home: Path, vocab_size: int, tokens: int, seed: int = 0) -> Workspace:
    """Shards of random ids below `vocab_size`, and a small tokenizer (only evaluation reads it)."""
    ws = Workspace(home).ensure()
    tokenizer = train_tokenizer([f"post number {i} about things" for i in range(200)], vocab_size=300)
    save_tokenizer(tokenizer, ws.tokenizer_dir)
    dtype = token_dtype(vocab_size)
    rng = np.random.default_rng(seed)
    writer = ShardWriter(ws.shards_dir, "train-00000", dtype, special_id(tokenizer, END_OF_POST))
    for i in range(0, tokens, 4096):
        writer.add(f"r{i}", rng.integers(0, vocab_size, 4095).tolist())
    index = {"dtype": dtype.name, "vocab_size": vocab_size, "eot_id": special_id(tokenizer, END_OF_POST)}
    write_index(ws.shards_dir, {**index, "splits": {"train": [writer.close()]}})
    return ws


def measure(name: str, seq_len: int, micro: int, global_batch: int, steps: int, compile_: bool) -> dict:
    vocab = preset(name).vocab_size
    with tempfile.TemporaryDirectory() as tmp:
        ws = synthetic_workspace(Path(tmp) / "home", vocab, tokens=(steps + 2) * global_batch * (seq_len + 1))
        config = TrainConfig(
            preset=name,
            seq_len=seq_len,
            micro_batch=micro,
            global_batch=global_batch,
            max_steps=steps,
            warmup_steps=2,
            dtype="bfloat16",
            compile=compile_,
            eval_every=0,
            keep_checkpoints=0,
            log_every=max(1, steps // 3),
        )
        started = time.perf_counter()
        trainer = Trainer(ws, config, name)
        result = trainer.fit()
        memory = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")
        return {
            "preset": name,
            "params_m": round(trainer.model_config.num_params() / 1e6, 1),
            "seq_len": seq_len,
            "tokens_per_step": global_batch * seq_len,
            "tokens_per_s": result.tokens_per_s,
            "mfu": result.mfu,
            "peak_memory_gib": round(memory, 1),
            "wall_s": round(time.perf_counter() - started, 1),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(RUNS))
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--tiny", action="store_true", help="tiny preset, seq 64, 3 steps: a smoke run")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU (no CUDA device)"
    print(f"device: {device}; torch {torch.__version__}", flush=True)
    if not torch.cuda.is_available() and not args.tiny:
        print("no CUDA device: run with --tiny for a smoke run on the CPU", file=sys.stderr)
        return 2
    plan = {"tiny": (2, 4, 3)} if args.tiny else {p: RUNS[p] for p in args.presets}
    seq_len = 64 if args.tiny else args.seq_len
    results = []
    for name, (micro, global_batch, steps) in plan.items():
        row = measure(name, seq_len, micro, global_batch, steps, compile_=not args.no_compile)
        results.append(row)
        mfu = f"{row['mfu']:.1%}" if row["mfu"] is not None else "n/a"
        print(
            f"{name}: {row['params_m']}M params, seq {seq_len}: {row['tokens_per_s']:,.0f} tok/s, MFU {mfu}, "
            f"peak memory {row['peak_memory_gib']} GiB, {row['wall_s']} s",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps({"device": device, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
