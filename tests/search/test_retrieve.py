"""Retrieval on a simulated corpus with known answers: every filter and sort returns exactly the
posts that match; fusion, suggestions and trends."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from roost.posts import Event, Post
from roost.search.query import Filters, SearchRequest
from roost.search.retrieve import Retriever, rrf
from roost.search.text import has_links, indexed_text, normalize_tag, terms
from tests.search.conftest import open_index, post


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, model, sim_events):
    """The index over the simulated events, and the posts that should be in it (not deleted)."""
    index = open_index(tmp_path_factory.mktemp("corpus") / "index", model.embedder)
    for start in range(0, len(sim_events), 400):
        index.apply(sim_events[start : start + 400])
    assert index.wait_dense(120)
    deleted = {e.id for e in sim_events if e.type == "delete"}
    alive = {e.id: e.post for e in sim_events if e.post is not None and e.id not in deleted}
    yield index, alive
    index.close()


def passes(p: Post, f: Filters) -> bool:
    created = p.created_at
    return (
        (f.since is None or created >= f.since)
        and (f.until is None or created < f.until)
        and (f.lang is None or p.lang == f.lang)
        and (f.author is None or p.author_id == f.author)
        and (f.hashtag is None or normalize_tag(f.hashtag) in {normalize_tag(t) for t in p.hashtags})
        and (f.has_links is None or has_links(p) == f.has_links)
    )


def filter_cases(alive: dict[str, Post]) -> list[Filters]:
    posts = sorted(alive.values(), key=lambda p: p.created_at)
    authors: dict[str, int] = {}
    tags: dict[str, int] = {}
    for p in posts:
        authors[p.author_id] = authors.get(p.author_id, 0) + 1
        for t in p.hashtags:
            tags[normalize_tag(t)] = tags.get(normalize_tag(t), 0) + 1
    busiest = max(authors, key=authors.__getitem__)
    tag = max(tags, key=tags.__getitem__)
    middle = posts[len(posts) // 3].created_at, posts[len(posts) // 2].created_at
    return [
        Filters(lang="es"),
        Filters(author=busiest),
        Filters(hashtag=tag.upper()),
        Filters(has_links=True),
        Filters(since=middle[0], until=middle[1]),
        Filters(since=middle[1], lang="en", has_links=False),
    ]


def words_of(p: Post) -> set[str]:
    return set(terms(indexed_text(p)))


@pytest.mark.parametrize("case", range(6))
def test_filters_and_sorts_return_exactly_the_matching_posts(corpus, case: int) -> None:
    index, alive = corpus
    retriever = Retriever(index, log_queries=False)
    f = filter_cases(alive)[case]
    allowed = {pid for pid, p in alive.items() if passes(p, f)}
    assert allowed, "each case should let some posts through"

    # Filters alone, newest first: exactly the posts that pass, in time order.
    latest = retriever.search(SearchRequest(filters=f, sort="latest", mode="lexical", limit=1000)).hits
    assert {h.post.id for h in latest} == allowed
    times = [h.post.created_at for h in latest]
    assert times == sorted(times, reverse=True)

    # One word, latest: the posts that pass and contain it.
    word = "match" if case != 0 else "partido"
    expected = {pid for pid in allowed if terms(word)[0] in words_of(alive[pid])}
    got = retriever.search(
        SearchRequest(query=word, filters=f, sort="latest", mode="lexical", limit=1000)
    ).hits
    assert {h.post.id for h in got} == expected

    # Two words, top (any word): exactly the posts with either, best BM25 first.
    query = "coffee album"
    wanted = set(terms(query))
    expected = {pid for pid in allowed if wanted & words_of(alive[pid])}
    got = retriever.search(SearchRequest(query=query, filters=f, mode="lexical", limit=1000)).hits
    assert {h.post.id for h in got} == expected

    # Hybrid: every lexical match is there, and nothing the filters exclude.
    hybrid = retriever.search(SearchRequest(query=query, filters=f, mode="hybrid", limit=1000)).hits
    assert expected <= {h.post.id for h in hybrid}
    assert all(passes(h.post, f) and h.post.id in alive for h in hybrid)

    # Dense alone respects the filters too (exact scoring when they are selective).
    dense = retriever.search(SearchRequest(query=query, filters=f, mode="dense", limit=50)).hits
    assert dense and all(passes(h.post, f) and h.post.id in alive for h in dense)
    assert all(h.dense_rank is not None and h.lexical_rank is None for h in dense)


def test_posts_near_an_embedding_with_filters(corpus) -> None:
    index, alive = corpus
    retriever = Retriever(index, log_queries=False)
    anchor = next(p for p in alive.values() if p.lang == "es")
    vector = index.embedder.embed([indexed_text(anchor)])[0]
    f = Filters(lang="es")
    top = retriever.by_vector(vector, f, limit=10)
    assert top[0].post.id == anchor.id and all(h.post.lang == "es" for h in top)
    latest = retriever.by_vector(vector, f, limit=10, sort="latest", min_similarity=0.0)
    times = [h.post.created_at for h in latest]
    assert len(latest) == 10 and times == sorted(times, reverse=True)
    with pytest.raises(ValueError, match="shape"):
        retriever.by_vector(vector[:5])


def test_excluded_words_phrases_and_hashtags(corpus) -> None:
    index, _ = corpus
    retriever = Retriever(index, log_queries=False)
    hits = retriever.search(SearchRequest(query="match -football", limit=200)).hits
    assert hits and all("footbal" not in words_of(h.post) for h in hits)
    phrase = retriever.search(SearchRequest(query='"the match"', mode="lexical", limit=200)).hits
    assert phrase and all("the match" in " ".join(terms(indexed_text(h.post))) for h in phrase)


def test_reciprocal_rank_fusion() -> None:
    fused = rrf([[1, 2, 3], [3, 1]], k=60)
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[2] == pytest.approx(1 / 62)
    assert fused[3] == pytest.approx(1 / 63 + 1 / 61)


def test_top_weighs_recency_and_engagement(tmp_path: Path) -> None:
    index = open_index(tmp_path / "index")
    old = post("old", "lighthouse tour review", minutes=0)
    new = post("new", "lighthouse tour review", minutes=60 * 24 * 3)
    index.apply([Event.of_post(old), Event.of_post(new)])
    retriever = Retriever(index, log_queries=False)
    assert [h.post.id for h in retriever.search(SearchRequest(query="lighthouse")).hits] == ["new", "old"]
    # Enough replies to the old post outweigh three days (engagement grows after indexing).
    replies = [post(f"r{i}", f"reply {i}", minutes=60 * 24 * 3 + 1 + i, reply_to="old") for i in range(200)]
    index.apply([Event.of_post(r) for r in replies])
    assert [h.post.id for h in retriever.search(SearchRequest(query="lighthouse")).hits] == ["old", "new"]
    index.close()


def test_trending_finds_the_burst_not_the_steady_tag(tmp_path: Path) -> None:
    index = open_index(tmp_path / "index")
    events = []
    for hour in range(25):
        for i in range(3):
            events.append(
                Event.of_post(
                    post(f"w{hour}-{i}", "grey skies #weather", minutes=60 * hour + i, hashtags=["weather"])
                )
            )
    for i in range(12):
        events.append(
            Event.of_post(
                post(f"n{i}", "#NovaLaunch today", minutes=60 * 24 + 2 + i, hashtags=["NovaLaunch"])
            )
        )
    index.apply(events)
    trends = Retriever(index).trending(dt.timedelta(hours=1))
    assert trends[0].hashtag == "novalaunch" and trends[0].count == 12
    weather = next(t for t in trends if t.hashtag == "weather")
    assert (
        weather.count == 3 and weather.expected == pytest.approx(3.0) and weather.score == pytest.approx(0.0)
    )
    index.close()


def test_suggestions_popular_hashtags_and_model(tmp_path: Path, model) -> None:
    from roost.search.embedder import engine_for
    from tests.serve.fixtures import RUN

    index = open_index(tmp_path / "index")
    index.apply(
        [
            Event.of_post(post("t1", "derby day #football", hashtags=["football"])),
            Event.of_post(post("t2", "wrapping up #fooddiary", minutes=1, hashtags=["fooddiary"])),
        ]
    )
    retriever = Retriever(index)
    for query in ["football scores"] * 3 + ["Football  transfer", "fashion week"]:
        retriever.search(SearchRequest(query=query, mode="lexical"))
    popular = retriever.suggest("foo")
    assert [(s.text, s.source, s.count) for s in popular] == [
        ("football scores", "popular", 3),
        ("football transfer", "popular", 1),
    ]
    assert {s.text for s in retriever.suggest("#foo")} == {"#football", "#fooddiary"}
    generator = engine_for(model.ws, RUN, max_batch=4, cuda_graphs=False, device="cpu", dtype="float32")
    try:
        with_model = Retriever(index, generator).suggest("the cat", limit=4)
    finally:
        generator.close()
    made = [s for s in with_model if s.source == "model"]
    assert made and all(s.text.startswith("the cat") and len(s.text) > len("the cat") for s in made)
    index.close()


def test_bad_requests_are_refused(tmp_path: Path) -> None:
    index = open_index(tmp_path / "index")
    retriever = Retriever(index)
    with pytest.raises(ValueError, match="give a query"):
        retriever.search(SearchRequest(query="  "))
    when = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="since must be before until"):
        retriever.search(SearchRequest(query="x", filters=Filters(since=when, until=when)))
    index.close()
