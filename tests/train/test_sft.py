"""Conversation tuning: reply threads become chat examples whose loss falls exactly on the reply."""

from __future__ import annotations

import numpy as np
import pytest

from roost.tokenizer import ASSISTANT, END_OF_TURN, USER, format_chat, load_tokenizer
from roost.train.data import IGNORE
from roost.train.metrics import read_metrics
from roost.train.sft import ChatExamples, encode_thread, read_threads, split_threads
from roost.train.trainer import train
from roost.workspace import Workspace
from tests.train.conftest import tiny
from tests.train.fixtures import make_posts, write_corpus

THREAD = [
    {"id": "t1", "text": "the cat found a song today", "author_id": "ana"},
    {"id": "t2", "text": "my neighbour loves pizza!", "reply_to": "t1", "author_id": "bo"},
    {"id": "t3", "text": "grandma fixed the fence 🙂", "reply_to": "t2", "author_id": "ana"},
    {"id": "t4", "text": "a robot sold my keys", "author_id": "cy"},  # no replies: no example
    {"id": "t5", "text": "our bus missed the rain", "reply_to": "gone", "author_id": "bo"},  # parent absent
]


def test_threads_follow_reply_chains(tmp_path) -> None:
    write_corpus(tmp_path, THREAD)
    threads = read_threads(tmp_path)
    assert [(t.reply_id, t.texts) for t in threads] == [
        ("t2", (THREAD[0]["text"], THREAD[1]["text"])),
        ("t3", (THREAD[0]["text"], THREAD[1]["text"], THREAD[2]["text"])),
    ]
    assert [t.reply_id for t in read_threads(tmp_path, exclude={"t2"})] == []  # a deleted middle breaks it
    assert [t.texts for t in read_threads(tmp_path, max_turns=2)][1] == (THREAD[1]["text"], THREAD[2]["text"])


def test_loss_falls_exactly_on_the_reply(train_ws: Workspace, tmp_path) -> None:
    tokenizer = load_tokenizer(train_ws.tokenizer_dir)
    write_corpus(tmp_path, THREAD)
    thread = read_threads(tmp_path)[1]  # root → reply → reply
    tokens, mask = encode_thread(tokenizer, thread.texts, max_tokens=256)
    # Roles alternate back from the reply: assistant, user, assistant.
    messages = [
        {"role": "assistant", "content": THREAD[0]["text"]},
        {"role": "user", "content": THREAD[1]["text"]},
        {"role": "assistant", "content": THREAD[2]["text"]},
    ]
    expected = tokenizer.encode(
        format_chat(messages, add_generation_prompt=False), add_special_tokens=False
    ).ids
    assert tokens.tolist() == expected
    assert (
        tokenizer.decode(tokens[mask].tolist(), skip_special_tokens=False) == THREAD[2]["text"] + END_OF_TURN
    )

    examples = ChatExamples.build([thread], tokenizer, seq_len=64)
    inputs, targets = examples.example(0)
    taken = targets[targets != IGNORE]
    assert tokenizer.decode(taken.tolist(), skip_special_tokens=False) == THREAD[2]["text"] + END_OF_TURN
    # The first target is predicted from the reply's role token, and nothing after end-of-turn.
    first = int(np.flatnonzero(targets != IGNORE)[0])
    assert tokenizer.id_to_token(int(inputs[first])) == ASSISTANT
    assert (targets[first + len(taken) :] == IGNORE).all()
    assert USER in tokenizer.decode(inputs.tolist(), skip_special_tokens=False)


def test_long_context_is_cut_from_the_oldest_turn(train_ws: Workspace) -> None:
    tokenizer = load_tokenizer(train_ws.tokenizer_dir)
    texts = ["the cat " * 20, "my keys " * 20, "a short reply"]
    tokens, mask = encode_thread(tokenizer, texts, max_tokens=60)
    assert len(tokens) <= 60 and "the cat" not in tokenizer.decode(tokens.tolist())
    assert tokenizer.decode(tokens[mask].tolist(), skip_special_tokens=False) == "a short reply" + END_OF_TURN
    assert encode_thread(tokenizer, ["hi", "the cat " * 80], max_tokens=60) is None


def test_split_is_by_reply_id_and_stable(tmp_path) -> None:
    rows = [{"id": f"r{i}", "text": f"post {i}", "reply_to": f"r{i - 1}" if i else None} for i in range(200)]
    write_corpus(tmp_path, rows)
    train_threads, val_threads = split_threads(read_threads(tmp_path))
    assert len(train_threads) + len(val_threads) == 199 and 0 < len(val_threads) < 30
    assert split_threads(read_threads(tmp_path))[1] == val_threads


@pytest.fixture
def pretrained(train_ws: Workspace) -> Workspace:
    train(train_ws, tiny(max_steps=4, eval_every=0), "base")
    posts = make_posts(120, seed=3)
    rows = [
        {"id": f"c{i:04d}", "text": text, "reply_to": f"c{i - 1:04d}" if i % 4 else None}
        for i, text in enumerate(posts)
    ]
    write_corpus(train_ws.corpus_dir, rows)
    return train_ws


def test_sft_run_tunes_a_pretrained_run(pretrained: Workspace) -> None:
    result = train(pretrained, tiny(objective="sft", init_from="base", lr=3e-3, eval_every=4), "chat")
    run = pretrained.runs_dir / "chat"
    assert result.step == 8 and (run / "sft_examples.npz").exists()
    steps = [r["loss"] for r in read_metrics(run / "metrics.jsonl") if "loss" in r]
    assert steps[-1] < steps[0]
    # Resuming reads the examples the run started with, even if the corpus changed since.
    write_corpus(pretrained.corpus_dir, [{"id": "x", "text": "changed"}])
    assert train(pretrained, tiny(objective="sft", init_from="base", max_steps=10), "chat").step == 10
