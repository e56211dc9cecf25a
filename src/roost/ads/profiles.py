"""What a user is interested in, as the platform can see it: the topics of the user's own recent
posts, read from the search index (posts by that author) by the topic model. The click model
crosses these with each campaign; the simulator's hidden affinities are never read."""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict

import numpy as np

from roost.ads.store import from_ms
from roost.ads.topics import TopicModel
from roost.search.query import Filters, SearchRequest
from roost.search.retrieve import Retriever


class UserProfiles:
    """Each user's top topics, recomputed when older than `ttl_s` (of request time)."""

    def __init__(
        self,
        retriever: Retriever,
        topics: TopicModel,
        *,
        posts: int = 30,
        window_hours: float = 24 * 7,
        top: int = 2,
        min_share: float = 0.2,
        ttl_s: float = 3600.0,
        cache_size: int = 100_000,
    ) -> None:
        self.retriever, self.topics = retriever, topics
        self.posts, self.window = posts, dt.timedelta(hours=window_hours)
        self.top, self.min_share, self.ttl_ms = top, min_share, int(ttl_s * 1000)
        self._cache: OrderedDict[str, tuple[int, list[str]]] = OrderedDict()
        self._cache_size = cache_size

    def interests(self, user_id: str, now_ms: int) -> list[str]:
        """Up to `top` topics, each at least `min_share` of what the user posted lately."""
        cached = self._cache.get(user_id)
        if cached is not None and now_ms - cached[0] < self.ttl_ms:
            return cached[1]
        now = from_ms(now_ms)
        request = SearchRequest(
            filters=Filters(author=user_id, since=now - self.window, until=from_ms(now_ms + 1)),
            sort="latest",
            mode="lexical",
            limit=self.posts,
        )
        texts = [hit.post.text for hit in self.retriever.search(request).hits]
        found: list[str] = []
        if texts:
            share = self.topics.proba(texts).mean(axis=0)
            for j in np.argsort(-share)[: self.top]:
                if share[j] >= self.min_share:
                    found.append(self.topics.labels[j])
        self._cache[user_id] = (now_ms, found)
        self._cache.move_to_end(user_id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return found
