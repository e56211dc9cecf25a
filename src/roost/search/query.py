"""What a search asks and what it gets back: the request (text, filters, sort, mode), each hit with
how the two retrievers ranked it, and the records of suggestions and trends. Shared by the Python
API, the CLI and the HTTP routes."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec

from roost.posts import Post

Sort = Literal["top", "latest"]
Mode = Literal["hybrid", "lexical", "dense"]
UtcDatetime = Annotated[dt.datetime, msgspec.Meta(tz=True)]

MAX_LIMIT = 1000


class Filters(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which posts may be returned. `since` is inclusive, `until` exclusive; `hashtag` without '#',
    any case; `lang` as the platform declared it."""

    since: UtcDatetime | None = None
    until: UtcDatetime | None = None
    lang: str | None = None
    author: str | None = None
    hashtag: str | None = None
    has_links: bool | None = None

    @property
    def any(self) -> bool:
        return any(getattr(self, name) is not None for name in self.__struct_fields__)


class SearchRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    query: str = ""
    filters: Filters = Filters()
    sort: Sort = "top"
    mode: Mode = "hybrid"
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_LIMIT)] = 20

    def check(self) -> None:
        """Raise ValueError for a request no index can answer."""
        if not self.query.strip() and not self.filters.any:
            raise ValueError("give a query, or at least one filter to list the posts it lets through")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
        if len(self.query) > 1000:
            raise ValueError("the query is longer than 1000 characters")
        f = self.filters
        if f.since is not None and f.until is not None and f.since >= f.until:
            raise ValueError("since must be before until")


class Hit(msgspec.Struct):
    """One result: the post (metrics as counted now), its final score, and where each retriever
    ranked it (1 = best; None = it did not find it)."""

    post: Post
    score: float
    lexical_rank: int | None = None
    dense_rank: int | None = None
    similarity: float | None = None  # the query's cosine similarity to the post (dense side)


class SearchResponse(msgspec.Struct):
    query: str
    sort: Sort
    mode: Mode
    hits: list[Hit]
    took_ms: float


class Suggestion(msgspec.Struct):
    text: str
    source: Literal["popular", "hashtag", "model"]
    count: int = 0  # how often it was searched (popular) or used (hashtag)


class Trend(msgspec.Struct):
    """A hashtag used more in the window than its recent baseline predicts."""

    hashtag: str
    count: int  # posts in the window
    expected: float  # posts the baseline predicts for a window this long
    score: float  # (count - expected) / sqrt(expected + 1)
