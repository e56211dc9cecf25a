"""Tuning the in-house model into a search embedder: contrastive training on the platform's own
posts, where a reply and the post it answers, two posts sharing a hashtag, and a hashtag's words
and a post that used it are the positive pairs (the hashtag itself is cut from the texts, or the
pair would teach string matching).

Loss: InfoNCE over in-batch negatives, symmetric, temperature 0.05 (as in SimCSE and E5), on the
same pooling the engine serves (the mean of the final normalised hidden states, unit length), so
what is tuned here is exactly what `Engine.embed` returns. A batch never holds two pairs of the
same group (hashtag or thread), so no positive is counted as a negative.

The model starts from a trained run (optionally cut to its first layers, for CPU speed) or, with
no run, from scratch at a small shape whose token embeddings start from co-occurrence statistics
(`cooccurrence_init`); it is saved as a run directory that the engine loads.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from roost.model.config import ModelConfig
from roost.model.llama import Llama
from roost.posts import Post
from roost.search.text import hashtags_in, normalize_tag, split_hashtag
from roost.tokenizer import PAD, save_tokenizer, special_id, train_tokenizer

_LEADING_MENTIONS = re.compile(r"^(?:@\w+\s*)+")
LOSS_WINDOW = 10

#: The scratch shape: small enough to embed well over 2,000 posts a second on two CPU cores.
SMALL = ModelConfig(
    vocab_size=8192,
    dim=128,
    n_layers=2,
    n_heads=4,
    n_kv_heads=2,
    ffn_dim=384,
    max_seq_len=128,
    tie_embeddings=True,
)


class TuneConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    steps: int = 1500
    batch: int = 128  # pairs per step; each is the other pairs' negative
    lr: float = 5e-4  # from a co-occurrence start; a pretrained base wants ~1e-4
    warmup: int = 100  # steps of linear warm-up (at most a tenth of `steps`)
    temperature: float = 0.05
    max_tokens: int = 64  # posts are cut to this many tokens
    seed: int = 0
    time_budget_s: float = 0.0  # stop early after this long; 0 = run all steps
    eval_pairs: int = 512  # held out to report retrieval accuracy before and after


@dataclass(frozen=True)
class Pair:
    query: str
    positive: str
    group: str  # pairs of one group are never in a batch together
    kind: str  # "reply" | "hashtag" | "tag-query"


@dataclass
class TuneReport:
    pairs: dict[str, int] = field(default_factory=dict)
    steps: int = 0
    seconds: float = 0.0
    loss_first: float = 0.0  # mean loss of the first LOSS_WINDOW steps (one batch's loss is noisy)
    loss_last: float = 0.0  # ... and of the last LOSS_WINDOW steps
    recall_at_1_before: float = 0.0  # held-out pairs: the right positive ranked first among the
    recall_at_1_after: float = 0.0  # eval set's positives, before and after tuning


def without_tag(text: str, tag: str) -> str:
    """The text with every `#tag` (any case) cut out."""
    return " ".join(re.sub(rf"#{re.escape(tag)}\b", " ", text, flags=re.IGNORECASE).split())


def make_pairs(posts: Iterable[Post], *, seed: int = 0, per_group: int = 64) -> list[Pair]:
    """Positive pairs from posts (see the module docstring), at most `per_group` per hashtag or
    reply target so that a few huge tags or threads do not make up the whole set."""
    rng = random.Random(seed)
    by_id: dict[str, str] = {}
    replies: list[tuple[str, str, str]] = []
    tagged: dict[str, list[str]] = defaultdict(list)
    spelled: dict[str, str] = {}
    for post in posts:
        if post.repost_of:
            continue
        text = _LEADING_MENTIONS.sub("", post.text).strip()
        by_id[post.id] = text
        if post.reply_to:
            replies.append((post.reply_to, text, post.id))
        for tag in dict.fromkeys(post.hashtags or hashtags_in(post.text)):
            tagged[normalize_tag(tag)].append(without_tag(text, tag))
            spelled.setdefault(normalize_tag(tag), tag)
    pairs: list[Pair] = []
    per_parent: dict[str, int] = defaultdict(int)
    for parent, text, _ in replies:
        if parent in by_id and text and by_id[parent] and per_parent[parent] < per_group:
            per_parent[parent] += 1
            pairs.append(Pair(by_id[parent], text, f"thread:{parent}", "reply"))
    for tag, texts in tagged.items():
        texts = [t for t in texts if t]
        rng.shuffle(texts)
        words = split_hashtag(spelled[tag])
        for text in texts[:per_group]:
            pairs.append(Pair(words, text, f"tag:{tag}", "tag-query"))
        for a, b in zip(texts[: per_group * 2 : 2], texts[1 : per_group * 2 : 2], strict=False):
            pairs.append(Pair(a, b, f"tag:{tag}", "hashtag"))
    rng.shuffle(pairs)
    return pairs


def small_model(tokenizer: Tokenizer, base: ModelConfig = SMALL) -> Llama:
    return Llama(base.replace(vocab_size=tokenizer.get_vocab_size()))


def cooccurrence_init(model: Llama, tokenizer: Tokenizer, texts: Sequence[str], *, seed: int = 0) -> None:
    """Start a from-scratch model's token embeddings from how tokens co-occur in posts: the
    truncated SVD of the positive PMI matrix (Levy & Goldberg 2014), rows scaled to unit length.
    At initialisation the blocks add little to the residual stream, so the mean-pooled hidden
    states are then a bag of these vectors: a meaningful retriever before any contrastive step,
    which tuning then sharpens. Counts are per post (does the post contain both tokens)."""
    vocab, dim = model.config.vocab_size, model.config.dim
    counts = np.zeros((vocab, vocab), np.float32)
    for encoding in tokenizer.encode_batch(list(texts), add_special_tokens=False):
        ids = np.unique(np.asarray(encoding.ids, dtype=np.int64))  # int64 even when the post is empty
        counts[np.ix_(ids, ids)] += 1.0
    np.fill_diagonal(counts, 0.0)
    total = counts.sum()
    if total == 0:
        return
    marginal = counts.sum(axis=1)
    # In place, to keep one vocab × vocab matrix: counts becomes PPMI.
    counts *= total
    counts /= np.maximum(marginal[:, None], 1.0)
    counts /= np.maximum(marginal[None, :], 1.0)
    np.log(np.maximum(counts, 1.0), out=counts)
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((vocab, dim + 16)).astype(np.float32)
    for _ in range(3):  # randomized SVD (Halko et al. 2011): power iterations on the symmetric PPMI
        basis, _ = np.linalg.qr(counts @ (counts.T @ basis))
    u, sigma, _ = np.linalg.svd(basis.T @ counts, full_matrices=False)
    vectors = (basis @ u[:, :dim]) * np.sqrt(sigma[:dim])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-6
    with torch.no_grad():
        model.tok_embeddings.weight.copy_(torch.from_numpy(vectors))


def tokenizer_for(texts: Sequence[str], vocab_size: int = 8192) -> Tokenizer:
    """A fresh byte-level BPE tokenizer for a model tuned from scratch."""
    return train_tokenizer(texts, vocab_size=vocab_size)


def truncate_layers(model: Llama, layers: int) -> Llama:
    """Keep the first `layers` blocks (the final norm stays): a faster embedder from a deep model."""
    if 0 < layers < len(model.layers):
        model.layers = model.layers[:layers]
        model.config = model.config.replace(n_layers=layers)
    return model


def pooled(model: Llama, tokens_BT: torch.Tensor, lengths_B: torch.Tensor) -> torch.Tensor:
    """Unit-length mean of the final hidden states over each row's real tokens (the pooling of
    roost.serve.embeddings, here with gradients)."""
    hidden_BTD = model.hidden_states(tokens_BT)
    mask_BT1 = (torch.arange(tokens_BT.shape[1])[None, :] < lengths_B[:, None]).unsqueeze(-1)
    mean_BD = (hidden_BTD * mask_BT1).sum(dim=1) / lengths_B[:, None]
    return F.normalize(mean_BD, dim=-1)


class Encoder:
    def __init__(self, tokenizer: Tokenizer, max_tokens: int) -> None:
        self.tokenizer, self.max_tokens = tokenizer, max_tokens
        self.pad = special_id(tokenizer, PAD)
        self.cache: dict[str, list[int]] = {}

    def __call__(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            for text, enc in zip(
                missing, self.tokenizer.encode_batch(missing, add_special_tokens=False), strict=True
            ):
                self.cache[text] = enc.ids[: self.max_tokens] or [self.pad]
        ids = [self.cache[t] for t in texts]
        T = max(len(i) for i in ids)
        tokens = torch.full((len(ids), T), self.pad, dtype=torch.long)
        for row, seq in enumerate(ids):
            tokens[row, : len(seq)] = torch.tensor(seq)
        return tokens, torch.tensor([len(i) for i in ids])


def _batches(pairs: list[Pair], batch: int, rng: random.Random) -> Iterable[list[Pair]]:
    """Endless batches with at most one pair per group."""
    while True:
        order = pairs[:]
        rng.shuffle(order)
        current: list[Pair] = []
        groups: set[str] = set()
        for pair in order:  # a pair whose group is already in the batch waits for the next epoch
            if pair.group not in groups:
                current.append(pair)
                groups.add(pair.group)
                if len(current) == batch:
                    yield current
                    current, groups = [], set()


@torch.no_grad()
def recall_at_1(model: Llama, encode: Encoder, pairs: Sequence[Pair]) -> float:
    """Share of pairs whose positive is the nearest of all the pairs' positives to its query."""
    if not pairs:
        return 0.0
    model.eval()
    q = pooled(model, *encode([p.query for p in pairs]))
    d = pooled(model, *encode([p.positive for p in pairs]))
    hits = (q @ d.T).argmax(dim=1) == torch.arange(len(pairs))
    model.train()
    return float(hits.float().mean())


