"""Evaluation: bits per byte counts the real bytes, on shards and on files of posts."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from roost.tokenizer import END_OF_POST, load_tokenizer, special_id
from roost.train.checkpoint import load_model
from roost.train.evaluate import evaluate_run, evaluate_texts, read_texts, token_byte_lengths
from roost.train.trainer import train
from roost.workspace import Workspace
from tests.conftest import REAL_POSTS, need
from tests.train.conftest import tiny

TEXTS = ["the cat loves pizza today!", "grandma wrote about the rain 🙂 #weekend", "ünïcode — and @user http"]


def test_token_bytes_add_up_to_the_text(train_ws: Workspace) -> None:
    tokenizer = load_tokenizer(train_ws.tokenizer_dir)
    lengths = token_byte_lengths(tokenizer)
    for text in TEXTS:
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        assert int(lengths[ids].sum()) == len(text.encode("utf-8"))
    assert lengths[special_id(tokenizer, END_OF_POST)] == 1  # the post boundary, like a newline


def test_texts_bpb_is_the_summed_loss_over_the_bytes(train_ws: Workspace) -> None:
    train(train_ws, tiny(max_steps=2, eval_every=0), "r")
    model, _ = load_model(train_ws.runs_dir / "r")
    tokenizer = load_tokenizer(train_ws.tokenizer_dir)
    result = evaluate_texts(model, tokenizer, TEXTS, seq_len=8, batch_size=2)  # long posts are windowed
    eot = special_id(tokenizer, END_OF_POST)
    nll, tokens = 0.0, 0
    with torch.no_grad():
        for text in TEXTS:
            ids = torch.tensor([[eot, *tokenizer.encode(text, add_special_tokens=False).ids, eot]])
            for start in range(0, ids.shape[1] - 1, 8):  # the same windows, one by one
                window = ids[:, start : start + 9]
                logits = model(window[:, :-1])
                nll += F.cross_entropy(logits[0], window[0, 1:], reduction="sum").item()
                tokens += window.shape[1] - 1
    n_bytes = sum(len(t.encode()) + 1 for t in TEXTS)
    assert (result.tokens, result.bytes) == (tokens, n_bytes)
    assert result.loss == pytest.approx(nll / tokens, rel=1e-5)
    assert result.bpb == pytest.approx(nll / math.log(2) / n_bytes, rel=1e-5)


def test_evaluate_run_on_jsonl_and_on_val_shards(train_ws: Workspace, tmp_path) -> None:
    train(train_ws, tiny(max_steps=4, eval_every=4, eval_sequences=10_000), "r")
    posts = tmp_path / "posts.jsonl"
    posts.write_text("".join(json.dumps({"id": i, "body": t}) + "\n" for i, t in enumerate(TEXTS)))
    on_file = evaluate_run(train_ws.runs_dir / "r", file=posts, field="body")
    assert on_file.bytes == sum(len(t.encode()) + 1 for t in TEXTS) and on_file.bpb > 0
    on_val = evaluate_run(train_ws.runs_dir / "r", shards_dir=train_ws.shards_dir, batch_size=4)
    logged = [
        json.loads(line) for line in (train_ws.runs_dir / "r" / "metrics.jsonl").read_text().splitlines()
    ]
    assert on_val.loss == pytest.approx(logged[-1]["val_loss"], rel=1e-4)  # the trainer's own validation


def test_read_texts_names_a_bad_line(tmp_path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine"}\n{"txt": "no"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: no 'text'"):
        read_texts(path)
    plain = tmp_path / "posts.txt"
    plain.write_text("one\n\ntwo\n")
    assert read_texts(plain) == ["one", "two"]


def test_real_posts(train_ws: Workspace) -> None:
    texts = read_texts(need(REAL_POSTS), limit=200)
    train(train_ws, tiny(max_steps=2, eval_every=0), "r")
    model, _ = load_model(train_ws.runs_dir / "r")
    result = evaluate_texts(model, load_tokenizer(train_ws.tokenizer_dir), texts, seq_len=32)
    assert result.bytes == sum(len(t.encode()) + 1 for t in texts) and math.isfinite(result.bpb)
