"""Hashtags, mentions and links found in plain text, for records that do not list their own.

The rules are the common ground of the platforms roost imports, not any one platform's full
grammar: a hashtag is `#` + word characters with at least one letter (`#1` is not a tag); a mention
is `@` + a handle, which may have dots (`@alice.bsky.social`) and a Mastodon domain
(`@alice@example.social`); a link starts with `http://` or `https://`. None of them may follow a
letter or digit, so `a@b.com` and `x#y` are neither. Results are distinct, in order of appearance,
without their `#` / `@`.
"""

from __future__ import annotations

import re

from roost.formats.fields import distinct

_HASHTAG = re.compile(r"(?<![\w&#/])[#＃](\w*[^\W\d]\w*)")
_MENTION = re.compile(r"(?<![\w@.+-])[@＠](\w+(?:[.-]\w+)*(?:@\w+(?:[.-]\w+)*\.\w+)?)")
_URL = re.compile(r"(?<![\w@])https?://[^\s<>\"'`]+", re.IGNORECASE)
# Punctuation that ends a sentence rather than a link ("see https://x.org/a.").
_URL_TRAILING = ".,;:!?)]}'\"…"


def hashtags_in(text: str) -> list[str]:
    return distinct(_HASHTAG.findall(text)) if "#" in text or "＃" in text else []


def mentions_in(text: str) -> list[str]:
    return distinct(_MENTION.findall(text)) if "@" in text or "＠" in text else []


def urls_in(text: str) -> list[str]:
    if "://" not in text:
        return []
    return distinct(_trim_url(match) for match in _URL.findall(text))


def _trim_url(url: str) -> str:
    while url and url[-1] in _URL_TRAILING:
        # A closing bracket belongs to the link when the link opened one (Wikipedia's "Foo_(bar)").
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break
        url = url[:-1]
    return url if "://" in url and not url.endswith("://") else ""


def found_in(text: str) -> tuple[list[str], list[str], list[str]]:
    """(hashtags, mentions, urls) of a text whose record lists none."""
    return hashtags_in(text), mentions_in(text), urls_in(text)