def tune(
    model: Llama, tokenizer: Tokenizer, pairs: list[Pair], config: TuneConfig | None = None
) -> TuneReport:
    """Contrastively tune `model` in place on `pairs`; returns what happened."""
    config = config or TuneConfig()
    if len(pairs) < 2 * config.batch:
        raise ValueError(f"only {len(pairs)} pairs: tuning needs at least {2 * config.batch} (2 batches)")
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    report = TuneReport()
    for pair in pairs:
        report.pairs[pair.kind] = report.pairs.get(pair.kind, 0) + 1
    shuffled = pairs[:]
    rng.shuffle(shuffled)
    held = _distinct_groups(shuffled, config.eval_pairs)
    held_groups = {p.group for p in held}
    train = [p for p in pairs if p.group not in held_groups] or pairs
    encode = Encoder(tokenizer, min(config.max_tokens, model.config.max_seq_len))
    report.recall_at_1_before = recall_at_1(model, encode, held)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    other = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": other, "weight_decay": 0.0}], lr=config.lr
    )
    warmup = max(1, min(config.warmup, config.steps // 10))
    losses: list[float] = []
    started = time.perf_counter()
    model.train()
    for step, batch in enumerate(_batches(train, config.batch, rng)):
        if step >= config.steps or (
            config.time_budget_s and time.perf_counter() - started > config.time_budget_s
        ):
            break
        lr = config.lr * min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / config.steps))
        for group in optimizer.param_groups:
            group["lr"] = lr
        q = pooled(model, *encode([p.query for p in batch]))
        d = pooled(model, *encode([p.positive for p in batch]))
        logits = q @ d.T / config.temperature
        target = torch.arange(len(batch))
        loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
        report.steps = step + 1
    report.seconds = time.perf_counter() - started
    if losses:
        report.loss_first = sum(losses[:LOSS_WINDOW]) / len(losses[:LOSS_WINDOW])
        report.loss_last = sum(losses[-LOSS_WINDOW:]) / len(losses[-LOSS_WINDOW:])
    model.eval()
    report.recall_at_1_after = recall_at_1(model, encode, held)
    return report


