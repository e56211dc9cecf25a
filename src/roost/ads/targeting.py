"""Contextual targeting: which campaigns fit the conversation an ad slot sits in.

Through the search index (roost.search), each campaign's keywords and topics are searched
lexically, and its brief is embedded and searched densely, over the last
`targeting_window_hours` of posts; the two rankings are fused by reciprocal rank fusion (search's
own `rrf`). The top `targeting_posts` are the campaign's live conversations: a slot next to one of
those posts, a reply to it or a quote of it, matches. The search is repeated every
`targeting_refresh_s`, and `preview` shows an advertiser exactly those posts.

Posts newer than the last search still match directly: a keyword of the campaign in the slot's
text (the index's own analyzer: same stemming, same accent folding), or one of its topics as the
topic model reads the text. A campaign with no keywords, topics or brief runs everywhere that
its languages and brand-safety rules allow. What matched becomes a feature of the click model.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated

import msgspec
import numpy as np

from roost.ads.config import AdsConfig
from roost.ads.safety import SafetyClassifier
from roost.ads.store import Campaign, from_ms
from roost.ads.topics import TopicModel
from roost.posts import Post
from roost.search.query import Filters, SearchRequest
from roost.search.retrieve import Retriever, rrf
from roost.search.text import hashtags_in, normalize_tag, terms

PostId = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


class ContextPost(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A post next to an ad slot (or among the search results it sits in)."""

    id: PostId
    text: Annotated[str, msgspec.Meta(max_length=10_000)]
    lang: Annotated[str, msgspec.Meta(max_length=20)] | None = None
    author_id: Annotated[str, msgspec.Meta(max_length=100)] = ""
    reply_to: PostId | None = None
    quote_of: PostId | None = None
    repost_of: PostId | None = None

    @classmethod
    def of(cls, post: Post) -> ContextPost:
        return cls(
            id=post.id,
            text=post.text,
            lang=post.lang,
            author_id=post.author_id,
            reply_to=post.reply_to,
            quote_of=post.quote_of,
            repost_of=post.repost_of,
        )


class Context:
    """What is known about where a slot is: the posts' and query's words, tags and topics, the
    conversations they belong to, and the sensitive categories they fall in."""

    def __init__(
        self,
        posts: Sequence[ContextPost],
        query: str,
        *,
        topics: TopicModel | None,
        safety: SafetyClassifier,
        topic_threshold: float,
    ) -> None:
        texts = [p.text for p in posts] + ([query] if query.strip() else [])
        self.conversation_ids = {i for p in posts for i in (p.id, p.reply_to, p.quote_of, p.repost_of) if i}
        self.terms = " " + " ".join(" ".join(terms(t)) for t in texts) + " "
        self.hashtags = {normalize_tag(tag) for t in texts for tag in hashtags_in(t)}
        self.langs = {p.lang for p in posts if p.lang}
        self.categories: frozenset[str] = (
            frozenset().union(*safety.categories(texts)) if texts else frozenset()
        )
        self.topics: dict[str, float] = {}
        if topics is not None and texts:
            proba = topics.proba(texts).max(axis=0)
            self.topics = {
                topics.labels[j]: float(proba[j]) for j in np.flatnonzero(proba >= topic_threshold)
            }

    @property
    def top_topic(self) -> str | None:
        return max(self.topics, key=self.topics.get) if self.topics else None


class Match(msgspec.Struct, frozen=True):
    """How a campaign matched a slot: a live conversation, a keyword, a topic, or broad (a
    campaign that targets everywhere)."""

    kind: str
    detail: str = ""


class Targets:
    """One campaign's targeting, compiled for matching, with its live conversations."""

    def __init__(self, campaign: Campaign) -> None:
        t = campaign.targeting
        self.campaign_id = campaign.id
        self.spec = msgspec.json.encode(t)  # recompiled when this changes
        self.keywords = list(t.keywords)
        self.phrases = [
            " " + " ".join(terms(k)) + " " for k in t.keywords if not k.startswith("#") and terms(k)
        ]
        self.hashtags = {normalize_tag(k) for k in t.keywords if k.startswith("#") and len(k) > 1}
        self.topics = set(t.topics)
        self.languages = set(t.languages)
        self.brief = t.brief or " ".join(t.keywords + [topic.replace("_", " ") for topic in t.topics])
        self.broad = not (t.keywords or t.topics or t.brief)
        self.conversations: set[str] = set()
        self.searched_ms: int | None = None

    def query(self) -> str:
        """The campaign's lexical query: its keywords (phrases quoted) and topic names, any of them."""
        parts = [f'"{k.strip()}"' if " " in k.strip() else k.strip() for k in self.keywords]
        return " ".join(parts + [topic.replace("_", " ") for topic in sorted(self.topics)])

    def match(self, context: Context) -> Match | None:
        if self.broad:
            return Match("broad")
        if self.conversations & context.conversation_ids:
            return Match("conversation")
        for phrase in self.phrases:
            if phrase in context.terms:
                return Match("keyword", phrase.strip())
        tag = next(iter(self.hashtags & context.hashtags), None)
        if tag is not None:
            return Match("keyword", "#" + tag)
        topic = next((t for t in sorted(self.topics) if t in context.topics), None)
        if topic is not None:
            return Match("topic", topic)
        return None


