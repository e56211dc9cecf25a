"""GPU serving speed of roost's engine on one GPU: batch-1 decode tokens/s against the HBM roofline,
with and without CUDA graphs, and throughput at 64 concurrent requests. Sized to finish in a few
minutes on one H100.

Batch-1 decoding reads every weight once per token, so its ceiling is memory bandwidth ÷ bytes of
weights (the input embedding is a lookup of one row and is left out; a tied output matrix is read
once). The roofline uses the card's datasheet bandwidth (roost.plan.hardware) unless
`--bandwidth-gbps` says otherwise. Weights are random (speed does not depend on them), bf16; the
decode rate is taken between the first and the last token of a long greedy request, so the prefill
is left out. `--tiny` runs the same path on the tiny preset on the CPU, to check the script works.

    python benchmarks/gpu_serve.py                        # the 1b and 8b presets on cuda:0
    python benchmarks/gpu_serve.py --presets 1b --tokens 512
    python benchmarks/gpu_serve.py --tiny
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time

import torch

from roost.model.config import preset
from roost.model.llama import Llama
from roost.plan.hardware import gpu
from roost.serve.config import ServeConfig
from roost.serve.engine import Engine
from roost.serve.sampling import SamplingParams
from roost.tokenizer import train_tokenizer


def datasheet_bandwidth(name: str) -> float | None:
    """HBM bytes/s of the card torch reports, from the planner's datasheet table."""
    lowered = name.lower()
    for marker, key in (("h200", "h200"), ("h100 pcie", "h100-pcie"), ("h100", "h100-sxm"), ("a100", "a100")):
        if marker in lowered:
            return gpu(key).hbm_gbps * 1e9
    return None


def build_engine(
    preset_name: str, device: torch.device, dtype: torch.dtype, *, graphs: bool, slots: int, max_len: int
):
    tokenizer = train_tokenizer(
        [f"post {i} about the weather and the match" for i in range(300)], vocab_size=300
    )
    torch.manual_seed(0)
    config = preset(preset_name)
    with torch.device("meta"):  # then materialised straight in `dtype` on the device
        model = Llama(config)
    model = model.to_empty(device=device).to(dtype)
    model.init_weights()  # random weights: speed does not depend on them
    serve = ServeConfig(max_batch=slots, max_seq_len=min(max_len, config.max_seq_len), cuda_graphs=graphs)
    return Engine(model.eval(), tokenizer, serve, name=preset_name), config


async def token_times(engine: Engine, prompts: list[list[int]], tokens: int) -> list[list[float]]:
    """Arrival time of every token of each prompt, all submitted at once (greedy, no early stop)."""
    params = SamplingParams(max_tokens=tokens, temperature=0.0, ignore_eos=True)

    async def one(prompt: list[int]) -> list[float]:
        times = []
        async for outputs in engine.submit(prompt, params):
            now = time.perf_counter()
            times += [now] * len(outputs)
        return times

    return await asyncio.gather(*(one(p) for p in prompts))


def run_preset(name: str, device: torch.device, args: argparse.Namespace, bandwidth: float | None) -> dict:
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    result: dict = {"preset": name, "dtype": str(dtype).removeprefix("torch.")}
    prompt = list(range(10, 10 + args.prompt))
    for graphs in (True, False) if device.type == "cuda" else (False,):
        begin = time.perf_counter()
        engine, config = build_engine(
            name, device, dtype, graphs=graphs, slots=args.concurrency, max_len=args.prompt + args.tokens + 1
        )
        setup = time.perf_counter() - begin
        asyncio.run(token_times(engine, [prompt], 8))  # warm-up
        (times,) = asyncio.run(token_times(engine, [prompt], args.tokens))
        decode_rate = (len(times) - 1) / (times[-1] - times[0])
        key = "graphs" if graphs else "eager"
        result[f"batch1_tokens_per_s_{key}"] = round(decode_rate, 1)
        result[f"setup_s_{key}"] = round(setup, 1)
        if graphs or device.type != "cuda":
            asyncio.run(token_times(engine, [prompt] * args.concurrency, 8))  # warm-up at full batch
            begin = time.perf_counter()
            all_times = asyncio.run(token_times(engine, [prompt] * args.concurrency, args.tokens))
            wall = time.perf_counter() - begin
            result[f"concurrent{args.concurrency}_tokens_per_s"] = round(sum(map(len, all_times)) / wall, 1)
        engine.close()
        del engine
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    element = torch.finfo(dtype).bits // 8
    weight_bytes = config.matmul_params() * element
    result["weight_bytes_per_token"] = weight_bytes
    if bandwidth:
        roofline = bandwidth / weight_bytes
        best = max(v for k, v in result.items() if k.startswith("batch1_tokens_per_s"))
        result["roofline_tokens_per_s"] = round(roofline, 1)
        result["fraction_of_roofline"] = round(best / roofline, 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="1b,8b", help="comma-separated model presets")
    parser.add_argument("--tokens", type=int, default=256, help="tokens generated per request")
    parser.add_argument("--prompt", type=int, default=32, help="prompt tokens")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--bandwidth-gbps", type=float, default=None, help="HBM GB/s (default: the datasheet's)"
    )
    parser.add_argument(
        "--tiny", action="store_true", help="the tiny preset on the CPU: checks the script runs"
    )
    args = parser.parse_args()

    if args.tiny:
        device, presets = torch.device("cpu"), ["tiny"]
        args.tokens, args.concurrency = min(args.tokens, 64), min(args.concurrency, 8)
    else:
        if not torch.cuda.is_available():
            sys.exit("no GPU here: run with --tiny to check the script on the CPU")
        device, presets = torch.device("cuda"), args.presets.split(",")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    bandwidth = args.bandwidth_gbps * 1e9 if args.bandwidth_gbps else None
    if bandwidth is None and device.type == "cuda":
        bandwidth = datasheet_bandwidth(name)
    print(
        f"device: {name}, torch {torch.__version__}"
        + (f", HBM {bandwidth / 1e9:.0f} GB/s" if bandwidth else "")
    )

    for preset_name in presets:
        result = run_preset(preset_name, device, args, bandwidth)
        graphs, eager = result.get("batch1_tokens_per_s_graphs"), result["batch1_tokens_per_s_eager"]
        line = f"{preset_name}: batch 1 {graphs or eager} tok/s"
        if graphs:
            line += f" with CUDA graphs ({eager} eager)"
        if "roofline_tokens_per_s" in result:
            share = 100 * result["fraction_of_roofline"]
            line += f", roofline {result['roofline_tokens_per_s']} tok/s: {share:.0f}%"
        concurrent = result[f"concurrent{args.concurrency}_tokens_per_s"]
        print(f"{line}; {args.concurrency} concurrent requests: {concurrent} tok/s")
        print(json.dumps({"device": name, **result}))


if __name__ == "__main__":
    main()