def _distinct_groups(pairs: Sequence[Pair], n: int) -> list[Pair]:
    seen: set[str] = set()
    out = []
    for p in pairs:
        if p.group not in seen:
            seen.add(p.group)
            out.append(p)
            if len(out) == n:
                break
    return out


def save_embedder(model: Llama, tokenizer: Tokenizer, out_dir: Path, *, steps: int) -> Path:
    """Save as a run directory (config, tokenizer, weights-only checkpoint) that the engine loads."""
    import shutil

    from roost.train.checkpoint import save_weights, step_dir
    from roost.train.config import TrainConfig
    from roost.train.run import RunDir

    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    run = RunDir(tmp)
    config = model.config
    run.write_config(TrainConfig(preset="tiny", model={"n_layers": config.n_layers}), config)
    save_tokenizer(tokenizer, run.tokenizer_dir)
    save_weights(model, step_dir(run.checkpoints_dir, steps))
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir


def workspace_posts(ws, path: Path | None = None) -> Iterable[Post]:
    """Posts to tune on: `path` (JSONL of posts or firehose events, or a Parquet file or folder
    such as the curated corpus), else the workspace's curated corpus, raw store or firehose log,
    the first that has any."""
    from roost.posts import decode_event, decode_post

    def from_jsonl(file: Path) -> Iterable[Post]:
        with open(file, "rb") as f:
            for line in f:
                if line.strip():
                    event_or_post = msgspec.json.decode(line)
                    if "type" in event_or_post and "post" in event_or_post:
                        event = decode_event(line)
                        if event.post is not None:
                            yield event.post
                    else:
                        yield decode_post(line)

    def from_parquet(target: Path) -> Iterable[Post]:
        import datetime as dt

        import pyarrow.parquet as pq

        files = sorted(target.glob("*.parquet")) if target.is_dir() else [target]
        for file in files:
            for row in pq.read_table(file).to_pylist():
                created = row.get("created_at") or dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
                if isinstance(created, str):
                    created = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
                yield Post(
                    id=str(row["id"]),
                    text=row.get("text") or "",
                    author_id=str(row.get("author_id") or ""),
                    created_at=created if created.tzinfo else created.replace(tzinfo=dt.UTC),
                    reply_to=row.get("reply_to"),
                    repost_of=row.get("repost_of"),
                    hashtags=list(row.get("hashtags") or []),
                )

    if path is not None:
        path = Path(path)
        if path.suffix == ".parquet" or path.is_dir():
            return from_parquet(path)
        return from_jsonl(path)
    if any(ws.corpus_dir.glob("*.parquet")):
        return from_parquet(ws.corpus_dir)
    if (ws.raw_dir / "raw.db").exists():
        from roost.rawstore import RawStore

        return RawStore.in_dir(ws.raw_dir).iter_posts()
    from roost.firehose.log import Log

    return (e.post for e in Log(ws.firehose_dir).iter_events() if e.post is not None)
