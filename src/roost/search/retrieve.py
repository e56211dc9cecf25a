"""Hybrid retrieval over a SearchIndex: lexical and dense candidates fused by reciprocal rank fusion,
then ordered by a normalised mix of that relevance with recency and engagement; query suggestions
and trending hashtags.

Fusion: each side ranks up to `candidates` posts; a post's fused relevance is the sum over the sides
that found it of 1 / (k + rank), k = 60 (Cormack, Clarke & Buettcher 2009), which needs no score
calibration between BM25 and cosine similarity. The final score for `sort=top` is
    w_rel · fused / max(fused) + w_rec · 0.5^(age / half-life) + w_eng · log1p(e) / log1p(max e)
with age measured from the newest post in the index (the stream's clock, not the wall's, so an
imported or simulated past ranks as it did then) and e the live engagement. `sort=latest` keeps
the posts that match (every word lexically, or the query's meaning above `dense_min_similarity`)
and orders them newest first.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from roost.search.index import SearchIndex
from roost.search.query import Filters, Hit, SearchRequest, SearchResponse, Sort, Suggestion, Trend
from roost.search.text import ParsedQuery, normalize_tag, parse_query, terms


def rrf(rankings: Sequence[Sequence[int]], k: int = 60) -> dict[int, float]:
    """Reciprocal rank fusion of ranked key lists (best first): key -> sum of 1 / (k + rank)."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, start=1):
            fused[key] = fused.get(key, 0.0) + 1.0 / (k + rank)
    return fused


def normalise_query(query: str) -> str:
    """How queries are counted for suggestions: case-folded, spaces collapsed."""
    return " ".join(query.casefold().split())


