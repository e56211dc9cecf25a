"""Answers cite the posts they rest on, every sentence; with nothing relevant they abstain."""

from __future__ import annotations

from pathlib import Path

import pytest

from roost.posts import Event
from roost.search.answer import Answerer
from roost.search.embedder import engine_for
from roost.search.retrieve import Retriever
from roost.search.text import content_terms
from tests.search.conftest import open_index, post
from tests.serve.fixtures import RUN

POSTS = [
    ("a1", "The new tram line to the harbour opened today and the tram was packed"),
    ("a2", "Took the new tram to the harbour, twenty minutes faster than the bus"),
    ("a3", "The tram line to the harbour is late again, third time this week"),
    ("a4", "Harbour tram tickets cost too much for a ten minute ride"),
    ("b1", "Best ramen in the old town is still the tiny place by the station"),
    ("b2", "Tried the ramen place by the station, the broth is incredible"),
    ("c1", "Rain all weekend, the garden finally looks green"),
]


@pytest.fixture
def index(tmp_path: Path, model):
    index = open_index(tmp_path / "index", model.embedder, answer_min_similarity=0.2)
    index.apply(
        [Event.of_post(post(pid, text, minutes=i, author=f"u{i}")) for i, (pid, text) in enumerate(POSTS)]
    )
    assert index.wait_dense(30)
    yield index
    index.close()


def check_citations(answer) -> None:
    returned = {h.post.id: h.post for h in answer.posts}
    assert answer.sentences
    for sentence in answer.sentences:
        assert sentence.citations, f"uncited sentence: {sentence.text!r}"
        for pid in sentence.citations:
            assert pid in returned, f"{pid} is cited but not returned"
            assert content_terms(sentence.text) & content_terms(returned[pid].text)


def test_every_sentence_cites_returned_posts_that_support_it(index) -> None:
    answer = Answerer(Retriever(index)).answer("harbour tram")
    assert not answer.abstained
    check_citations(answer)
    cited = {pid for s in answer.sentences for pid in s.citations}
    assert cited <= {"a1", "a2", "a3", "a4"}
    assert "c1" not in {h.post.id for h in answer.posts}  # not about the query: not returned
    assert answer.text.endswith("]")


def test_generated_sentences_are_checked_and_replaced_when_unsupported(index, model) -> None:
    generator = engine_for(model.ws, RUN, max_batch=4, cuda_graphs=False, device="cpu", dtype="float32")
    try:
        answerer = Answerer(Retriever(index), generator)
        answer = answerer.answer("ramen station")
        # The tiny model's sentence shares no words with the posts, so it cannot stand: the answer
        # quotes a post instead, and still cites only posts that support it.
        check_citations(answer)
        assert {pid for s in answer.sentences for pid in s.citations} <= {"b1", "b2"}
        assert answerer.supporting("the cat broke the fence", answer.posts) == []
    finally:
        generator.close()


def test_nothing_relevant_means_abstaining(index) -> None:
    answer = Answerer(Retriever(index)).answer("quantum chromodynamics lecture")
    assert answer.abstained and not answer.sentences and answer.reason
