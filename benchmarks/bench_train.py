"""CPU training throughput: `roost train`'s step next to a plain loop over transformers'
LlamaForCausalLM, at the same shape, data, optimizer, schedule and batch, interleaved in one run.

roost's step is the trainer's own (`Trainer.train_step`: bf16 autocast on AMX, compiled blocks,
fused AdamW, clipping). The plain loop is what a user writes first: fp32, `torch.optim.AdamW`,
`clip_grad_norm_`. A third row gives that loop bf16 autocast, to show what dtype alone buys.
Each round runs every contestant for `--steps` steps in turn. Each step is timed twice: by the
wall clock and by the CPU time the process used. On a machine shared with other jobs the wall
clock counts the time other processes held the cores; CPU time does not, so tokens per CPU-second
(median) is the figure that holds still there, and the wall-clock figures (best and median step)
are shown beside it. `--threads 1` keeps spinning OpenMP threads from burning CPU time while they
wait for a core.

    python -m benchmarks.bench_train [--preset 20m] [--seq-len 256] [--batch 8] [--rounds 5]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from roost.curate.shards import ShardWriter, token_dtype, write_index
from roost.export.hf import hf_config
from roost.tokenizer import END_OF_POST, save_tokenizer, special_id, train_tokenizer
from roost.train.config import TrainConfig
from roost.train.data import DistributedLoader
from roost.train.optim import lr_multiplier
from roost.train.trainer import Trainer
from roost.workspace import Workspace

REAL_POSTS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real_posts" / "posts.jsonl"
WORDS = ["the", "a", "cat", "dog", "city", "rain", "song", "team", "bus", "pizza", "loves", "found", "today"]


def posts(limit: int) -> list[str]:
    """Real posts when ../shared is here, else sentences of common words (speed does not care)."""
    if REAL_POSTS.exists():
        import json

        with open(REAL_POSTS, encoding="utf-8") as handle:
            return [json.loads(line)["text"] for _, line in zip(range(limit), handle, strict=False)]
    rng = random.Random(0)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30))) for _ in range(limit)]


def make_workspace(home: Path, vocab_size: int) -> Workspace:
    ws = Workspace(home).ensure()
    texts = posts(20_000)
    tokenizer = train_tokenizer(texts, vocab_size=vocab_size)
    save_tokenizer(tokenizer, ws.tokenizer_dir)
    eot, vocab = special_id(tokenizer, END_OF_POST), tokenizer.get_vocab_size()
    writer = ShardWriter(ws.shards_dir, "train-00000", token_dtype(vocab), eot)
    for i, encoding in enumerate(tokenizer.encode_batch(texts, add_special_tokens=False)):
        writer.add(f"p{i}", encoding.ids)
    index = {"dtype": token_dtype(vocab).name, "vocab_size": vocab, "eot_id": eot}
    write_index(ws.shards_dir, {**index, "splits": {"train": [writer.close()]}})
    return ws


def roost_step(ws: Workspace, config: TrainConfig) -> tuple[Callable[[], None], Trainer]:
    trainer = Trainer(ws, config, "bench")
    return lambda: trainer.train_step(trainer.loader.next_step()), trainer


def plain_step(trainer: Trainer, config: TrainConfig, autocast: bool) -> Callable[[], None]:
    """The loop a user writes over transformers, fed the very batches roost's loader yields."""
    from transformers import LlamaConfig, LlamaForCausalLM

    shape = hf_config(trainer.model_config, eot_id=0, pad_id=1)
    model = LlamaForCausalLM(LlamaConfig(**shape)).train()
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=config.lr,
        betas=(config.beta1, config.beta2),
        eps=config.eps,
        weight_decay=config.weight_decay,
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_multiplier(config))
    loader = DistributedLoader(
        trainer.data.train, global_batch=config.global_batch, micro_batch=config.micro_batch, seed=config.seed
    )

    def step() -> None:
        for inputs, targets in loader.next_step():
            with torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext():
                logits = model(input_ids=inputs).logits
            loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
            (loss / loader.accum).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        optimizer.zero_grad()
        schedule.step()

    return step


