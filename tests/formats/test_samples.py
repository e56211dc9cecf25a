"""Every real sample in ../shared/data/formats imports whole, with the counts its README implies."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from roost.formats import ImportCounts, detect_format, read_events
from roost.posts import Event, Post
from roost.quarantine import Quarantine, read_quarantine
from tests.conftest import FORMATS_DIR, need

# file: (format, records, posts, deletes, skipped by kind). Posts include the originals a record
# embeds (v1.1 retweeted/quoted status, v2 includes.tweets, once per page); see docs/formats.md.
EXPECTED: dict[str, tuple[str, int, int, int, dict[str, int]]] = {
    # README: all 17 post creates, the 1 post delete, and the first 2 of every other kind.
    "bluesky_jetstream.jsonl": (
        "jetstream",
        31,
        17,
        1,
        {
            "app.bsky.feed.like": 2,
            "app.bsky.feed.repost": 2,
            "app.bsky.graph.follow": 4,  # 2 creates + 2 deletes
            "app.bsky.graph.block": 1,
            "app.bsky.actor.status": 1,
            "fm.teal.alpha.actor.status": 1,
            "identity": 1,
            "account": 1,
        },
    ),
    "bluesky_jetstream_golden.jsonl": (
        "jetstream",
        10,
        1,
        0,
        {
            "app.bsky.feed.like": 1,
            "app.bsky.feed.repost": 1,
            "app.bsky.graph.follow": 1,
            "app.bsky.graph.block": 1,
            "app.bsky.actor.profile": 1,
            "org.hypercerts.claim.activity": 1,
            "place.stream.broadcast.origin": 1,
            "identity": 1,
            "account": 1,
        },
    ),
    "mastodon_status_docs_example.json": ("mastodon", 1, 1, 0, {}),
    "mastodon_status_fosstodon.json": ("mastodon", 1, 1, 0, {}),
    "mastodon_timeline_tag_rstats.json": ("mastodon", 5, 5, 0, {}),
    "twitter_archive_tweets.js": ("twitter-archive", 8, 8, 0, {}),
    # 10 tweets, 2 of them quotes whose quoted tweet is embedded.
    "twitter_v1_stream_python_twitter.jsonl": ("twitter-v1", 10, 12, 0, {}),
    # 25 tweets + 3 retweeted originals + 8 quoted originals.
    "twitter_v1_stream_tweet_parser.jsonl": ("twitter-v1", 25, 36, 0, {}),
    # a delete notice, three tweets, a limit notice and a scrub_geo notice.
    "twitter_v1_stream_twitter4j.jsonl": ("twitter-v1", 6, 3, 1, {"limit": 1, "scrub_geo": 1}),
    # 10 pages of 1 tweet; their includes.tweets add 7 tweets not already in data.
    "twitter_v2_api_responses.jsonl": ("twitter-v2", 10, 17, 0, {}),
    # 7 messages; 4 of them include the tweet they quote or reply to.
    "twitter_v2_filtered_stream.jsonl": ("twitter-v2", 7, 11, 0, {}),
    # 4 tweets in data, 3 included, one of those also in data.
    "twitter_v2_postman_recent_search_user_fields.json": ("twitter-v2", 1, 6, 0, {}),
    "twitter_v2_postman_tweet_lookup_deleted.json": ("twitter-v2", 1, 0, 0, {"error": 1}),
    "twitter_v2_postman_tweet_lookup_media_fields.json": ("twitter-v2", 1, 1, 0, {}),
    "twitter_v2_postman_tweet_lookup_tweet_fields.json": ("twitter-v2", 1, 1, 0, {}),
}


def _read(name: str, tmp_path: Path) -> tuple[list[Event], ImportCounts, Quarantine]:
    counts = ImportCounts()
    quarantine = Quarantine(tmp_path / "quarantine", "import")
    with quarantine:
        events = list(read_events(need(FORMATS_DIR / name), quarantine=quarantine, counts=counts))
    return events, counts, quarantine


def _posts(name: str, tmp_path: Path) -> dict[str, Post]:
    return {e.id: e.post for e in _read(name, tmp_path)[0] if e.post is not None}


def test_every_sample_file_is_listed() -> None:
    files = {p.name for p in need(FORMATS_DIR).iterdir() if p.name != "README.md"}
    assert files == set(EXPECTED), "a sample was added or removed: give it its expected counts here"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_detects_and_imports_whole(name: str, tmp_path: Path) -> None:
    fmt, records, posts, deletes, skipped = EXPECTED[name]
    assert detect_format(need(FORMATS_DIR / name)) == fmt
    events, counts, _ = _read(name, tmp_path)
    assert read_quarantine(tmp_path / "quarantine", "import") == []
    assert (counts.records, counts.posts, counts.deletes, counts.skipped, counts.quarantined) == (
        records,
        posts,
        deletes,
        skipped,
        0,
    )
    assert len(events) == posts + deletes
    for event in events:
        assert event.seq is None
        if event.post is not None:
            assert event.post.source == fmt
            assert event.post.created_at.tzinfo is dt.UTC
            assert event.post.extra is None
            assert event.post.lang is None or event.post.lang.isalpha()


def _tweet_ids(tweet: dict) -> list[str]:
    """Ids of a v1.1 tweet and of the tweets embedded in it, read straight from the JSON."""
    ids = [tweet.get("id_str") or str(tweet["id"])]
    for key in ("retweeted_status", "quoted_status"):
        if key in tweet:
            ids += _tweet_ids(tweet[key])
    return ids


def test_v1_embedded_originals_match_the_raw_json(tmp_path: Path) -> None:
    name = "twitter_v1_stream_tweet_parser.jsonl"
    lines = need(FORMATS_DIR / name).read_text().splitlines()
    expected = {i for line in lines for i in _tweet_ids(json.loads(line))}
    assert set(_posts(name, tmp_path)) == expected and len(expected) == 29


def test_v2_posts_are_data_and_includes_per_page(tmp_path: Path) -> None:
    name = "twitter_v2_api_responses.jsonl"
    per_page = []
    for line in need(FORMATS_DIR / name).read_text().splitlines():
        page = json.loads(line)
        tweets = page["data"] + page["includes"].get("tweets", [])
        per_page.append(len({t["id"] for t in tweets}))
    _, counts, _ = _read(name, tmp_path)
    assert counts.posts == sum(per_page) == 17


def test_v1_extended_tweet_gives_the_full_text(tmp_path: Path) -> None:
    lines = need(FORMATS_DIR / "twitter_v1_stream_tweet_parser.jsonl").read_text().splitlines()
    line = next(tweet for tweet in map(json.loads, lines) if tweet["id_str"] == "867473446648676352")
    post = _posts("twitter_v1_stream_tweet_parser.jsonl", tmp_path)["867473446648676352"]
    assert line["truncated"] and line["text"].endswith("https://t.co/DveKFDkbMP")
    assert post.text == line["extended_tweet"]["full_text"]
    assert len(post.text) == 189 and post.text.endswith("https://t.co/eAQvI8SV57")
    assert post.reply_to == "863566329168711681"
    assert post.mentions == ["notFromShrek", "ericmbudd"]


def test_v1_retweet_and_quote(tmp_path: Path) -> None:
    posts = _posts("twitter_v1_stream_tweet_parser.jsonl", tmp_path)
    retweet = posts["867475059358683136"]
    original = posts["867471562613575680"]  # embedded, with its own extended_tweet
    assert retweet.repost_of == original.id and retweet.quote_of is None
    assert retweet.text == "RT @RobotPrincessFi: " + original.text
    assert len(original.text) == 164 and "…" not in original.text
    quote = posts["872836479608733696"]
    assert quote.quote_of == "872836379595620353" and quote.repost_of is None
    assert quote.hashtags == ["QuoteTweet", "hashtags"]
    assert "872836379595620353" in posts


def test_v1_stream_notices_and_old_ids(tmp_path: Path) -> None:
    events, _, _ = _read("twitter_v1_stream_twitter4j.jsonl", tmp_path)
    assert events[0] == Event.of_delete("6832057002")
    tweet = events[1].post
    assert tweet is not None and tweet.id == "6832063504"
    assert tweet.created_at == dt.datetime(2009, 12, 19, 16, 1, 35, tzinfo=dt.UTC)


def test_v1_string_timestamps_and_entities(tmp_path: Path) -> None:
    posts = _posts("twitter_v1_stream_python_twitter.jsonl", tmp_path)
    post = posts["972472962799603712"]
    assert post.text.startswith("Connect w/ @FloatHarder") and "Mom & Baby" in post.text  # &amp; unescaped
    assert post.hashtags == ["portlandme"]
    assert post.mentions == ["FloatHarder", "mainedoulas", "JadeIntegrated"]
    assert post.urls == ["http://www.portlandmomandbabyexpo.com"]


def test_v2_retweet_text_comes_from_the_included_original(tmp_path: Path) -> None:
    posts = _posts("twitter_v2_api_responses.jsonl", tmp_path)
    retweet = posts["1589681856941002753"]
    original = posts["1589671906718134272"]
    assert retweet.repost_of == original.id
    assert retweet.text == "RT @S3NT1N3L17: " + original.text
    assert not original.text.endswith("…")
    reply = posts["1576995594388000768"]
    assert (reply.reply_to, reply.quote_of) == ("1576994789110992896", "1576994746135764992")
    assert posts["1576994789110992896"].lang is None  # "qst", Twitter's "very short"
    assert posts["1394735776701816833"].lang is None  # "und"
    counts = posts["1603823063690199040"].metrics
    assert (counts.likes, counts.reposts, counts.replies, counts.quotes, counts.views) == (
        745,
        104,
        37,
        24,
        139075,
    )
    escaped = posts["1501963039859363843"]
    assert "Fields & Expansions" in escaped.text


def test_v2_media_links_are_not_urls(tmp_path: Path) -> None:
    posts = _posts("twitter_v2_filtered_stream.jsonl", tmp_path)
    assert posts["1377650387579248643"].urls == []
    assert posts["1377650387579248643"].hashtags == ["DogsofTwitter", "dogs"]
    assert posts["1377650090978992134"].urls == ["https://twitter.com/Manie_DS/status/1377640162566496258"]


def test_jetstream_reply_facets_and_delete(tmp_path: Path) -> None:
    events, _, _ = _read("bluesky_jetstream.jsonl", tmp_path)
    posts = {e.id: e.post for e in events if e.post is not None}
    reply = posts["at://did:plc:o2rolxey6s5k7d4lxcz3inl4/app.bsky.feed.post/3mptbyp7lu223"]
    assert reply.reply_to == "at://did:plc:i5y2f3gtpjxs3qg6fwgb6jb4/app.bsky.feed.post/3mpt7u2vlgs2c"
    assert reply.author_id == "did:plc:o2rolxey6s5k7d4lxcz3inl4"
    assert reply.lang == "ko"
    assert reply.created_at == dt.datetime(2026, 7, 4, 14, 38, 7, 112000, tzinfo=dt.UTC)
    tagged = posts["at://did:plc:tn3hni2jpphsgl6amfbb7ja6/app.bsky.feed.post/3mptbypfywk2v"]
    assert tagged.hashtags == ["HowToTellAiToShutUp", "IndieRebellion"]
    # The text shows a shortened link; the link facet (UTF-8 byte offsets) has the whole URL.
    link = posts["at://did:plc:dclwtltrt2ggsryagfzk7dp4/app.bsky.feed.post/3mptbyoeyc22k"]
    assert link.text == "www.youtube.com/watch?v=V5lD..."
    assert link.urls == ["https://www.youtube.com/watch?v=V5lDo-jw8mA"]
    # `langs: ["en-US", "en"]` -> "en"; createdAt with a +00:00 offset.
    ufo = posts["at://did:plc:ybqkf2mtfbwx3qhga63mttja/app.bsky.feed.post/3mptbyoigog2b"]
    assert ufo.lang == "en" and ufo.created_at == dt.datetime(2026, 7, 4, 14, 38, 2, tzinfo=dt.UTC)
    deletes = [e.id for e in events if e.type == "delete"]
    assert deletes == ["at://did:plc:4smmjsqf6l5jkzczvw6vsrqc/app.bsky.feed.post/3mpt73z3ejc2p"]


def test_mastodon_html_becomes_clean_text(tmp_path: Path) -> None:
    post = _posts("mastodon_status_fosstodon.json", tmp_path)["114620457512351116"]
    assert "<" not in post.text and "invisible" not in post.text
    assert post.text.startswith("Super grateful to have received an R Consortium grant")
    assert (
        "https://r-consortium.org/posts/r-consortium-awards-first-round-of-2025-isc-grants/#bridging"
        in post.text
    )
    assert post.text.endswith("#rstats cc @maelle")
    assert post.hashtags == ["rstats"]
    assert post.mentions == ["maelle@mastodon.social"]
    assert post.urls == [
        "https://r-consortium.org/posts/r-consortium-awards-first-round-of-2025-isc-grants/"
        "#bridging-worlds-enhancing-r-igraph-with-c-core-innovations"
    ]
    assert post.created_at == dt.datetime(2025, 6, 3, 16, 49, 43, 431000, tzinfo=dt.UTC)
    docs = _posts("mastodon_status_docs_example.json", tmp_path)["103270115826048975"]
    assert docs.text.startswith(
        '"I lost my inheritance with one wrong digit on my sort code"\n\nhttps://www.'
    )
    assert (docs.metrics.likes, docs.metrics.reposts, docs.metrics.replies) == (11, 6, 5)


def test_mastodon_paragraphs_and_line_breaks(tmp_path: Path) -> None:
    post = _posts("mastodon_timeline_tag_rstats.json", tmp_path)["114869631572884594"]
    assert post.text.startswith(
        "The conference is almost sold out so make sure to get a ticket. Less than 50 left!\nJoin"
    )
    assert (
        "\n\nRegister for in-person and virtual events: \nhttps://user2025.r-project.org/register\n\n#useR2025"
        in post.text
    )
    assert post.hashtags == ["user2025", "rstats"]


def test_archive_unescapes_and_finds_retweets(tmp_path: Path) -> None:
    posts = _posts("twitter_archive_tweets.js", tmp_path)
    quote = posts["2020819217096868102"]
    assert "\n> Sage mir worüber" in quote.text and "-> #wersindmeinefreunde" in quote.text
    assert "&gt;" not in quote.text
    assert quote.author_id == "unknown"  # no account.js beside the sample
    # A retweet of one's own photo post names its original through the photo.
    assert posts["2027827875185938759"].repost_of == "2027739112069878026"
    # Other archive retweets carry no original id.
    assert posts["2001571772517253131"].repost_of == "unknown"
    assert "trips & tranqs" in posts["2001571772517253131"].text
    assert posts["2028444338221359605"].lang is None  # "qme": media only
    assert posts["2028444338221359605"].metrics.likes == 1  # "favorite_count" : "1"
    assert posts["2029903943413772741"].created_at == dt.datetime(2026, 3, 6, 12, 56, 28, tzinfo=dt.UTC)
    assert posts["2029903943413772741"].reply_to == "2029892515050991732"


def test_keep_extra_keeps_unmapped_fields(tmp_path: Path) -> None:
    path = need(FORMATS_DIR / "mastodon_status_fosstodon.json")
    (event,) = read_events(path, keep_extra=True)
    assert event.post is not None and event.post.extra is not None
    assert event.post.extra["url"] == "https://fosstodon.org/@schochastics/114620457512351116"
    assert "content" not in event.post.extra
    (v2,) = [
        e
        for e in read_events(
            FORMATS_DIR / "twitter_v2_postman_tweet_lookup_tweet_fields.json", keep_extra=True
        )
    ]
    assert v2.post is not None and v2.post.extra == {"possibly_sensitive": False, "source": "Twitter Web App"}
