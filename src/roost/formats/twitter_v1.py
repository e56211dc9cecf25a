"""Twitter API v1.1 and its streams (filter, sample, firehose, PowerTrack "original format").

A line is a tweet or a stream notice. Tweets map onto Post with the full text from
`extended_tweet` (streams) or `full_text` (REST with tweet_mode=extended, archives), entities from
the same place as the text, `&amp;`/`&lt;`/`&gt;` unescaped. A retweet is a Post with `repost_of`
whose text is `RT @user: ` + the original's full text; a quote has `quote_of`. The originals a
record embeds (`retweeted_status`, `quoted_status`) are imported as Posts of their own, before the
post that embeds them. A `delete` notice becomes a delete event; every other notice (`limit`,
`scrub_geo`, `status_withheld`, ...) is counted by kind and skipped.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import msgspec

from roost.formats import entities
from roost.formats.fields import (
    distinct,
    epoch_time,
    ident,
    language,
    nested,
    optional_ident,
    retweet_text,
    twitter_time,
    unescape_twitter,
    unmapped,
)
from roost.formats.records import Item, ParseError, Parser, RecordData, Skip, decode
from roost.posts import Event, Metrics, Post


class _Hashtag(msgspec.Struct):
    text: str = ""


class _Mention(msgspec.Struct):
    screen_name: str = ""


class _Url(msgspec.Struct):
    url: str = ""
    expanded_url: str | None = None


class _Media(msgspec.Struct):
    source_status_id_str: str | None = None  # set on the media of a retweet: the original's id


class _Entities(msgspec.Struct):
    hashtags: list[_Hashtag] | None = None
    user_mentions: list[_Mention] | None = None
    urls: list[_Url] | None = None
    media: list[_Media] | None = None


class _Extended(msgspec.Struct):
    full_text: str = ""
    entities: _Entities | None = None


class _User(msgspec.Struct):
    id_str: str | None = None
    id: int | None = None


class Tweet(msgspec.Struct):
    """The fields of a v1.1 tweet that roost maps (the archive's tweets have the same shape)."""

    id_str: str | None = None
    id: int | None = None
    text: str | None = None
    full_text: str | None = None
    extended_tweet: _Extended | None = None
    entities: _Entities | None = None
    created_at: str | None = None
    timestamp_ms: int | None = None
    user: _User | None = None
    lang: str | None = None
    in_reply_to_status_id_str: str | None = None
    in_reply_to_status_id: int | None = None
    quoted_status_id_str: str | None = None
    quoted_status_id: int | None = None
    retweeted_status: Tweet | None = None
    quoted_status: Tweet | None = None
    retweet_count: int | None = None
    favorite_count: int | None = None
    reply_count: int | None = None
    quote_count: int | None = None


class _DeletedStatus(msgspec.Struct):
    id_str: str | None = None
    id: int | None = None


class _Delete(msgspec.Struct):
    status: _DeletedStatus | None = None


class _Message(Tweet):
    """A line of a v1.1 stream: a tweet, or one of the notices Twitter interleaves with tweets."""

    delete: _Delete | None = None
    scrub_geo: Any = None
    limit: Any = None
    status_withheld: Any = None
    user_withheld: Any = None
    disconnect: Any = None
    warning: Any = None
    event: Any = None
    friends: Any = None
    friends_str: Any = None
    direct_message: Any = None
    control: Any = None
    for_user: Any = None


#: Notices (from Twitter's "Streaming message types") that carry no post: counted and skipped.
NOTICES = tuple(f for f in _Message.__struct_fields__ if f not in Tweet.__struct_fields__ and f != "delete")

# Top-level keys that map onto Post fields; the rest go to `extra` when asked.
MAPPED = frozenset(
    {"id", "id_str", "text", "full_text", "extended_tweet", "entities", "created_at", "timestamp_ms", "lang"}
    | {"in_reply_to_status_id", "in_reply_to_status_id_str", "quoted_status_id", "quoted_status_id_str"}
    | {"retweeted_status", "quoted_status", "retweet_count", "favorite_count", "reply_count", "quote_count"}
    | {"truncated", "display_text_range"}
)

# strict=False: real streams send some numbers as strings ("timestamp_ms": "1520690595660").
_message_decoder = msgspec.json.Decoder(_Message, strict=False)
_dict_decoder = msgspec.json.Decoder(dict[str, Any])


def tweet_id(tweet: Tweet) -> str:
    return ident(tweet.id_str or tweet.id, "tweet id")


def full_text(tweet: Tweet) -> tuple[str, _Entities | None]:
    """The untruncated text and the entities that index into it."""
    if tweet.extended_tweet is not None and tweet.extended_tweet.full_text:
        return unescape_twitter(tweet.extended_tweet.full_text), tweet.extended_tweet.entities
    text = tweet.full_text if tweet.full_text is not None else tweet.text
    if text is None:
        raise ParseError(f"tweet {tweet_id(tweet)} has no text")
    return unescape_twitter(text), tweet.entities


def tweet_time(tweet: Tweet) -> dt.datetime:
    # `created_at` first, even where `timestamp_ms` is finer: an embedded copy of the same tweet
    # has only `created_at`, and both copies should store the same bytes.
    if tweet.created_at is not None:
        return twitter_time(tweet.created_at)
    if tweet.timestamp_ms is not None:
        return epoch_time(tweet.timestamp_ms)
    raise ParseError(f"tweet {tweet_id(tweet)} has no created_at")


def tweet_post(
    tweet: Tweet,
    source: str,
    *,
    author_id: str | None = None,
    repost_of: str | None = None,
    text: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Post:
    """One tweet as a Post (without what it embeds). `author_id` stands in when it has no `user`."""
    post_id = tweet_id(tweet)
    own_text, ents = full_text(tweet)
    if tweet.user is not None:
        author_id = ident(tweet.user.id_str or tweet.user.id, f"tweet {post_id}: user id")
    if author_id is None:
        raise ParseError(f"tweet {post_id} has no user")
    if text is None:
        text = own_text
    if ents is not None:
        hashtags = distinct(h.text for h in ents.hashtags or ())
        mentions = distinct(m.screen_name for m in ents.user_mentions or ())
        urls = distinct(u.expanded_url or u.url for u in ents.urls or ())
    else:
        hashtags, mentions, urls = entities.found_in(text)
    quote_of = None
    if repost_of is None:
        quote_of = optional_ident(tweet.quoted_status_id_str or tweet.quoted_status_id, "quoted_status_id")
        if quote_of is None and tweet.quoted_status is not None:
            quote_of = tweet_id(tweet.quoted_status)
    return Post(
        id=post_id,
        text=text,
        author_id=author_id,
        created_at=tweet_time(tweet),
        lang=language(tweet.lang),
        reply_to=optional_ident(
            tweet.in_reply_to_status_id_str or tweet.in_reply_to_status_id, "in_reply_to_status_id"
        ),
        repost_of=repost_of,
        quote_of=quote_of,
        hashtags=hashtags,
        mentions=mentions,
        urls=urls,
        metrics=Metrics(
            likes=tweet.favorite_count or 0,
            reposts=tweet.retweet_count or 0,
            replies=tweet.reply_count or 0,
            quotes=tweet.quote_count or 0,
        ),
        source=source,
        extra=extra,
    )


def tweet_posts(tweet: Tweet, source: str, record: dict[str, Any] | None, depth: int = 0) -> list[Post]:
    """The tweet and the originals it embeds, originals first; `record` is its dict for `extra`."""
    posts: list[Post] = []
    repost_of = text = None
    if tweet.retweeted_status is not None and depth < 2:
        original = tweet.retweeted_status
        posts += tweet_posts(original, source, nested(record, "retweeted_status"), depth + 1)
        repost_of = tweet_id(original)
        text = retweet_text(full_text(tweet)[0], full_text(original)[0])
    elif tweet.quoted_status is not None and depth < 2:
        posts += tweet_posts(tweet.quoted_status, source, nested(record, "quoted_status"), depth + 1)
    posts.append(tweet_post(tweet, source, repost_of=repost_of, text=text, extra=unmapped(record, MAPPED)))
    return posts


def _parse(data: RecordData, keep_extra: bool) -> list[Item]:
    message = decode(_message_decoder, data, "v1.1 tweet or stream notice")
    if message.delete is not None:
        status = message.delete.status
        if status is None:
            raise ParseError("delete notice without a status")
        return [Event.of_delete(ident(status.id_str or status.id, "deleted status id"))]
    for kind in NOTICES:
        if getattr(message, kind) is not None:
            return [Skip(kind)]
    if message.id_str is None and message.id is None:
        raise ParseError("neither a tweet (no id) nor a known stream notice")
    record = decode(_dict_decoder, data, "JSON object") if keep_extra else None
    posts = tweet_posts(message, "twitter-v1", record)
    # An original embedded twice (retweet of a quote of itself) is imported once.
    return [Event.of_post(p) for p in {p.id: p for p in posts}.values()]


def make_parser(source: Path | None, *, keep_extra: bool = False) -> Parser:
    """The parser for v1.1 tweets and stream notices (one JSON object per record)."""
    return lambda data: _parse(data, keep_extra)