def amx_kernel() -> str:
    """The oneDNN kernel a bf16 matmul runs on here, from oneDNN's own verbose log."""
    code = "import torch; a = torch.randn(256, 256, dtype=torch.bfloat16); a @ a"
    env = {**os.environ, "ONEDNN_VERBOSE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout
    kernels = [line.split(",")[6] for line in out.splitlines() if ",exec," in line and ",matmul," in line]
    return kernels[0] if kernels else "unknown (no oneDNN matmul logged)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="20m")
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=2, help="steps per contestant per round")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    config = TrainConfig(
        preset=args.preset,
        seq_len=args.seq_len,
        micro_batch=args.batch,
        global_batch=args.batch,
        dtype="bfloat16",
        compile=not args.no_compile,
        warmup_steps=10,
        max_steps=10_000,
        eval_every=0,
        keep_checkpoints=0,
    )
    with tempfile.TemporaryDirectory() as tmp:
        ws = make_workspace(Path(tmp) / "home", vocab_size=8192)
        roost, trainer = roost_step(ws, config)
        contestants = {
            f"roost train (bf16 autocast{', compiled' if config.compile else ''}, fused AdamW)": roost,
            "transformers LlamaForCausalLM, plain fp32 loop": plain_step(trainer, config, autocast=False),
            "transformers LlamaForCausalLM, bf16 autocast": plain_step(trainer, config, autocast=True),
        }
        machine = f"{platform.machine()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} threads"
        print(f"{machine}, torch {torch.__version__}; bf16 matmul kernel: {amx_kernel()}")
        mc = trainer.model_config
        print(
            f"model {args.preset}: {mc.num_params() / 1e6:.1f}M parameters, vocab {mc.vocab_size}, "
            f"seq {args.seq_len} × batch {args.batch}"
        )
        for name, step in contestants.items():  # warm-up (compilation) outside the timing
            start = time.perf_counter()
            step()
            step()
            print(f"  warm-up {name}: {time.perf_counter() - start:.1f} s", flush=True)
        wall: dict[str, list[float]] = {name: [] for name in contestants}
        cpu: dict[str, list[float]] = {name: [] for name in contestants}
        for _ in range(args.rounds):
            for name, step in contestants.items():
                for _ in range(args.steps):
                    start, start_cpu = time.perf_counter(), time.process_time()
                    step()
                    wall[name].append(time.perf_counter() - start)
                    cpu[name].append(time.process_time() - start_cpu)
    tokens = args.batch * args.seq_len
    per_cpu = {name: tokens / statistics.median(ts) for name, ts in cpu.items()}
    best = {name: tokens / min(ts) for name, ts in wall.items()}
    median = {name: tokens / statistics.median(ts) for name, ts in wall.items()}
    roost_name, plain_name, autocast_name = list(wall)
    for name in wall:
        print(
            f"{name:52s} {per_cpu[name]:7,.0f} tok/CPU-s ({per_cpu[name] / per_cpu[plain_name]:.2f}x); "
            f"wall: best {best[name]:7,.0f} tok/s ({best[name] / best[plain_name]:.2f}x), "
            f"median {median[name]:7,.0f}"
        )
    flops = trainer.model_config.flops_per_token(args.seq_len)
    print(
        f"roost {per_cpu[roost_name]:,.0f} tokens per CPU-second vs transformers plain loop "
        f"{per_cpu[plain_name]:,.0f} ({per_cpu[roost_name] / per_cpu[plain_name]:.2f}x); vs transformers + "
        f"bf16 autocast {per_cpu[autocast_name]:,.0f} ({per_cpu[roost_name] / per_cpu[autocast_name]:.2f}x); "
        f"roost's best wall-clock step {best[roost_name]:,.0f} tok/s = {flops * best[roost_name] / 1e12:.2f} "
        "TFLOP/s of model FLOPs"
    )


if __name__ == "__main__":
    main()