class Retriever:
    """Search, suggestions and trends over `index`. `generator` (an Engine, optional) writes the
    model's continuations of a typed prefix."""

    def __init__(self, index: SearchIndex, generator: Any | None = None, *, log_queries: bool = True) -> None:
        self.index = index
        self.config = index.config
        self.generator = generator
        self.log_queries = log_queries and not index.readonly

    # -- search -----------------------------------------------------------------------------------
    def embed_query(self, parsed: ParsedQuery) -> np.ndarray | None:
        text = parsed.text()
        if self.index.embedder is None or not text:
            return None
        return self.index.embedder.embed([text])[0]

    def search(self, request: SearchRequest) -> SearchResponse:
        request.check()
        started = time.perf_counter()
        parsed = parse_query(request.query)
        hits = self._latest(request, parsed) if request.sort == "latest" else self._top(request, parsed)
        if self.log_queries and request.query.strip():
            self.index.store.log_query(normalise_query(request.query), self.index.columns.max_created)
        took = (time.perf_counter() - started) * 1000
        return SearchResponse(request.query, request.sort, request.mode, hits, took)

    def _sides(
        self, request: SearchRequest, parsed: ParsedQuery, *, latest: bool
    ) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
        index, n = self.index, max(self.config.candidates, request.limit)
        lexical: list[tuple[int, float]] = []
        dense: list[tuple[int, float]] = []
        if request.mode != "dense" and (parsed.positive or request.filters.any):
            lexical = index.lexical_search(parsed, request.filters, n, latest=latest)
        if request.mode != "lexical":
            vector = self.embed_query(parsed)
            if vector is not None:
                dense = index.dense_search(vector, request.filters, n)
                dense = self._without_excluded(dense, parsed)
        return lexical, dense

    def _top(self, request: SearchRequest, parsed: ParsedQuery) -> list[Hit]:
        lexical, dense = self._sides(request, parsed, latest=False)
        lexical_rank = {key: r for r, (key, _) in enumerate(lexical, start=1)}
        dense_rank = {key: r for r, (key, _) in enumerate(dense, start=1)}
        similarity = dict(dense)
        fused = rrf([[k for k, _ in lexical], [k for k, _ in dense]], self.config.rrf_k)
        if not fused:
            return []
        keys = np.fromiter(fused, np.int64, len(fused))
        relevance = np.fromiter(fused.values(), np.float64, len(fused))
        score = self.final_scores(keys, relevance)
        order = np.argsort(-score, kind="stable")[: request.limit]
        chosen = keys[order]
        posts = self.index.posts(chosen.tolist())
        return [
            Hit(posts[k], float(score[i]), lexical_rank.get(k), dense_rank.get(k), similarity.get(k))
            for i, k in zip(order.tolist(), chosen.tolist(), strict=True)
            if k in posts
        ]

    def by_vector(
        self,
        vector: np.ndarray,
        filters: Filters | None = None,
        *,
        limit: int = 20,
        sort: Sort = "top",
        min_similarity: float | None = None,
    ) -> list[Hit]:
        """Posts near an embedding (unit length, the index's embedder's space), e.g. an ad's or a
        user's: `top` by similarity mixed with recency and engagement, `latest` newest first among
        those at `min_similarity` or more ([search] dense_min_similarity by default)."""
        if self.index.embedder is None:
            raise ValueError('this index has no embedder ([search] embedder = "none")')
        if vector.shape != (self.index.embedder.dim,):
            raise ValueError(
                f"the vector has shape {vector.shape}; this index's is ({self.index.embedder.dim},)"
            )
        filters = filters or Filters()
        found = self.index.dense_search(
            vector.astype(np.float32), filters, max(limit, self.config.candidates)
        )
        floor = self.config.dense_min_similarity if min_similarity is None else min_similarity
        if sort == "latest":
            created = self.index.columns.created
            chosen = sorted((k for k, s in found if s >= floor), key=lambda k: (-created[k], -k))[:limit]
            scores = [float(created[k]) for k in chosen]
        else:
            kept = [(k, s) for k, s in found if min_similarity is None or s >= floor]
            if not kept:
                return []
            keys = np.fromiter((k for k, _ in kept), np.int64, len(kept))
            relevance = np.fromiter(
                (1.0 / (self.config.rrf_k + r) for r in range(1, len(kept) + 1)), np.float64
            )
            score = self.final_scores(keys, relevance)
            order = np.argsort(-score, kind="stable")[:limit]
            chosen, scores = keys[order].tolist(), score[order].tolist()
        similarity = dict(found)
        rank = {k: r for r, (k, _) in enumerate(found, start=1)}
        posts = self.index.posts(chosen)
        return [
            Hit(posts[k], sc, None, rank[k], similarity[k])
            for k, sc in zip(chosen, scores, strict=True)
            if k in posts
        ]

    def final_scores(self, keys: np.ndarray, relevance: np.ndarray) -> np.ndarray:
        """The normalised mix of relevance, recency and engagement (module docstring)."""
        c, cols = self.config, self.index.columns
        rel = relevance / relevance.max() if relevance.max() > 0 else relevance
        age_hours = (cols.max_created - cols.created[keys]) / 3_600_000.0
        recency = np.power(0.5, np.maximum(age_hours, 0.0) / c.recency_halflife_hours)
        engagement = np.log1p(cols.engagement[keys].astype(np.float64))
        top = engagement.max() if len(engagement) else 0.0
        engaged = engagement / top if top > 0 else np.zeros_like(engagement)
        return c.weight_relevance * rel + c.weight_recency * recency + c.weight_engagement * engaged

    def _latest(self, request: SearchRequest, parsed: ParsedQuery) -> list[Hit]:
        lexical, dense = self._sides(request, parsed, latest=True)
        matched = {key for key, _ in lexical}
        similarity = {k: s for k, s in dense if s >= self.config.dense_min_similarity}
        matched.update(similarity)
        created = self.index.columns.created
        chosen = sorted(matched, key=lambda k: (-created[k], -k))[: request.limit]
        posts = self.index.posts(chosen)
        lexical_rank = {key: r for r, (key, _) in enumerate(lexical, start=1)}
        dense_rank = {key: r for r, (key, _) in enumerate(dense, start=1)}
        return [
            Hit(posts[k], float(created[k]), lexical_rank.get(k), dense_rank.get(k), similarity.get(k))
            for k in chosen
            if k in posts
        ]

    def _without_excluded(
        self, dense: list[tuple[int, float]], parsed: ParsedQuery
    ) -> list[tuple[int, float]]:
        """Dense hits know nothing of `-word`: drop those whose text has an excluded word or tag."""
        if not (parsed.excluded_words or parsed.excluded_hashtags or parsed.excluded_phrases):
            return dense
        banned_words = set(parsed.excluded_words)
        banned_tags = {normalize_tag(t) for t in parsed.excluded_hashtags}
        posts = self.index.posts([k for k, _ in dense])
        kept = []
        for key, sim in dense:
            post = posts.get(key)
            if post is None:
                continue
            words = " " + " ".join(terms(post.text)) + " "
            if banned_words & set(words.split()) or banned_tags & {normalize_tag(t) for t in post.hashtags}:
                continue
            if any(f" {' '.join(p)} " in words for p in parsed.excluded_phrases):
                continue
            kept.append((key, sim))
        return kept

    # -- suggestions --------------------------------------------------------------------------------
    def suggest(self, prefix: str, limit: int | None = None) -> list[Suggestion]:
        """Completions of a typed prefix: popular past queries that start with it, hashtags (for
        `#...`), then the model's continuations, without repeats."""
        limit = limit or self.config.suggest_limit
        typed = normalise_query(prefix)
        if not typed:
            return []
        out: dict[str, Suggestion] = {}
        for query, count in self.index.store.popular_queries(typed, limit):
            out.setdefault(query, Suggestion(query, "popular", count))
        if typed.startswith("#") and len(out) < limit:
            for tag, count in self.index.store.tags_with_prefix(normalize_tag(typed), limit):
                out.setdefault("#" + tag, Suggestion("#" + tag, "hashtag", count))
        if self.generator is not None and len(out) < limit:
            for text in self._continuations(prefix, limit - len(out)):
                out.setdefault(normalise_query(text), Suggestion(normalise_query(text), "model"))
        return list(out.values())[:limit]

    def _continuations(self, prefix: str, n: int) -> list[str]:
        """The model's likely next words after the prefix: a few sampled continuations (seeded),
        each cut after the word it completes and at most two more."""
        from roost.serve.sampling import SamplingParams

        params = SamplingParams(max_tokens=8, temperature=0.7, top_p=0.9, n=max(1, min(n, 4)), seed=0)
        try:
            generation = self.generator.generate([prefix], params)[0]
        except ValueError:
            return []
        found = []
        for choice in generation.choices:
            words = (prefix + choice.text).split("\n")[0].split()
            typed_words = len(prefix.split())
            keep = words[: typed_words + (2 if prefix.endswith(" ") else 3)]
            text = " ".join(keep).strip()
            if text and text != prefix.strip() and len(text) > len(prefix.strip()):
                found.append(text)
        return found

    # -- trends ---------------------------------------------------------------------------------------
    def trending(
        self,
        window: dt.timedelta = dt.timedelta(hours=1),
        *,
        limit: int = 10,
        now: dt.datetime | None = None,
        baseline_windows: int = 24,
        min_count: int = 3,
    ) -> list[Trend]:
        """Hashtags used more in the last `window` than the `baseline_windows` before it predict:
        score (count - expected) / sqrt(expected + 1), a Poisson z-score with one pseudo-count, so a
        tag new this hour with many posts ranks high and a steady popular tag does not."""
        end = int(now.timestamp() * 1000) if now is not None else self.index.columns.max_created + 1
        span = int(window.total_seconds() * 1000)
        if span <= 0:
            raise ValueError("the window must be positive")
        store = self.index.store
        current = store.tag_counts(end - span, end)
        before = store.tag_counts(end - span * (1 + baseline_windows), end - span)
        trends = []
        for tag, count in current.items():
            if count < min_count:
                continue
            expected = before.get(tag, 0) / baseline_windows
            trends.append(Trend(tag, count, expected, (count - expected) / math.sqrt(expected + 1.0)))
        trends.sort(key=lambda t: (-t.score, t.hashtag))
        return trends[:limit]
