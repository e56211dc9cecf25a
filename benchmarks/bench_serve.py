"""CPU serving speed: roost's engine and API next to `transformers` `generate()`, on the same exported
weights in the same run.

1. Batch 1: one greedy request of `--tokens` tokens. roost's engine in-process and
   `LlamaForCausalLM.generate()` take turns for `--rounds` rounds (best and median shown, as the
   machine is shared). Then the same request through `roost serve` (a real server process,
   streamed over HTTP); its HTTP overhead per token is the client's end-to-end time minus the
   engine's own (from the server's /metrics), divided by the tokens.
2. Concurrency: `--requests` mixed-length requests (prompts of 8–96 tokens, 8–`--max-tokens` new
   tokens) from `--concurrency` clients at once against `roost serve`, next to generate()'s static
   batching of the same requests in arrival order, `--concurrency` to a batch (each batch runs
   until its longest request ends). TTFT, TPOT and ITL as vLLM's benchmark_serving defines them:
   TTFT from sending to the first token, TPOT = (E2E − TTFT) / (output tokens − 1) per request,
   ITL every gap between consecutive tokens.

The model is a preset (20m by default) with random weights, saved as a run and exported with
`roost export hf`; every request ignores end tokens so all produce exactly what was asked.
Everything runs with `--threads` intra-op threads (1 by default, server included): on a shared
machine a second thread that gets descheduled stalls every matmul at its barrier (a 20M model's
step then takes ~16 ms whatever its size), which would measure the neighbours, not the code.

    python -m benchmarks.bench_serve [--preset 20m] [--tokens 128] [--requests 64] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import torch

from benchmarks.bench_train import posts
from roost.apikeys import ApiKeyStore
from roost.export.hf import export_hf
from roost.model.config import preset
from roost.model.llama import Llama
from roost.serve.config import ServeConfig
from roost.serve.engine import Engine
from roost.serve.loader import load_served_model
from roost.serve.sampling import SamplingParams
from roost.tokenizer import PAD, save_tokenizer, special_id, train_tokenizer
from roost.train.checkpoint import save_weights, step_dir
from roost.train.config import TrainConfig
from roost.train.run import RunDir
from roost.workspace import Workspace


def make_export(home: Path, preset_name: str) -> tuple[Workspace, Path]:
    """A run of `preset_name` with random weights and a tokenizer trained on posts, exported to HF."""
    ws = Workspace(home).ensure()
    tokenizer = train_tokenizer(posts(20_000), vocab_size=preset(preset_name).vocab_size)
    torch.manual_seed(0)
    config = preset(preset_name, vocab_size=tokenizer.get_vocab_size())
    run = RunDir(ws.runs_dir / "bench")
    run.write_config(TrainConfig(preset=preset_name, seq_len=config.max_seq_len), config)
    save_tokenizer(tokenizer, run.tokenizer_dir)
    save_weights(Llama(config), step_dir(run.checkpoints_dir, 0))
    return ws, export_hf(run.path, ws.export_dir / "bench")


def stats(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    mean, median = statistics.fmean(values), statistics.median(values)
    return f"mean {1000 * mean:7.1f}  median {1000 * median:7.1f}  p99 {1000 * p99:7.1f} ms"


# -- batch 1 ----------------------------------------------------------------------------------------
def engine_batch_one(engine: Engine, prompt: list[int], tokens: int) -> float:
    params = SamplingParams(max_tokens=tokens, temperature=0.0, ignore_eos=True)
    begin = time.perf_counter()
    out = engine.generate([prompt], params)[0].choices[0].token_ids
    assert len(out) == tokens
    return time.perf_counter() - begin


def hf_batch_one(model, prompt: list[int], tokens: int) -> float:
    ids = torch.tensor([prompt])
    begin = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(
            ids,
            max_new_tokens=tokens,
            min_new_tokens=tokens,
            do_sample=False,
            attention_mask=torch.ones_like(ids),
        )
    assert out.shape[1] - ids.shape[1] == tokens
    return time.perf_counter() - begin


# -- the server ---------------------------------------------------------------------------------------
class Server:
    def __init__(self, ws: Workspace, export: Path, max_batch: int) -> None:
        store = ApiKeyStore(ws.api_keys_db)
        self.key = store.add("bench")[1]
        store.close()
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        command = [
            sys.executable,
            "-m",
            "roost",
            "--home",
            str(ws.home),
            "serve",
            str(export),
            "--port",
            str(self.port),
        ]
        options = [
            "--max-batch",
            str(max_batch),
            "--max-queue",
            "256",
            "--dtype",
            "float32",
            "--log-level",
            "warning",
        ]
        self.process = subprocess.Popen([*command, *options])
        self.url = f"http://127.0.0.1:{self.port}"
        self.headers = {"Authorization": f"Bearer {self.key}"}
        for _ in range(600):
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("roost serve did not start")

    def engine_e2e_sum(self) -> float:
        text = httpx.get(self.url + "/metrics", headers=self.headers).text
        return next(
            float(line.split()[-1])
            for line in text.splitlines()
            if line.startswith("roost_e2e_request_latency_seconds_sum")
        )

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@dataclass
class Timing:
    sent: float
    chunks: list[float] = field(default_factory=list)  # arrival time of each streamed chunk
    output_tokens: int = 0

    @property
    def ttft(self) -> float:
        return self.chunks[0] - self.sent

    @property
    def e2e(self) -> float:
        return self.chunks[-1] - self.sent

    @property
    def tpot(self) -> float:
        return (self.e2e - self.ttft) / max(self.output_tokens - 1, 1)

    @property
    def itl(self) -> list[float]:
        return [b - a for a, b in zip(self.chunks, self.chunks[1:], strict=False)]


async def stream_one(client: httpx.AsyncClient, prompt: list[int], max_tokens: int) -> Timing:
    """One streamed /v1/completions request: when each chunk arrived (a chunk holds one token unless
    the client fell behind), and the token count from the usage chunk."""
    body = {
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    timing = Timing(time.perf_counter())
    async with client.stream("POST", "/v1/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if line.startswith("data: {"):
                now = time.perf_counter()
                chunk = json.loads(line[6:])
                if chunk["choices"]:
                    timing.chunks.append(now)
                else:
                    timing.output_tokens = chunk["usage"]["completion_tokens"]
    assert timing.output_tokens == max_tokens, (timing.output_tokens, max_tokens)
    return timing


async def closed_loop(
    server: Server, requests: list[tuple[list[int], int]], concurrency: int
) -> list[Timing]:
    """`concurrency` clients, each sending its next request when the last one ends."""
    queue = list(reversed(requests))
    timings: list[Timing] = []
    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(
        base_url=server.url, headers=server.headers, timeout=600, limits=limits
    ) as client:

        async def worker() -> None:
            while queue:
                prompt, max_tokens = queue.pop()
                timings.append(await stream_one(client, prompt, max_tokens))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return timings


def hf_static_batches(model, requests: list[tuple[list[int], int]], batch: int, pad_id: int) -> float:
    """Seconds for generate() over the requests in arrival order, `batch` at a time, left-padded."""
    begin = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(requests), batch):
            group = requests[start : start + batch]
            width = max(len(p) for p, _ in group)
            ids = torch.tensor([[pad_id] * (width - len(p)) + p for p, _ in group])
            mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p, _ in group])
            longest = max(n for _, n in group)
            model.generate(
                ids, attention_mask=mask, max_new_tokens=longest, min_new_tokens=longest, do_sample=False
            )
    return time.perf_counter() - begin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="20m")
    parser.add_argument("--tokens", type=int, default=128, help="tokens generated at batch 1")
    parser.add_argument("--rounds", type=int, default=5, help="batch-1 rounds")
    parser.add_argument("--load-rounds", type=int, default=2, help="rounds of the concurrent load")
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=160, help="longest output of the mixed requests")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads, here and in the server"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the server process inherits it
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, {os.cpu_count()} CPUs, torch {torch.__version__}, {args.threads} thread(s)")

    with tempfile.TemporaryDirectory() as tmp:
        ws, export = make_export(Path(tmp) / "home", args.preset)
        served = load_served_model(ws, str(export), dtype="float32")
        tokenizer, config = served.tokenizer, served.model.config
        millions = config.num_params() / 1e6
        print(f"model: {args.preset}, {millions:.1f}M parameters, fp32, vocabulary {config.vocab_size}")
        texts = posts(2000)
        rng = random.Random(0)
        pool = [t for enc in tokenizer.encode_batch(texts, add_special_tokens=False) for t in enc.ids]
        prompt = pool[:32]

        requests = []
        for _ in range(args.requests):
            start = rng.randrange(0, len(pool) - 100)
            requests.append((pool[start : start + rng.randint(8, 96)], rng.randint(8, args.max_tokens)))
        useful = sum(n for _, n in requests)

        from transformers import LlamaForCausalLM

        hf = LlamaForCausalLM.from_pretrained(export, dtype=torch.float32).eval()
        engine = Engine(served.model, served.tokenizer, ServeConfig(max_batch=args.concurrency), name="bench")
        server = Server(ws, export, max_batch=args.concurrency)
        n = args.tokens
        try:
            # 1. batch 1: the three take turns, so each round sees the same machine
            engine_batch_one(engine, prompt, 4)  # warm-ups
            hf_batch_one(hf, prompt, 4)
            asyncio.run(closed_loop(server, [(prompt, 4)], 1))
            roost_times, hf_times, http_times, overheads = [], [], [], []
            for _ in range(args.rounds):
                roost_times.append(engine_batch_one(engine, prompt, n))
                hf_times.append(hf_batch_one(hf, prompt, n))
                engine_before = server.engine_e2e_sum()
                (timing,) = asyncio.run(closed_loop(server, [(prompt, n)], 1))
                http_times.append(timing.e2e)
                overheads.append((timing.e2e - (server.engine_e2e_sum() - engine_before)) / n)
            engine.close()

            # 2. concurrency, also taking turns
            roost_walls, hf_walls, all_timings = [], [], []
            for _ in range(args.load_rounds):
                begin = time.perf_counter()
                all_timings.append(asyncio.run(closed_loop(server, requests, args.concurrency)))
                roost_walls.append(time.perf_counter() - begin)
                hf_walls.append(hf_static_batches(hf, requests, args.concurrency, special_id(tokenizer, PAD)))
        finally:
            engine.close()
            server.close()

        def rate(times: list[float], tokens: int) -> str:
            return f"{tokens / min(times):7.1f} tok/s (median {tokens / statistics.median(times):.1f})"

        print(f"\nbatch 1, {n} tokens after a 32-token prompt, best of {args.rounds} interleaved rounds:")
        print(f"  roost engine     {rate(roost_times, n)}")
        print(f"  roost over HTTP  {rate(http_times, n)}  (streamed from a `roost serve` process)")
        print(f"  transformers     {rate(hf_times, n)}  (generate(), greedy)")
        print(
            f"  roost vs generate(): {min(hf_times) / min(roost_times):.2f}x in-process, "
            f"{min(hf_times) / min(http_times):.2f}x over HTTP"
        )
        print(
            f"  HTTP overhead per token ((client e2e - engine e2e) / tokens): "
            f"{1000 * min(overheads):.3f} ms best, {1000 * statistics.median(overheads):.3f} ms median"
        )

        best = min(range(args.load_rounds), key=roost_walls.__getitem__)
        timings = all_timings[best]
        print(
            f"\n{args.requests} requests (prompts 8-96 tokens, outputs 8-{args.max_tokens}), "
            f"{args.concurrency} at a time, best of {args.load_rounds} interleaved rounds:"
        )
        print(f"  roost serve      {rate(roost_walls, useful)}")
        print(f"  generate(), static batches of {args.concurrency}: {rate(hf_walls, useful)}")
        print(f"  roost vs static batching: {min(hf_walls) / min(roost_walls):.2f}x")
        print(f"  TTFT  {stats([t.ttft for t in timings])}")
        print(f"  TPOT  {stats([t.tpot for t in timings])}")
        print(f"  ITL   {stats([gap for t in timings for gap in t.itl])}")
        print(f"  E2E   {stats([t.e2e for t in timings])}")


if __name__ == "__main__":
    main()
