"""Conversation tuning data: the platform's reply threads as chat examples, loss on the reply.

Every post that replies to a post in the corpus is one example: its ancestors (up to `max_turns`
− 1 of them, root first) are the conversation so far and the reply is the answer. Roles alternate
back from the reply, which is the assistant; its parent is the user, the grandparent the assistant,
and so on, so the chat endpoint (user message in, `<|assistant|>` out) sees the same shape. The loss
is taken on the reply's text and its `<|endofturn|>` only (so the model learns where to stop),
never on the context. Each reply is the answer in exactly one example.

Tokens are exactly `tokenizer.encode(format_chat(messages, add_generation_prompt=False))`, built
turn by turn so the reply's span is known.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.dataset as pads
from tokenizers import Tokenizer

from roost.tokenizer import END_OF_TURN, PAD, ROLE_TOKENS, special_id
from roost.train.data import IGNORE

VAL_PERCENT = 5  # replies whose id hashes below this go to the validation examples


@dataclass(frozen=True)
class Thread:
    reply_id: str
    texts: tuple[str, ...]  # root first, the reply last


def read_threads(
    corpus_dir: Path, *, max_turns: int = 8, exclude: set[str] | frozenset = frozenset()
) -> list[Thread]:
    """Every reply whose parent is in the corpus, with its ancestors, in id order."""
    paths = sorted(Path(corpus_dir).glob("part-*.parquet"))
    if not paths:
        raise FileNotFoundError(f"no corpus in {corpus_dir} (no part-*.parquet); run `roost curate` first")
    table = pads.dataset([str(p) for p in paths], format="parquet").to_table(
        columns=["id", "text", "reply_to"]
    )
    ids = table.column("id").to_pylist()
    texts = table.column("text").to_pylist()
    parents = table.column("reply_to").to_pylist()
    posts = {i: (t, p) for i, t, p in zip(ids, texts, parents, strict=True) if i not in exclude and t}
    threads = []
    for post_id in sorted(posts):
        text, parent = posts[post_id]
        if parent not in posts:
            continue
        chain = [text]
        while parent in posts and len(chain) < max_turns:
            parent_text, parent = posts[parent]
            chain.append(parent_text)
        threads.append(Thread(post_id, tuple(reversed(chain))))
    return threads


def encode_thread(
    tokenizer: Tokenizer, texts: Sequence[str], max_tokens: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Token ids and a mask of the tokens that take loss (the last turn's text and end-of-turn).
    The oldest turns are dropped until it fits in `max_tokens`; None if the reply alone does not."""
    end_of_turn = special_id(tokenizer, END_OF_TURN)
    roles = ["assistant" if (len(texts) - 1 - i) % 2 == 0 else "user" for i in range(len(texts))]
    turns = []
    for role, encoding in zip(
        roles, tokenizer.encode_batch_fast(list(texts), add_special_tokens=False), strict=True
    ):
        turns.append([special_id(tokenizer, ROLE_TOKENS[role]), *encoding.ids, end_of_turn])
    reply = turns[-1]
    context = turns[:-1]
    while context and sum(map(len, context)) + len(reply) > max_tokens:
        context.pop(0)
    if len(reply) > max_tokens:
        return None
    tokens = np.asarray([t for turn in context for t in turn] + reply, dtype=np.int64)
    mask = np.zeros(len(tokens), dtype=bool)
    mask[len(tokens) - len(reply) + 1 :] = True  # the reply's role token is the prompt, not the answer
    return tokens, mask


class ChatExamples:
    """Encoded threads as a training source: inputs padded to seq_len, targets -100 off the reply."""

    def __init__(self, tokens: np.ndarray, masks: np.ndarray, offsets: np.ndarray, seq_len: int, pad_id: int):
        self.tokens, self.masks, self.offsets = tokens, masks, offsets
        self.seq_len, self.pad_id = seq_len, pad_id

    @classmethod
    def build(cls, threads: Sequence[Thread], tokenizer: Tokenizer, seq_len: int) -> ChatExamples:
        encoded = [e for t in threads if (e := encode_thread(tokenizer, t.texts, seq_len + 1)) is not None]
        if not encoded:
            raise ValueError("no reply thread fits in seq_len; nothing to tune on")
        offsets = np.r_[0, np.cumsum([len(t) for t, _ in encoded])].astype(np.int64)
        return cls(
            np.concatenate([t for t, _ in encoded]),
            np.concatenate([m for _, m in encoded]),
            offsets,
            seq_len,
            special_id(tokenizer, PAD),
        )

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def example(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        start, stop = int(self.offsets[i]), int(self.offsets[i + 1])
        tokens, mask = self.tokens[start:stop], self.masks[start:stop]
        inputs = np.full(self.seq_len, self.pad_id, dtype=np.int64)
        targets = np.full(self.seq_len, IGNORE, dtype=np.int64)
        inputs[: len(tokens) - 1] = tokens[:-1]
        targets[: len(tokens) - 1] = np.where(mask[1:], tokens[1:], IGNORE)
        return inputs, targets

    def save(self, path: Path) -> None:
        """Written once per run, so a resumed run tunes on exactly the same examples."""
        tmp = Path(path).with_suffix(".tmp.npz")
        np.savez(tmp, tokens=self.tokens, masks=self.masks, offsets=self.offsets)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, seq_len: int, pad_id: int) -> ChatExamples:
        with np.load(path) as data:
            return cls(data["tokens"], data["masks"], data["offsets"], seq_len, pad_id)


def split_threads(threads: Sequence[Thread]) -> tuple[list[Thread], list[Thread]]:
    """(train, validation) by a hash of the reply's id: stable as the corpus grows."""
    val = [t for t in threads if zlib.crc32(t.reply_id.encode()) % 100 < VAL_PERCENT]
    train = [t for t in threads if zlib.crc32(t.reply_id.encode()) % 100 >= VAL_PERCENT]
    return train, val
