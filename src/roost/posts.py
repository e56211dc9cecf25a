"""The one Post and Event type every stage shares.

A Post is a public post as roost understands it, whatever platform it came from; an Event is what
flows through the firehose log: a post appearing, or a post being deleted. Both are msgspec structs,
so decoding a line of JSON into a Post is one C call and encoding it back gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec

#: A timezone-aware timestamp; Post normalises it to UTC.
UtcDatetime = Annotated[dt.datetime, msgspec.Meta(tz=True)]


class Metrics(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Engagement counts as last seen; they grow after a post is first indexed."""

    likes: int = 0
    reposts: int = 0
    replies: int = 0
    quotes: int = 0
    views: int = 0


class Post(msgspec.Struct, forbid_unknown_fields=True):
    """A public post.

    `created_at` is always UTC. `lang` is the platform's own declared language (ISO 639-1, or None
    when the platform gave none); curation detects its own. `extra` keeps the source record's
    unmapped fields, and only when an importer is asked to.
    """

    id: str
    text: str
    author_id: str
    created_at: UtcDatetime
    lang: str | None = None
    reply_to: str | None = None
    repost_of: str | None = None
    quote_of: str | None = None
    hashtags: list[str] = msgspec.field(default_factory=list)
    mentions: list[str] = msgspec.field(default_factory=list)
    urls: list[str] = msgspec.field(default_factory=list)
    metrics: Metrics = msgspec.field(default_factory=Metrics)
    source: str = ""
    extra: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.created_at.utcoffset() != dt.timedelta(0):
            self.created_at = self.created_at.astimezone(dt.UTC)
        elif self.created_at.tzinfo is not dt.UTC:
            # Same instant, but a different tzinfo object encodes differently; make it canonical.
            self.created_at = self.created_at.replace(tzinfo=dt.UTC)


EventType = Literal["post", "delete"]


class Event(msgspec.Struct, forbid_unknown_fields=True):
    """One entry of the firehose: a post, or the deletion of the post with id `id`.

    `seq` is the log's cursor; it is None until the log assigns it.
    """

    type: EventType
    id: str
    post: Post | None = None
    seq: int | None = None

    def __post_init__(self) -> None:
        if self.type == "post":
            if self.post is None:
                raise ValueError("a post event needs its post")
            if self.post.id != self.id:
                raise ValueError(f"event id {self.id!r} differs from its post's id {self.post.id!r}")
        elif self.post is not None:
            raise ValueError("a delete event carries no post")

    @classmethod
    def of_post(cls, post: Post) -> Event:
        return cls(type="post", id=post.id, post=post)

    @classmethod
    def of_delete(cls, post_id: str) -> Event:
        return cls(type="delete", id=post_id)


_post_encoder = msgspec.json.Encoder()
_post_decoder = msgspec.json.Decoder(Post)
_event_decoder = msgspec.json.Decoder(Event)


def encode(obj: Post | Event) -> bytes:
    """JSON bytes of a Post or Event (compact; field order as declared)."""
    return _post_encoder.encode(obj)


def decode_post(data: bytes | str) -> Post:
    """Parse one Post from JSON; raises msgspec.ValidationError / DecodeError on bad input."""
    return _post_decoder.decode(data)


def decode_event(data: bytes | str) -> Event:
    """Parse one Event from JSON; raises msgspec.ValidationError / DecodeError on bad input."""
    return _event_decoder.decode(data)


def utc(ts: dt.datetime) -> dt.datetime:
    """The same instant in UTC; a naive timestamp is taken to be UTC already."""
    if ts.tzinfo is None:
        return ts.replace(tzinfo=dt.UTC)
    return ts.astimezone(dt.UTC)
