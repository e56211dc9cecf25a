"""Format rules the samples do not show: later stream notices, archive siblings, v2 partial pages,
Bluesky quotes and byte-offset mentions, Mastodon boosts."""

from __future__ import annotations

import json
from pathlib import Path

from roost.formats import FORMATS, ImportCounts, detect_format, read_events
from roost.formats.records import Rejected, Skip
from roost.posts import Event
from roost.quarantine import Quarantine, read_quarantine


def _parse(fmt: str, record: dict) -> list:
    return FORMATS[fmt].make_parser(None)(json.dumps(record).encode())


def _tweet(id_: str, text: str, **more: object) -> dict:
    return {
        "id_str": id_,
        "text": text,
        "user": {"id_str": "9"},
        "created_at": "Wed Oct 10 20:19:24 +0000 2018",
        **more,
    }


def test_v1_later_notices() -> None:
    delete = {
        "delete": {"status": {"id": 1, "id_str": "1234", "user_id": 3}, "timestamp_ms": "1520690595660"}
    }
    assert _parse("twitter-v1", delete) == [Event.of_delete("1234")]
    for kind in ("status_withheld", "user_withheld", "disconnect", "warning"):
        assert _parse("twitter-v1", {kind: {"code": 1}}) == [Skip(kind)]


def test_v1_retweet_of_a_quote_embeds_both() -> None:
    quoted = _tweet("1", "the quoted one")
    original = _tweet("2", "quoting", quoted_status=quoted, quoted_status_id_str="1")
    retweet = _tweet("3", "RT @someone: quoting", retweeted_status=original, quoted_status=quoted)
    events = _parse("twitter-v1", retweet)
    assert [e.id for e in events] == ["1", "2", "3"]
    assert events[1].post.quote_of == "1"
    assert (events[2].post.repost_of, events[2].post.quote_of) == ("2", None)


def test_archive_author_from_account_js_deleted_tweets_and_other_files(tmp_path: Path) -> None:
    (tmp_path / "account.js").write_text(
        'window.YTD.account.part0 = [ { "account" : { "accountId" : "777", "username" : "me" } } ]'
    )
    tweet = {
        "id_str": "5",
        "id": "5",
        "full_text": "hello &amp; bye",
        "created_at": "Wed Oct 10 20:19:24 +0000 2018",
        "favorite_count": "2",
        "retweet_count": "1",
    }
    tweets = tmp_path / "tweets-part1.js"
    tweets.write_text("window.YTD.tweets.part1 = " + json.dumps([{"tweet": tweet}]))
    deleted = tmp_path / "deleted-tweets.js"
    deleted.write_text(
        "window.YTD.deleted_tweets.part0 = " + json.dumps([{"tweet": {**tweet, "id_str": "6"}}])
    )
    likes = tmp_path / "like.js"
    likes.write_text('window.YTD.like.part0 = [{"like": {"tweetId": "8", "fullText": "liked"}}]')
    assert {detect_format(p) for p in (tweets, deleted, likes)} == {"twitter-archive"}
    (post_event,) = read_events(tweets)
    post = post_event.post
    assert (post.author_id, post.text, post.metrics.likes, post.metrics.reposts) == (
        "777",
        "hello & bye",
        2,
        1,
    )
    assert list(read_events(deleted)) == [Event.of_delete("6")]
    counts = ImportCounts()
    assert list(read_events(likes, counts=counts)) == [] and counts.skipped == {"like": 1}
    (explicit,) = read_events(tweets, author_id="me-myself")
    assert explicit.post.author_id == "me-myself"


def test_v2_bad_tweet_in_a_page_is_quarantined_alone(tmp_path: Path) -> None:
    good = {"id": "1", "text": "fine", "author_id": "a", "created_at": "2022-01-01T00:00:00.000Z"}
    page = {
        "data": [good, {"id": "2", "text": "no author", "created_at": "2022-01-01T00:00:00.000Z"}, 7],
        "includes": {"tweets": [{"id": "3"}]},
        "errors": [{"title": "Not Found Error"}],
    }
    items = _parse("twitter-v2", page)
    assert [i.id for i in items if isinstance(i, Event)] == ["1"]
    assert [i.where for i in items if isinstance(i, Rejected)] == ["includes.tweets[0]", "data[2]", "data[1]"]
    assert [i for i in items if isinstance(i, Skip)] == [Skip("error")]
    path = tmp_path / "page.jsonl"
    path.write_text(json.dumps(page) + "\n")
    counts = ImportCounts()
    with Quarantine(tmp_path / "q", "import") as quarantine:
        assert len(list(read_events(path, quarantine=quarantine, counts=counts))) == 1
    positions = [q.position for q in read_quarantine(tmp_path / "q", "import")]
    assert positions == [
        "line 1 (byte 0) includes.tweets[0]",
        "line 1 (byte 0) data[2]",
        "line 1 (byte 0) data[1]",
    ]
    assert counts.quarantined == 3


def test_v2_note_tweet_is_the_full_text() -> None:
    tweet = {
        "id": "1",
        "text": "short…",
        "author_id": "a",
        "created_at": "2022-01-01T00:00:00Z",
        "note_tweet": {"text": "the whole long #post", "entities": {"hashtags": [{"tag": "post"}]}},
    }
    (event,) = _parse("twitter-v2", {"data": tweet})
    assert event.post.text == "the whole long #post" and event.post.hashtags == ["post"]


def test_jetstream_quote_and_mention_by_byte_offsets() -> None:
    text = "héllo @ann.bsky.social"  # "é" is two bytes: offsets count bytes, not characters
    start = len("héllo ".encode())
    record = {
        "$type": "app.bsky.feed.post",
        "text": text,
        "createdAt": "not a time",
        "facets": [
            {
                "index": {"byteStart": start, "byteEnd": len(text.encode())},
                "features": [{"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:ann"}],
            }
        ],
        "embed": {
            "$type": "app.bsky.embed.record",
            "record": {"uri": "at://did:plc:x/app.bsky.feed.post/3abc", "cid": "c"},
        },
    }
    event = {
        "did": "did:plc:me",
        "time_us": 1751639886240000,
        "kind": "commit",
        "commit": {"operation": "create", "collection": "app.bsky.feed.post", "rkey": "k", "record": record},
    }
    (parsed,) = _parse("jetstream", event)
    post = parsed.post
    assert post.id == "at://did:plc:me/app.bsky.feed.post/k"
    assert post.mentions == ["ann.bsky.social"]
    assert post.quote_of == "at://did:plc:x/app.bsky.feed.post/3abc"
    assert post.created_at.isoformat() == "2025-07-04T14:38:06.240000+00:00"  # from time_us


def test_mastodon_boost_is_a_repost_of_the_boosted_status() -> None:
    boosted = {
        "id": "10",
        "created_at": "2025-01-01T00:00:00.000Z",
        "account": {"id": "1"},
        "content": "<p>original #text</p>",
        "tags": [{"name": "text"}],
        "language": "de",
    }
    boost = {
        "id": "11",
        "created_at": "2025-01-02T00:00:00.000Z",
        "account": {"id": "2"},
        "content": "",
        "reblog": boosted,
        "reblogs_count": 0,
    }
    original, repost = _parse("mastodon", boost)
    assert (original.id, original.post.text) == ("10", "original #text")
    assert (repost.id, repost.post.repost_of, repost.post.author_id) == ("11", "10", "2")
    assert (repost.post.text, repost.post.hashtags, repost.post.lang) == ("original #text", ["text"], "de")
