"""Contrastive tuning of the embedder: pairs from replies and hashtags, a loss that falls and
held-out pairs that are found more often afterwards; the result loads as an embedder."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from roost.firehose.simulate import SimConfig, simulate
from roost.search.embedder import load_embedder
from roost.search.tune import (
    Encoder,
    TuneConfig,
    cooccurrence_init,
    make_pairs,
    recall_at_1,
    save_embedder,
    small_model,
    tokenizer_for,
    tune,
    without_tag,
)
from roost.workspace import Workspace
from tests.search.conftest import post


def test_pairs_come_from_replies_and_hashtags_with_the_tag_cut_out() -> None:
    posts = [
        post("p", "@x who won the #derby today?", hashtags=["derby"]),
        post("r", "@p the home side, 2-1", minutes=1, reply_to="p"),
        post("q", "What a #Derby, loud all night", minutes=2, hashtags=["Derby"]),
    ]
    pairs = make_pairs(posts)
    kinds = {(p.kind, p.query, p.positive) for p in pairs}
    assert ("reply", "who won the #derby today?", "the home side, 2-1") in kinds
    assert ("tag-query", "derby", "What a , loud all night") in kinds
    assert ("hashtag", "who won the today?", "What a , loud all night") in kinds or (
        "hashtag",
        "What a , loud all night",
        "who won the today?",
    ) in kinds
    assert without_tag("go #NBA go #nba!", "nba") == "go go !"


@pytest.mark.slow
def test_cooccurrence_start_and_tuning_find_held_out_pairs(tmp_path: Path) -> None:
    posts = [e.post for e in itertools.islice(simulate(SimConfig(seed=5)), 6000) if e.post is not None]
    pairs = make_pairs(posts)
    assert {p.kind for p in pairs} == {"reply", "hashtag", "tag-query"}
    tokenizer = tokenizer_for([p.text for p in posts], vocab_size=1024)
    torch.manual_seed(0)
    model = small_model(tokenizer)
    held = pairs[:256]
    encode = Encoder(tokenizer, 32)
    random_start = recall_at_1(model, encode, held)
    cooccurrence_init(model, tokenizer, [p.text for p in posts])
    cooccurrence_start = recall_at_1(model, encode, held)
    report = tune(model, tokenizer, pairs, TuneConfig(steps=40, batch=32, max_tokens=32, eval_pairs=128))
    print(
        f"\nheld-out recall@1: random start {random_start:.3f}, "
        f"co-occurrence start {cooccurrence_start:.3f}; "
        f"tuning loss {report.loss_first:.2f} -> {report.loss_last:.2f} in {report.seconds:.1f} s"
    )
    assert cooccurrence_start > random_start
    assert report.loss_last < report.loss_first

    ws = Workspace(tmp_path / "home").ensure()
    saved = save_embedder(model, tokenizer, ws.index_dir / "embedder", steps=report.steps)
    embedder = load_embedder(ws, "auto", ws.index_dir)  # "auto" finds the tuned one
    try:
        assert embedder is not None and embedder.dim == model.config.dim
        vectors = embedder.embed(["derby day", "new album out"])
        assert vectors.shape == (2, model.config.dim)
        assert abs(float((vectors**2).sum(axis=1).mean()) - 1.0) < 1e-4
        assert saved.name == "embedder"
    finally:
        embedder.close()


def test_cooccurrence_start_takes_posts_that_tokenize_to_nothing() -> None:
    texts = ["rain again in the city", "", "the city rain"]
    tokenizer = tokenizer_for(texts, vocab_size=300)
    model = small_model(tokenizer)
    before = model.tok_embeddings.weight.detach().clone()
    cooccurrence_init(model, tokenizer, texts)
    assert not torch.equal(before, model.tok_embeddings.weight)
