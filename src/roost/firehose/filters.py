"""What a consumer may receive: entitlements, the narrower filters it may ask for, and the
compiled predicate the server runs over each event once per connection.

Deletes (and any event type but "post", which is where compliance events go) pass every filter:
a consumer that got a post must hear of its deletion. Sampling hashes the post id, so a consumer
sees the same sample after a reconnect and a 10% sample is a subset of a 50% one.
"""

from __future__ import annotations

import hashlib
import re

import msgspec

from roost.firehose.log import Chunk

_LANG = re.compile(r"^[a-z]{2,3}$")
MAX_KEYWORDS = 400
MAX_KEYWORD_CHARS = 100


class NotEntitledError(ValueError):
    """The request asks for more than the consumer's entitlements allow."""


class Entitlements(msgspec.Struct, forbid_unknown_fields=True):
    """What a consumer may receive. Empty lists mean no restriction on that axis."""

    languages: list[str] = msgspec.field(default_factory=list)  # ISO 639 codes, e.g. "en"
    keywords: list[str] = msgspec.field(default_factory=list)  # words/phrases, or "#tag" for hashtags
    sample_rate: float = 1.0  # the share of posts delivered, chosen by post id
    reposts: bool = True

    def __post_init__(self) -> None:
        for lang in self.languages:
            if not isinstance(lang, str) or not _LANG.match(lang):
                raise ValueError(f"language {lang!r} is not a lowercase ISO 639 code such as 'en'")
        if len(self.keywords) > MAX_KEYWORDS:
            raise ValueError(f"{len(self.keywords)} keywords; at most {MAX_KEYWORDS}")
        for word in self.keywords:
            if not word.strip("# ") or len(word) > MAX_KEYWORD_CHARS or "," in word:
                raise ValueError(
                    f"keyword {word!r} must be 1-{MAX_KEYWORD_CHARS} characters, not blank, without commas"
                )
        if not 0 < self.sample_rate <= 1:
            raise ValueError(f"sample rate {self.sample_rate} must be in (0, 1]")
        self.languages = sorted(set(self.languages))
        self.keywords = sorted({w.strip().lower() for w in self.keywords})


class StreamRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Filters a connection asks for; None means "all my entitlements allow"."""

    languages: list[str] | None = None
    keywords: list[str] | None = None
    sample_rate: float | None = None
    reposts: bool | None = None


def narrow(entitled: Entitlements, request: StreamRequest) -> Entitlements:
    """The entitlements a connection runs with: the request, checked against what is allowed."""
    languages = entitled.languages
    if request.languages:
        extra = set(request.languages) - set(entitled.languages) if entitled.languages else set()
        if extra:
            raise NotEntitledError(f"not entitled to language(s) {', '.join(sorted(extra))}")
        languages = request.languages
    keywords = entitled.keywords
    if request.keywords:
        asked = {w.strip().lower() for w in request.keywords}
        extra = asked - set(entitled.keywords) if entitled.keywords else set()
        if extra:
            raise NotEntitledError(f"not entitled to keyword(s) {', '.join(sorted(extra))}")
        keywords = sorted(asked)
    sample_rate = entitled.sample_rate
    if request.sample_rate is not None:
        if request.sample_rate > entitled.sample_rate:
            raise NotEntitledError(
                f"sample rate {request.sample_rate} exceeds the entitled {entitled.sample_rate}"
            )
        sample_rate = request.sample_rate
    if request.reposts and not entitled.reposts:
        raise NotEntitledError("not entitled to reposts")
    reposts = entitled.reposts if request.reposts is None else request.reposts
    return Entitlements(languages=languages, keywords=keywords, sample_rate=sample_rate, reposts=reposts)


class _PostView(msgspec.Struct):
    """The fields of a post that filters read; decoding skips the rest."""

    text: str = ""
    lang: str | None = None
    repost_of: str | None = None
    hashtags: list[str] = msgspec.field(default_factory=list)


class EventView(msgspec.Struct):
    type: str
    id: str
    post: _PostView | None = None


_view_decoder = msgspec.json.Decoder(EventView)


def decode_views(chunk: Chunk) -> list[EventView]:
    """One view per line of `chunk`, in order."""
    return _view_decoder.decode_lines(chunk.data)


def sample_point(post_id: str) -> int:
    """Where a post falls in [0, 2**64): the same for everyone, always."""
    return int.from_bytes(hashlib.blake2b(post_id.encode(), digest_size=8).digest())


class EventFilter:
    """A compiled `Entitlements`: `keep(view)` says whether a connection gets an event."""

    def __init__(self, entitlements: Entitlements) -> None:
        self.entitlements = entitlements
        self.languages = frozenset(entitlements.languages)
        self.reposts = entitlements.reposts
        self.hashtags = frozenset(w[1:] for w in entitlements.keywords if w.startswith("#"))
        words = [w for w in entitlements.keywords if not w.startswith("#")]
        # Whole words or phrases, case-insensitive, in one regex pass over the text.
        self.words = (
            re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, words)) + r")(?!\w)", re.IGNORECASE)
            if words
            else None
        )
        self.threshold = int(entitlements.sample_rate * 2**64)
        restricted = self.languages or entitlements.keywords or not self.reposts
        self.passes_all = not restricted and self.threshold >= 2**64

    def keep(self, view: EventView) -> bool:
        post = view.post
        if view.type != "post" or post is None:
            return True
        if self.languages and post.lang not in self.languages:
            return False
        if not self.reposts and post.repost_of is not None:
            return False
        if (self.words or self.hashtags) and not (
            (self.hashtags and any(tag.lower() in self.hashtags for tag in post.hashtags))
            or (self.words and self.words.search(post.text))
        ):
            return False
        return self.threshold >= 2**64 or sample_point(view.id) < self.threshold

    def select(self, chunk: Chunk, views: list[EventView], start: int = 0) -> bytes:
        """The bytes of the lines from `start` on that this filter keeps."""
        if self.passes_all:
            return chunk.data[chunk.start_of(start) :] if start else chunk.data
        data, keep = chunk.data, self.keep
        pieces = []
        for i in range(start, len(views)):
            if keep(views[i]):
                pieces.append(data[chunk.start_of(i) : chunk.end_of(i)])
        return b"".join(pieces)
