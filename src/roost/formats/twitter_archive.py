"""Twitter account archives: `data/tweets.js` and its siblings, `window.YTD.<name>.partN = [...]`.

Each element is `{"tweet": {...}}` (older exports: the tweet itself), a v1.1-shaped tweet whose
numbers are all strings and whose text keeps `&gt;` escaped. An archive holds one account's tweets
and names no author in them: the author is the `author_id` option, else the `accountId` of the
`account.js` beside the file, else "unknown". Retweets are plain tweets whose text starts
`RT @user: ` (cut short, with no `retweeted_status`): they become reposts of the original named by a
retweeted photo's `source_status_id`, or of "unknown" when the record does not say. The tweets of
`deleted-tweets.js` (`window.YTD.deleted_tweets`) become delete events; elements of the archive's
other files (`{"like": ...}`, `{"follower": ...}`) are counted by kind and skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from roost.formats.fields import RETWEET_PREFIX, UNKNOWN, unmapped
from roost.formats.framing import js_variable, json_records
from roost.formats.records import Item, ParseError, Parser, RecordData, Skip, decode
from roost.formats.twitter_v1 import MAPPED, Tweet, full_text, tweet_id, tweet_post
from roost.posts import Event

_entry_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])
# strict=False: archives write every number as a string ("favorite_count" : "0").
_tweet_decoder = msgspec.json.Decoder(Tweet, strict=False)
_dict_decoder = msgspec.json.Decoder(dict[str, Any])


class _Account(msgspec.Struct):
    accountId: str


class _AccountEntry(msgspec.Struct):
    account: _Account


def account_id(archive_file: Path) -> str | None:
    """The `accountId` in the `account.js` next to an archive file, if there is one."""
    account_js = archive_file.parent / "account.js"
    if not account_js.is_file():
        return None
    for record in json_records(account_js):
        try:
            return msgspec.json.decode(record.data, type=_AccountEntry).account.accountId
        except (msgspec.MsgspecError, UnicodeDecodeError, TypeError):
            return None
    return None


def _original_id(tweet: Tweet) -> str:
    media = tweet.entities.media if tweet.entities is not None else None
    for item in media or ():
        if item.source_status_id_str:
            return item.source_status_id_str
    return UNKNOWN


def _parse(data: RecordData, *, deleted: bool, author_id: str, keep_extra: bool) -> list[Item]:
    entry = decode(_entry_decoder, data, "archive entry (a JSON object)")
    if "tweet" in entry:
        raw: RecordData = entry["tweet"]
    elif "id_str" in entry or "full_text" in entry:
        raw = data  # older exports list the tweets themselves
    elif entry:
        return [Skip(next(iter(entry)))]
    else:
        raise ParseError("empty archive entry")
    tweet = decode(_tweet_decoder, raw, "archive tweet")
    if deleted:
        return [Event.of_delete(tweet_id(tweet))]
    repost_of = None
    if tweet.retweeted_status is None and RETWEET_PREFIX.match(full_text(tweet)[0]):
        repost_of = _original_id(tweet)
    extra = unmapped(decode(_dict_decoder, raw, "JSON object"), MAPPED) if keep_extra else None
    post = tweet_post(tweet, "twitter-archive", author_id=author_id, repost_of=repost_of, extra=extra)
    return [Event.of_post(post)]


def make_parser(source: Path | None, *, keep_extra: bool = False, author_id: str | None = None) -> Parser:
    """The parser for one archive file; `source` tells tweets from deleted tweets and finds the author."""
    deleted = False
    if source is not None:
        deleted = ".deleted_tweets." in f".{js_variable(source) or ''}."
        author_id = author_id or account_id(source)
    author = author_id or UNKNOWN
    return lambda data: _parse(data, deleted=deleted, author_id=author, keep_extra=keep_extra)
