"""Entities found in text, Mastodon HTML to text, and the shared field conversions."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roost.formats.entities import hashtags_in, mentions_in, urls_in
from roost.formats.fields import epoch_time, iso_time, language, retweet_text, twitter_time, unescape_twitter
from roost.formats.htmltext import html_to_text
from roost.formats.records import ParseError


def test_hashtags() -> None:
    assert hashtags_in("#one two #Two_2 #3 x#no &#39; #über ＃wide #one") == ["one", "Two_2", "über", "wide"]


def test_mentions() -> None:
    text = "@bob hi @alice.bsky.social, mail a@b.com and @carol@example.social or @dan."
    assert mentions_in(text) == ["bob", "alice.bsky.social", "carol@example.social", "dan"]


def test_urls_lose_trailing_punctuation_but_keep_balanced_brackets() -> None:
    text = "see https://x.org/a. (and http://en.wikipedia.org/wiki/Foo_(bar)) or https://t.co/xyz… http://"
    assert urls_in(text) == ["https://x.org/a", "http://en.wikipedia.org/wiki/Foo_(bar)", "https://t.co/xyz"]


def test_html_to_text_keeps_whole_links_and_paragraphs() -> None:
    html = (
        '<p>Hi <span class="h-card"><a href="https://m.s/@ann" class="u-url mention">'
        "@<span>ann</span></a></span>"
        ' &amp; <a href="https://m.s/tags/cats" class="mention hashtag" rel="tag">#<span>cats</span></a></p>'
        '<p>read <a href="https://example.org/a/long/path"><span class="invisible">https://</span>'
        '<span class="ellipsis">example.org/a/lo</span><span class="invisible">ng/path</span></a><br/>bye'
        "<script>alert(1)</script></p>"
    )
    text, links = html_to_text(html)
    assert text == "Hi @ann & #cats\n\nread https://example.org/a/long/path\nbye"
    assert links == ["https://example.org/a/long/path"]


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>/&;#'\"=abp! \n-[]")) | st.characters(), max_size=80))
def test_html_to_text_takes_any_string(html: str) -> None:
    text, links = html_to_text(html)
    assert isinstance(text, str) and all(isinstance(link, str) for link in links)


def test_languages() -> None:
    assert [
        language(c) for c in ("en", "pt-BR", "EN_us", "und", "qme", "qht", "zxx", "in", "fil", "", None, 7)
    ] == [
        "en",
        "pt",
        "en",
        None,
        None,
        None,
        None,
        "id",
        "fil",
        None,
        None,
        None,
    ]


def test_times_are_utc() -> None:
    utc = dt.UTC
    assert twitter_time("Wed Oct 10 20:19:24 +0000 2018") == dt.datetime(2018, 10, 10, 20, 19, 24, tzinfo=utc)
    assert twitter_time("Wed Oct 10 20:19:24 -0130 2018") == dt.datetime(2018, 10, 10, 21, 49, 24, tzinfo=utc)
    assert iso_time("2021-05-18T19:24:56.000Z") == dt.datetime(2021, 5, 18, 19, 24, 56, tzinfo=utc)
    assert iso_time("2021-05-18T21:24:56+02:00") == dt.datetime(2021, 5, 18, 19, 24, 56, tzinfo=utc)
    assert iso_time("2021-05-18 19:24:56") == dt.datetime(2021, 5, 18, 19, 24, 56, tzinfo=utc)  # no zone: UTC
    second = dt.datetime(2021, 3, 31, 16, 12, 31, tzinfo=utc)
    assert epoch_time(1617207151) == epoch_time(1617207151000) == epoch_time(1617207151000000) == second
    for bad in (
        "Wed Oct 10 20:19:24 2018",
        "Wed Foo 10 20:19:24 +0000 2018",
        "Wed Oct 10 20:19:24 +9999 2018",
    ):
        with pytest.raises(ParseError):
            twitter_time(bad)
    for bad in ("yesterday", "0001-01-01T00:00:00+01:00"):
        with pytest.raises(ParseError):
            iso_time(bad)
    for bad_number in (float("inf"), float("nan"), 10**400):
        with pytest.raises(ParseError):
            epoch_time(bad_number)


def test_twitter_unescape_and_retweet_text() -> None:
    assert unescape_twitter("a &lt;b&gt; &amp;amp; &copy") == "a <b> &amp; &copy"
    assert retweet_text("RT @bob: cut sho…", "cut short no more") == "RT @bob: cut short no more"
    assert retweet_text("not a retweet", "x") == "not a retweet"
