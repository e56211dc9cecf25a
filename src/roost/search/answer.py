"""Answers to "what are people saying about X": retrieve, keep the posts that are really about X,
group them by what they say, write one sentence per group, and check every citation.

A post is about X when it shares a content word with the query or its embedding is closer to the
query's than almost all posts are (above the 99th percentile of the query's similarity to a sample
of the index, and above `answer_min_similarity`), a bar that follows the embedder's own scale
instead of trusting a fixed cosine; an index of under 100 posts has no such scale, and there only
shared words count. With none, the answer abstains.

Each sentence is generated from its group's posts and cites them; a citation stands only if the
post supports the sentence: embedding similarity of at least `answer_min_similarity` and at least
`answer_min_shared_terms` content words in common. Unsupported citations are dropped; a sentence
left with none is replaced by an extractive one (the group's most central post, quoted, which cites
it and is checked like any other), so every sentence of an answer cites posts returned with it.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np

from roost.search.query import Filters, Hit, SearchRequest
from roost.search.retrieve import Retriever
from roost.search.text import content_terms, parse_query

MAX_GROUPS = 3
GROUP_SIMILARITY = 0.8  # posts this similar (or sharing most words) tell the same thing
QUOTE_CHARS = 160
BACKGROUND_SAMPLE = 256
BACKGROUND_QUANTILE = 0.99
MIN_BACKGROUND = 100


class Sentence(msgspec.Struct):
    text: str
    citations: list[str]  # ids of posts in the answer's `posts`
    source: str  # "generated" (the model wrote it) or "quoted" (a post's own words)


class Answer(msgspec.Struct):
    query: str
    abstained: bool
    sentences: list[Sentence]
    posts: list[Hit]  # the posts the answer rests on, for a reader to check
    reason: str = ""  # why it abstained

    @property
    def text(self) -> str:
        return " ".join(f"{s.text} [{', '.join(s.citations)}]" for s in self.sentences)


class Answerer:
    """Writes cited answers from `retriever`'s results; `generator` (an Engine) is optional: without
    one, every sentence is quoted."""

    def __init__(self, retriever: Retriever, generator: Any | None = None) -> None:
        self.retriever = retriever
        self.index = retriever.index
        self.config = retriever.config
        self.generator = generator

    def answer(self, query: str, filters: Filters | None = None) -> Answer:
        request = SearchRequest(query=query, filters=filters or Filters(), limit=self.config.answer_posts)
        if not parse_query(query).positive:
            raise ValueError("ask about something: the query has no words to look for")
        hits = self.retriever.search(request).hits
        relevant = self._about(query, hits)
        if not relevant:
            return Answer(query, True, [], [], reason=f"no posts about {query!r} were found")
        vectors = self._embed([h.post.text for h in relevant])
        sentences = []
        for group in self._groups(relevant, vectors):
            sentence = self._write(
                query, [relevant[i] for i in group], vectors[group] if vectors is not None else None
            )
            if sentence is not None:
                sentences.append(sentence)
        cited = {pid for s in sentences for pid in s.citations}
        posts = [h for h in relevant if h.post.id in cited] + [h for h in relevant if h.post.id not in cited]
        if not sentences:
            return Answer(query, True, [], posts, reason="no sentence could be supported by the posts found")
        return Answer(query, False, sentences, posts)

    # -- which posts are about the query ------------------------------------------------------------
    def _about(self, query: str, hits: list[Hit]) -> list[Hit]:
        wanted = content_terms(parse_query(query).text())
        bar = self._dense_bar(query)
        about = []
        for hit in hits:
            shares = bool(wanted & content_terms(hit.post.text + " " + " ".join(hit.post.hashtags)))
            close = bar is not None and hit.similarity is not None and hit.similarity >= bar
            if shares or close:
                about.append(hit)
        return about

    def _dense_bar(self, query: str) -> float | None:
        """The similarity a post needs to count as about the query on meaning alone."""
        index = self.index
        if index.embedder is None or not index.vectors:
            return None
        alive = np.flatnonzero(index.columns.alive[: index.columns.size])
        if len(alive) < MIN_BACKGROUND:  # too few posts to tell "close" from "closest": words only
            return None
        rng = np.random.default_rng(0)
        sample = rng.choice(alive, size=min(BACKGROUND_SAMPLE, len(alive)), replace=False)
        vectors = [v.vectors(np.sort(sample))[1] for v in index.vectors.values()]
        matrix = np.concatenate(vectors) if vectors else np.empty((0, index.embedder.dim))
        if not len(matrix):
            return None
        q = index.embedder.embed([parse_query(query).text()])[0]
        background = float(np.quantile(matrix @ q, BACKGROUND_QUANTILE))
        return max(background, self.config.answer_min_similarity)

    # -- grouping -----------------------------------------------------------------------------------
    def _groups(self, hits: list[Hit], vectors: np.ndarray | None) -> list[list[int]]:
        """Greedy grouping in rank order: a post joins the first group whose leader it is close to."""
        leaders: list[int] = []
        groups: list[list[int]] = []
        terms = [content_terms(h.post.text) for h in hits]
        for i in range(len(hits)):
            for g, leader in enumerate(leaders):
                close = vectors is not None and float(vectors[i] @ vectors[leader]) >= GROUP_SIMILARITY
                overlap = len(terms[i] & terms[leader]) / max(1, min(len(terms[i]), len(terms[leader])))
                if close or overlap >= 0.6:
                    groups[g].append(i)
                    break
            else:
                if len(groups) < MAX_GROUPS:
                    leaders.append(i)
                    groups.append([i])
        return groups

    # -- writing and checking -------------------------------------------------------------------------
    def _write(self, query: str, group: list[Hit], vectors: np.ndarray | None) -> Sentence | None:
        generated = self._generate(query, group)
        if generated:
            cited = self.supporting(generated, group)
            if cited:
                return Sentence(generated, [h.post.id for h in cited], "generated")
        central = 0
        if vectors is not None and len(group) > 1:
            central = int((vectors @ vectors.mean(axis=0)).argmax())
        post = group[central].post
        words = " ".join(post.text.split())
        quote = words if len(words) <= QUOTE_CHARS else words[: QUOTE_CHARS - 1].rsplit(" ", 1)[0] + "…"
        many = f"{len(group)} posts say" if len(group) > 1 else "One post says"
        sentence = f"{many}: “{quote}”"
        cited = self.supporting(sentence, group)
        if not cited:
            return None
        return Sentence(sentence, [h.post.id for h in cited], "quoted")

    def supporting(self, sentence: str, hits: list[Hit]) -> list[Hit]:
        """The hits whose post supports `sentence`: enough shared content words and, where there is
        an embedder, enough similarity."""
        words = content_terms(sentence)
        vectors = self._embed([sentence] + [h.post.text for h in hits])
        kept = []
        for i, hit in enumerate(hits):
            shared = len(words & content_terms(hit.post.text))
            if shared < self.config.answer_min_shared_terms:
                continue
            if vectors is not None and float(vectors[0] @ vectors[i + 1]) < self.config.answer_min_similarity:
                continue
            kept.append(hit)
        return kept

    def _generate(self, query: str, group: list[Hit]) -> str:
        """One sentence from the model on what the group's posts say about the query ('' if none)."""
        if self.generator is None:
            return ""
        from roost.serve.sampling import SamplingParams

        listed = "\n".join(f"- {' '.join(h.post.text.split())[:280]}" for h in group[:6])
        messages = [
            {"role": "system", "content": "You summarise social media posts in one short sentence."},
            {
                "role": "user",
                "content": f"Posts about {query}:\n{listed}\nWhat are people saying about {query}?",
            },
        ]
        try:
            generation = self.generator.chat(messages, SamplingParams(max_tokens=48, temperature=0.0))
        except ValueError:  # the posts do not fit the model's context
            return ""
        text = " ".join(generation.text.split())
        end = max(text.find(". "), -1)
        return text[: end + 1] if end > 0 else text

    def _embed(self, texts: list[str]) -> np.ndarray | None:
        embedder = self.index.embedder
        return None if embedder is None else embedder.embed(texts)
