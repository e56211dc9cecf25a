"""Mastodon statuses (the REST API's Status entity): one status, or an array of them (a timeline).

`content` is HTML; the text is its plain-text rendering (`roost.formats.htmltext`), with whole
URLs, `@name` and `#tag` kept as shown. Hashtags are `tags[].name`, mentions `mentions[].acct`
(`user` or `user@domain`), links the content's own links. Ids are the instance's status ids, as its
API gives them and as `in_reply_to_id` and `reblog.id` refer to them. A boost (`reblog`) is a Post
with `repost_of` and the boosted status's text; the boosted status, and a quoted one
(`quote.quoted_status`, Mastodon 4.4+), are imported as Posts of their own, first.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import msgspec

from roost.formats.fields import as_utc, distinct, ident, language, nested, optional_ident, unmapped
from roost.formats.htmltext import html_to_text
from roost.formats.records import Item, Parser, RecordData, decode
from roost.posts import Event, Metrics, Post


class _Account(msgspec.Struct):
    id: str


class _Tag(msgspec.Struct):
    name: str = ""


class _Mention(msgspec.Struct):
    acct: str = ""


class _Quote(msgspec.Struct):
    quoted_status: Status | None = None
    quoted_status_id: str | None = None  # the "shallow" form, without the status


class Status(msgspec.Struct):
    id: str
    created_at: dt.datetime
    account: _Account
    content: str = ""
    language: str | None = None
    in_reply_to_id: str | None = None
    reblog: Status | None = None
    quote: _Quote | None = None
    tags: list[_Tag] = []
    mentions: list[_Mention] = []
    replies_count: int = 0
    reblogs_count: int = 0
    favourites_count: int = 0
    quotes_count: int = 0


_MAPPED = frozenset(
    {"id", "created_at", "content", "language", "in_reply_to_id", "reblog", "quote", "tags", "mentions"}
    | {"replies_count", "reblogs_count", "favourites_count", "quotes_count"}
)
# strict=False: ids and counts arrive as strings or numbers depending on the server software.
_status_decoder = msgspec.json.Decoder(Status, strict=False)
_dict_decoder = msgspec.json.Decoder(dict[str, Any])


def _quoted(status: Status) -> Status | None:
    return status.quote.quoted_status if status.quote is not None else None


def status_posts(status: Status, record: dict[str, Any] | None, depth: int = 0) -> list[Post]:
    """The status and the statuses it embeds, embedded ones first."""
    posts: list[Post] = []
    shown = status  # whose text and entities the post shows: a boost shows the boosted status
    if status.reblog is not None and depth < 2:
        posts += status_posts(status.reblog, nested(record, "reblog"), depth + 1)
        shown = status.reblog
    elif (quoted := _quoted(status)) is not None and depth < 2:
        posts += status_posts(quoted, nested(nested(record, "quote"), "quoted_status"), depth + 1)
    posts.append(_post(status, shown, record))
    return posts


def _post(status: Status, shown: Status, record: dict[str, Any] | None) -> Post:
    post_id = ident(status.id, "status id")
    text, links = html_to_text(shown.content)
    quote_of = None
    if status.reblog is None and status.quote is not None:
        quoted = status.quote.quoted_status
        quote_of = quoted.id if quoted is not None else status.quote.quoted_status_id
    return Post(
        id=post_id,
        text=text,
        author_id=ident(status.account.id, f"status {post_id}: account id"),
        created_at=as_utc(status.created_at),
        lang=language(shown.language),
        reply_to=optional_ident(status.in_reply_to_id, "in_reply_to_id"),
        repost_of=ident(status.reblog.id, "reblog id") if status.reblog is not None else None,
        quote_of=optional_ident(quote_of, "quoted status id"),
        hashtags=distinct(tag.name for tag in shown.tags),
        mentions=distinct(mention.acct for mention in shown.mentions),
        urls=distinct(links),
        metrics=Metrics(
            likes=status.favourites_count,
            reposts=status.reblogs_count,
            replies=status.replies_count,
            quotes=status.quotes_count,
        ),
        source="mastodon",
        extra=unmapped(record, _MAPPED),
    )


def _parse(data: RecordData, keep_extra: bool) -> list[Item]:
    status = decode(_status_decoder, data, "Mastodon status")
    record = decode(_dict_decoder, data, "JSON object") if keep_extra else None
    posts = {post.id: post for post in status_posts(status, record)}
    return [Event.of_post(post) for post in posts.values()]


def make_parser(source: Path | None, *, keep_extra: bool = False) -> Parser:
    """The parser for Mastodon statuses (one status object per record)."""
    return lambda data: _parse(data, keep_extra)
