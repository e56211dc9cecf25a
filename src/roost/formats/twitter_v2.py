"""Twitter API v2: response pages (`data` / `includes` / `errors` / `meta`) and filtered-stream messages.

A record is one page (its `data` a list of tweets, or one tweet for a lookup or a stream message).
Every tweet in `data` becomes a Post, and so does every tweet in `includes.tweets` (the originals
that `data` retweets, quotes and replies to), once per page, before the posts that refer to them.
`note_tweet` gives the full text of a long post; a retweet's text is `RT @user: ` + the included
original's full text. `errors` entries (a deleted or protected tweet, a stream's operational
disconnect) are counted as skipped `error`s: "not found" can be temporary, so it is not a delete.
A tweet in a page that cannot be read is quarantined alone; the rest of its page imports.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import msgspec

from roost.formats import entities
from roost.formats.fields import as_utc, distinct, language, retweet_text, unescape_twitter, unmapped
from roost.formats.records import Item, ParseError, Parser, RecordData, Rejected, Skip, decode
from roost.posts import Event, Metrics, Post


class _Tag(msgspec.Struct):
    tag: str = ""


class _Mention(msgspec.Struct):
    username: str = ""


class _Url(msgspec.Struct):
    url: str = ""
    expanded_url: str | None = None
    unwound_url: str | None = None
    media_key: str | None = None  # a link to attached media, not a link in the text


class _Entities(msgspec.Struct):
    hashtags: list[_Tag] | None = None
    mentions: list[_Mention] | None = None
    urls: list[_Url] | None = None


class _Note(msgspec.Struct):
    text: str = ""
    entities: _Entities | None = None


class _Reference(msgspec.Struct):
    type: str
    id: str


class _Metrics(msgspec.Struct):
    retweet_count: int | None = None
    reply_count: int | None = None
    like_count: int | None = None
    quote_count: int | None = None
    impression_count: int | None = None


class _Tweet(msgspec.Struct):
    id: str
    text: str
    author_id: str | None = None
    created_at: dt.datetime | None = None
    lang: str | None = None
    note_tweet: _Note | None = None
    entities: _Entities | None = None
    referenced_tweets: list[_Reference] | None = None
    public_metrics: _Metrics | None = None


class _Includes(msgspec.Struct):
    tweets: list[msgspec.Raw] | None = None


class _Page(msgspec.Struct):
    data: msgspec.Raw = msgspec.Raw()  # a list of tweets, or one tweet
    includes: _Includes | None = None
    errors: list[Any] | None = None
    meta: Any = None


_MAPPED = frozenset(
    {"id", "text", "author_id", "created_at", "lang", "note_tweet", "entities", "referenced_tweets"}
    | {"public_metrics"}
)
_page_decoder = msgspec.json.Decoder(_Page)
_tweets_decoder = msgspec.json.Decoder(list[msgspec.Raw])
_tweet_decoder = msgspec.json.Decoder(_Tweet)
_dict_decoder = msgspec.json.Decoder(dict[str, Any])


# Before `media_key` was added (2021), a media link was told apart only by its URL.
_MEDIA_LINK = re.compile(r"https?://(?:twitter|x)\.com/\w+/status/\d+/(?:photo|video)/\d+")


def _is_media(url: _Url) -> bool:
    return url.media_key is not None or bool(url.expanded_url and _MEDIA_LINK.fullmatch(url.expanded_url))


def _text(tweet: _Tweet) -> tuple[str, _Entities | None]:
    if tweet.note_tweet is not None and tweet.note_tweet.text:
        return unescape_twitter(tweet.note_tweet.text), tweet.note_tweet.entities
    return unescape_twitter(tweet.text), tweet.entities


def _post(tweet: _Tweet, originals: dict[str, _Tweet], extra: dict[str, Any] | None) -> Post:
    if not tweet.id:
        raise ParseError("tweet has an empty id")
    if not tweet.author_id:
        raise ParseError(f"tweet {tweet.id} has no author_id (request tweet.fields=author_id,created_at)")
    if tweet.created_at is None:
        raise ParseError(f"tweet {tweet.id} has no created_at (request tweet.fields=author_id,created_at)")
    text, ents = _text(tweet)
    refs = {ref.type: ref.id for ref in tweet.referenced_tweets or ()}
    repost_of = refs.get("retweeted")
    if repost_of is not None and repost_of in originals:
        text = retweet_text(text, _text(originals[repost_of])[0])
    if ents is not None:
        hashtags = distinct(h.tag for h in ents.hashtags or ())
        mentions = distinct(m.username for m in ents.mentions or ())
        urls = distinct(u.unwound_url or u.expanded_url or u.url for u in ents.urls or () if not _is_media(u))
    else:
        hashtags, mentions, urls = entities.found_in(text)
    metrics = tweet.public_metrics or _Metrics()
    return Post(
        id=tweet.id,
        text=text,
        author_id=tweet.author_id,
        created_at=as_utc(tweet.created_at),
        lang=language(tweet.lang),
        reply_to=refs.get("replied_to"),
        repost_of=repost_of,
        quote_of=refs.get("quoted") if repost_of is None else None,
        hashtags=hashtags,
        mentions=mentions,
        urls=urls,
        metrics=Metrics(
            likes=metrics.like_count or 0,
            reposts=metrics.retweet_count or 0,
            replies=metrics.reply_count or 0,
            quotes=metrics.quote_count or 0,
            views=metrics.impression_count or 0,
        ),
        source="twitter-v2",
        extra=extra,
    )


def _parse(data: RecordData, keep_extra: bool) -> list[Item]:
    page = decode(_page_decoder, data, "v2 response page or stream message")
    if not len(page.data) and page.includes is None and page.errors is None and page.meta is None:
        raise ParseError("not a v2 response page: it has no data, includes, errors or meta")
    if not len(page.data):
        data_tweets = []
    elif memoryview(page.data)[0] == ord("["):
        data_tweets = decode(_tweets_decoder, page.data, "list of tweets")
    else:
        data_tweets = [page.data]  # a tweet lookup or a filtered-stream message
    included = (page.includes.tweets if page.includes else None) or []

    items: list[Item] = []
    tweets: list[tuple[str, msgspec.Raw, _Tweet]] = []
    for where, raws in (("includes.tweets", included), ("data", data_tweets)):
        for index, raw in enumerate(raws):
            try:
                tweets.append((f"{where}[{index}]", raw, decode(_tweet_decoder, raw, "v2 tweet")))
            except ParseError as exc:
                items.append(Rejected(str(exc), bytes(raw), f"{where}[{index}]"))
    originals = {tweet.id: tweet for _, _, tweet in tweets}
    posts: dict[str, Post] = {}  # by id: a page may include a tweet that is also in its data
    for where, raw, tweet in tweets:
        try:
            extra = unmapped(decode(_dict_decoder, raw, "JSON object"), _MAPPED) if keep_extra else None
            posts[tweet.id] = _post(tweet, originals, extra)
        except ParseError as exc:
            items.append(Rejected(str(exc), bytes(raw), where))
    items += [Event.of_post(post) for post in posts.values()]
    items += [Skip("error") for _ in page.errors or ()]
    return items


def make_parser(source: Path | None, *, keep_extra: bool = False) -> Parser:
    """The parser for v2 pages and stream messages (one JSON object per record)."""
    return lambda data: _parse(data, keep_extra)