class TargetHit(msgspec.Struct):
    """A live conversation a campaign would target, as the preview shows it."""

    post: Post
    score: float  # fused relevance (reciprocal rank fusion)
    lexical_rank: int | None
    dense_rank: int | None
    similarity: float | None  # cosine similarity of the post to the brief
    categories: list[str] = []  # brand-safety categories of the post
    blocked: bool = False  # in a category the campaign (or the platform floor) blocks: never served


class Targeter:
    """Every campaign's Targets, and searches of the index for their live conversations."""

    def __init__(self, config: AdsConfig, retriever: Retriever | None) -> None:
        self.config = config
        self.retriever = retriever
        self.targets: dict[int, Targets] = {}
        self._brief_vectors: dict[str, np.ndarray] = {}

    def update(self, campaigns: Sequence[Campaign]) -> None:
        """Track these campaigns (a changed targeting is recompiled and searched again)."""
        fresh: dict[int, Targets] = {}
        for campaign in campaigns:
            known = self.targets.get(campaign.id)
            if known is not None and known.spec == msgspec.json.encode(campaign.targeting):
                fresh[campaign.id] = known
            else:
                fresh[campaign.id] = Targets(campaign)
        self.targets = fresh

    def refresh(self, now_ms: int) -> int:
        """Search again for every campaign whose conversations are older than targeting_refresh_s;
        returns how many were searched."""
        if self.retriever is None:
            return 0
        due_ms = int(self.config.targeting_refresh_s * 1000)
        searched = 0
        for targets in self.targets.values():
            if targets.broad or (targets.searched_ms is not None and now_ms - targets.searched_ms < due_ms):
                continue
            hits = self.search(targets, now_ms, self.config.targeting_posts)
            targets.conversations = {h.post.id for h in hits}
            targets.searched_ms = now_ms
            searched += 1
        return searched

    def search(self, targets: Targets, now_ms: int, limit: int) -> list[TargetHit]:
        """The recent posts that best fit a campaign, best first (empty without an index)."""
        if self.retriever is None or targets.broad:
            return []
        index = self.retriever.index
        since = from_ms(now_ms) - dt.timedelta(hours=self.config.targeting_window_hours)
        lang = next(iter(targets.languages)) if len(targets.languages) == 1 else None
        filters = Filters(since=since, until=from_ms(now_ms + 1), lang=lang)
        lexical: list[int] = []
        query = targets.query()
        if query.strip():
            request = SearchRequest(query=query, filters=filters, mode="lexical", limit=limit)
            found = self.retriever.search(request).hits
            keys = [index.store.key_of(h.post.id) for h in found]
            lexical = [k for k in keys if k is not None]
        dense: list[tuple[int, float]] = []
        if index.embedder is not None and targets.brief.strip():
            vector = self._brief_vector(targets.brief)
            dense = [
                (k, s)
                for k, s in index.dense_search(vector, filters, limit)
                if s >= self.config.targeting_min_similarity
            ]
        fused = rrf([lexical, [k for k, _ in dense]], index.config.rrf_k)
        order = sorted(fused, key=lambda k: -fused[k])
        posts = index.posts(order)
        lexical_rank = {k: r for r, k in enumerate(lexical, start=1)}
        dense_rank = {k: r for r, (k, _) in enumerate(dense, start=1)}
        similarity = dict(dense)
        hits = []
        for key in order:
            post = posts.get(key)
            if post is None or (targets.languages and post.lang not in targets.languages):
                continue
            hits.append(
                TargetHit(post, fused[key], lexical_rank.get(key), dense_rank.get(key), similarity.get(key))
            )
            if len(hits) == limit:
                break
        return hits

    def _brief_vector(self, brief: str) -> np.ndarray:
        vector = self._brief_vectors.get(brief)
        if vector is None:
            vector = self.retriever.index.embedder.embed([brief])[0]
            self._brief_vectors[brief] = vector
        return vector
