"""Validation loss and bits per byte, on the validation shards (during training) and on any text
or JSONL file of posts (after it, `roost eval`).

Bits per byte is the loss in bits spread over the UTF-8 bytes the predicted tokens stand for, so it
compares models with different tokenizers, and a model with a compressor. Each post counts one byte
more than its text, for the end-of-post token: the boundary a newline marks when the same posts are
written one per line for zstd.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tokenizers import Tokenizer
from torch import nn

from roost.curate.shards import ShardSet
from roost.tokenizer import END_OF_POST, load_tokenizer, special_id
from roost.train.checkpoint import load_model
from roost.train.data import IGNORE, TokenWindows, sequential_batches
from roost.train.run import RunDir


@dataclass(frozen=True)
class EvalResult:
    loss: float  # nats per predicted token
    bpb: float  # bits per byte of text
    tokens: int
    bytes: int

    def as_dict(self) -> dict[str, float | int]:
        return {"loss": self.loss, "bpb": self.bpb, "tokens": self.tokens, "bytes": self.bytes}


def token_byte_lengths(tokenizer: Tokenizer) -> np.ndarray:
    """How many bytes of text each token id stands for: its byte-level pieces, an added placeholder's
    text, 1 for end-of-post (the post boundary) and 0 for the other special tokens."""
    vocab = tokenizer.get_vocab_size()
    lengths = np.zeros(vocab, dtype=np.int64)
    added = tokenizer.get_added_tokens_decoder()
    for token_id in range(vocab):
        if token_id in added:
            token = added[token_id]
            lengths[token_id] = 0 if token.special else len(token.content.encode("utf-8"))
        else:
            # Byte-level BPE writes each byte as one printable character.
            lengths[token_id] = len(tokenizer.id_to_token(token_id) or "")
    lengths[special_id(tokenizer, END_OF_POST)] = 1
    return lengths


def autocast_for(device_type: str, dtype: torch.dtype) -> Callable[[], contextlib.AbstractContextManager]:
    """A factory of autocast contexts for `dtype` (none for fp32)."""

    def make() -> contextlib.AbstractContextManager:
        if dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(device_type, dtype=dtype)

    return make


@torch.no_grad()
def evaluate_batches(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    token_bytes: np.ndarray,
    *,
    device: torch.device,
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
    replicas: int = 1,
) -> EvalResult:
    """Summed loss, target count and bytes over `batches`; in a process group, summed over every
    rank and divided by `replicas` (the tensor-parallel degree: those ranks saw the same data)."""
    byte_table = torch.from_numpy(token_bytes)
    sums = torch.zeros(3, dtype=torch.float64)
    for inputs, targets in batches:
        with autocast():
            logits = model(inputs.to(device))
        targets = targets.to(device)
        nll = F.cross_entropy(
            logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE, reduction="sum"
        )
        kept = targets[targets != IGNORE].cpu()
        sums += torch.tensor([nll.item(), kept.numel(), byte_table[kept].sum().item()], dtype=torch.float64)
    if dist.is_initialized():
        dist.all_reduce(sums)
        sums /= replicas
    nll, tokens, n_bytes = sums.tolist()
    return EvalResult(
        loss=nll / max(tokens, 1),
        bpb=nll / math.log(2) / max(n_bytes, 1),
        tokens=round(tokens),
        bytes=round(n_bytes),
    )


def read_texts(path: Path, field: str = "text", limit: int | None = None) -> list[str]:
    """Posts from a file: JSON Lines (`field` of each object) or plain text (one post per line)."""
    path = Path(path)
    texts: list[str] = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if limit is not None and len(texts) >= limit:
                break
            if not line.strip():
                continue
            if path.suffix in (".jsonl", ".ndjson"):
                try:
                    value = json.loads(line)[field]
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise ValueError(f"{path}:{number}: no {field!r} string in this line ({exc})") from exc
                if isinstance(value, str) and value:
                    texts.append(value)
            else:
                texts.append(line.rstrip("\n"))
    return texts


def text_batches(
    tokenizer: Tokenizer, texts: Sequence[str], seq_len: int, batch_size: int
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], int]:
    """Each post as the model saw posts in training, end-of-post before and after it, cut into
    windows of at most seq_len predictions; batched by length, padded with ignored targets.
    Returns the batches and the byte count (text bytes + 1 per post)."""
    eot = special_id(tokenizer, END_OF_POST)
    encodings = tokenizer.encode_batch_fast(list(texts), add_special_tokens=False)
    windows: list[np.ndarray] = []
    for encoding in encodings:
        ids = np.asarray([eot, *encoding.ids, eot], dtype=np.int64)
        for start in range(0, len(ids) - 1, seq_len):
            windows.append(ids[start : start + seq_len + 1])
    windows.sort(key=len)
    batches = []
    for first in range(0, len(windows), batch_size):
        group = windows[first : first + batch_size]
        width = max(len(w) for w in group) - 1
        inputs = np.full((len(group), width), eot, dtype=np.int64)
        targets = np.full((len(group), width), IGNORE, dtype=np.int64)
        for row, window in enumerate(group):
            inputs[row, : len(window) - 1] = window[:-1]
            targets[row, : len(window) - 1] = window[1:]
        batches.append((torch.from_numpy(inputs), torch.from_numpy(targets)))
    n_bytes = sum(len(text.encode("utf-8")) + 1 for text in texts)
    return batches, n_bytes


def evaluate_texts(
    model: nn.Module,
    tokenizer: Tokenizer,
    texts: Sequence[str],
    *,
    seq_len: int,
    batch_size: int = 16,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> EvalResult:
    """Loss and bits per byte of `model` on posts (one plain process)."""
    if not texts:
        raise ValueError("no posts to evaluate")
    device = torch.device(device)
    batches, n_bytes = text_batches(tokenizer, texts, seq_len, batch_size)
    table = token_byte_lengths(tokenizer)
    result = evaluate_batches(model, batches, table, device=device, autocast=autocast_for(device.type, dtype))
    # The exact byte count of the posts, not the tokens' pieces (they agree unless the tokenizer's
    # normaliser changed the text).
    return EvalResult(
        result.loss, result.loss * result.tokens / math.log(2) / n_bytes, result.tokens, n_bytes
    )


def evaluate_run(
    run_dir: Path,
    *,
    file: Path | None = None,
    shards_dir: Path | None = None,
    field: str = "text",
    limit: int | None = None,
    step: int | None = None,
    batch_size: int = 16,
) -> EvalResult:
    """A run's latest (or given) checkpoint on a file of posts, or else on the validation shards."""
    run = RunDir(Path(run_dir))
    train_config, _ = run.read_config()
    model, _ = load_model(run.path, step)
    tokenizer = load_tokenizer(run.tokenizer_dir)
    dtype = torch.bfloat16 if train_config.dtype == "bfloat16" else torch.float32
    if file is not None:
        texts = read_texts(file, field, limit)
        return evaluate_texts(
            model, tokenizer, texts, seq_len=train_config.seq_len, batch_size=batch_size, dtype=dtype
        )
    if shards_dir is None:
        raise ValueError("give a file of posts or the shards directory to evaluate on")
    shards = ShardSet.open(shards_dir)
    val = TokenWindows(shards.shards("val"), train_config.seq_len, shards.tombstones())
    count = len(val) if limit is None else min(limit, len(val))
    batches = sequential_batches(val, count=count, micro_batch=batch_size)
    table = token_byte_lengths(tokenizer)
    return evaluate_batches(
        model, batches, table, device=torch.device("cpu"), autocast=autocast_for("cpu", dtype)
    )
