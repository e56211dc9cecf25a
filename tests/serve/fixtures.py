"""A tiny served model for the serving tests: a byte-level tokenizer trained on toy posts, a 2-layer
Llama trained for a few seconds on them (so its distributions are peaked, not near-uniform: greedy
comparisons then do not hinge on float noise), saved as a run and exported to Hugging Face format."""

from __future__ import annotations

import random
from pathlib import Path

import torch
import torch.nn.functional as F

from roost.export.hf import export_hf
from roost.model.config import preset
from roost.model.llama import Llama
from roost.tokenizer import END_OF_POST, END_OF_TURN, format_chat, save_tokenizer, special_id, train_tokenizer
from roost.train.checkpoint import save_weights, step_dir
from roost.train.config import TrainConfig
from roost.train.run import RunDir
from roost.workspace import Workspace
from tests.train.fixtures import make_posts

RUN = "tiny"


def _chats(posts: list[str], rng: random.Random) -> list[str]:
    """Conversations in the chat template, so the model also learns to end its turn."""
    return [
        format_chat([{"role": "user", "content": rng.choice(posts)}], add_generation_prompt=False)
        + format_chat([{"role": "assistant", "content": post}], add_generation_prompt=False)
        for post in posts
    ]


def train_tiny(model: Llama, ids: list[int], steps: int = 40, seq: int = 64, batch: int = 8) -> None:
    torch.manual_seed(0)
    data = torch.tensor(ids)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        starts = torch.randint(0, len(data) - seq - 1, (batch,))
        x = torch.stack([data[s : s + seq] for s in starts])
        y = torch.stack([data[s + 1 : s + seq + 1] for s in starts])
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


def build_served_workspace(ws: Workspace) -> tuple[Path, Path]:
    """The run `tiny` and its HF export in `ws`; returns (run dir, export dir)."""
    rng = random.Random(0)
    posts = make_posts(600, seed=1)
    tokenizer = train_tokenizer(posts + _chats(posts[:200], rng), vocab_size=512)
    eop, eot = special_id(tokenizer, END_OF_POST), special_id(tokenizer, END_OF_TURN)
    ids: list[int] = []
    for post in posts:
        ids += [*tokenizer.encode(post).ids, eop]
    for chat in _chats(posts[200:400], rng):
        ids += [*tokenizer.encode(chat).ids, eot]
    torch.manual_seed(0)
    config = preset("tiny", vocab_size=tokenizer.get_vocab_size())
    model = Llama(config)
    train_tiny(model, ids)
    run = RunDir(ws.runs_dir / RUN)
    run.write_config(TrainConfig(preset="tiny", seq_len=config.max_seq_len), config)
    save_tokenizer(tokenizer, run.tokenizer_dir)
    save_weights(model, step_dir(run.checkpoints_dir, 40))
    export = export_hf(run.path, ws.export_dir / RUN)
    return run.path, export
