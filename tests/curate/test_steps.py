"""The per-post steps one by one: normalisation, quality, spam phrases, language ID."""

from __future__ import annotations

import numpy as np
import pytest

from roost.curate.config import LangIdConfig, NormalizeConfig, QualityConfig, SpamConfig
from roost.curate.langid import LanguageId, declared_language
from roost.curate.normalize import Normalize
from roost.curate.quality import QualityFilter
from roost.curate.spam import AUTHOR_DTYPE, BoilerplateSpam, blasting_authors, literal_prefix
from roost.curate.steps import Doc, Exclusions, run_steps
from tests.curate.handmade import make_post


def normalize(text: str, **config: object) -> str:
    return Normalize(NormalizeConfig(**config)).normalize(text)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Cafe\u0301 &amp; cr\u00e8me &lt;3", "Café & crème <3"),
        ("RT @news: big day", "big day"),
        ("see https://x.co/a_b?c=1). and www.example.org/page!", "see http). and http!"),
        ("HTTPS://EXAMPLE.COM/X nice", "http nice"),
        ("mail me: jane.doe@example.com", "mail me: jane.doe@example.com"),
        ("@alice @bob @carol hi @dave", "@user hi @user"),
        ("thanks @jane@mastodon.social!", "thanks @user!"),
        ("a\u200bb \t c\r\n\n\n\nd", "ab c\n\nd"),
        ("family 👨\u200d👩\u200d👧", "family 👨\u200d👩\u200d👧"),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_mention_allowlist_and_switches() -> None:
    assert normalize("ask @NASA and @bob", mention_allowlist=["nasa"]) == "ask @NASA and @user"
    assert (
        normalize("ask @bob https://x.co", replace_mentions=False, replace_urls=False)
        == "ask @bob https://x.co"
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("@user @user http #tag", "only_links_mentions_hashtags"),
        ("ok", "too_short"),
        ("😂😂", "too_short"),
        ("noooooooooooooooooo way", "char_flood"),
        ("!!!!....!!!!....!!!!....!!!!", "char_flood"),
        (" ".join(f"#t{i}" for i in range(12)) + " look", "hashtag_stuffing"),
        ("buy buy buy buy buy buy buy buy buy now", "repetition"),
        ("a perfectly ordinary post about lunch", None),
        ("yes!", None),
    ],
)
def test_quality(text: str, reason: str | None) -> None:
    assert QualityFilter(QualityConfig()).reject(Doc(post=make_post(1, text), text=text)) == reason


def test_soft_removals_are_marked_not_dropped() -> None:
    exclusions = Exclusions(sample=1.0)
    docs = [Doc(post=make_post(i, t), text=t) for i, t in enumerate(["ok", "", "a normal post here"])]
    out = list(run_steps([QualityFilter(QualityConfig())], docs, exclusions))
    assert [d.soft_reason for d in out] == ["quality.too_short", None]
    assert exclusions.counts == {"quality.empty": 1}
    assert [e.reason for e in exclusions.sampled] == ["quality.empty"]


def test_spam_phrases() -> None:
    spam = BoilerplateSpam(SpamConfig())
    for text in [
        "Follow for follow!!",
        "CHECK MY BIO for more",
        "win a free iPhone now",
        "Crypto giveaway: send now",
    ]:
        assert spam.reject(Doc(post=make_post(1, text), text=text)) == "boilerplate", text
    assert spam.reject(Doc(post=make_post(1, "I follow the news"), text="I follow the news")) is None


def test_literal_prefix_is_a_necessary_start() -> None:
    assert literal_prefix(r"follow\s*4") == "follow"
    assert literal_prefix(r"colou?r") == "colo"
    assert literal_prefix(r"cat|dog") == ""
    assert literal_prefix(r"(?:cat|dog) food") == ""
    assert literal_prefix(r"\bword") == ""


def test_blasting_needs_copies_within_the_window_and_a_habit_of_it() -> None:
    minute = 60_000_000
    clusters = np.array([1, 1, 1, 2, 2, 2, 3, 3, 3])
    authors = np.array([7, 7, 7, 8, 8, 8, 9, 9, 9], dtype=np.uint64)
    # Author 8 spreads copies over hours; author 9 bursts once among a hundred other posts.
    times = np.array([0, 10, 20, 0, 100, 200, 0, 5, 10]) * minute
    activity = np.zeros(3, AUTHOR_DTYPE)
    activity["author"], activity["posts"] = [7, 8, 9], [5, 3, 100]
    assert blasting_authors(clusters, authors, times, activity, SpamConfig()).tolist() == [7]


def test_language_thresholds_depend_on_length_and_the_declared_language() -> None:
    lid = LanguageId(LangIdConfig())
    long_spanish = "el partido de anoche fue increíble y todavía no puedo creer cómo ganaron el título"
    assert lid.decide(long_spanish, None)[0] == "es"
    assert lid.decide(long_spanish, "en")[0] == "es"  # long and confident: the model overrides
    assert lid.decide("ok dale", "es")[0] == "es"  # short: the platform's language stands
    assert lid.decide("jaja", None)[0] in ("und", "es", "pt", "en")
    assert lid.decide("@user http", "fr") == ("fr", 0.0)  # nothing to read
    assert declared_language("en-GB") == "en" and declared_language("und") is None


def test_language_keep_list_removes_others() -> None:
    lid = LanguageId(LangIdConfig(keep=["en"]))
    text = "das spiel gestern abend war unglaublich und wir haben gewonnen"
    assert lid.reject(Doc(post=make_post(1, text, lang="de"), text=text)) == "language"
