"""Copy-paste on the simulated platform: exact copies and near copies of a post's text.

A near copy is what a copy-paster or a spam bot really changes: the case, the punctuation, an added
word or emoji, or the link. Hashtags, mentions and links are left as they are (except the link a
"link" change replaces), so a copy's entity fields still agree with its text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

NEAR_CHANGES = ("case", "punctuation", "word", "emoji", "link")
_EMOJI = ("🔥", "😂", "👀", "💯", "🙏", "😍", "👇", "‼️")
#: Words holding one of these are hashtags, mentions or links, which copy changes leave alone.
_ENTITY_MARKS = ("#", "@", "http")
_SLUG_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


class Copyable(Protocol):
    text: str
    hashtags: list[str]
    mentions: list[str]
    urls: list[str]


class Copy:
    """A post's text with its entity lists, as a copier takes it."""

    __slots__ = ("hashtags", "mentions", "text", "urls")

    def __init__(self, text: str, hashtags: list[str], mentions: list[str], urls: list[str]) -> None:
        self.text = text
        self.hashtags = hashtags
        self.mentions = mentions
        self.urls = urls


def near_copy(source: Copyable, rand: Callable[[], float], words: Sequence[str]) -> tuple[Copy, str]:
    """A changed copy of `source` and the name of the change; the text always differs."""
    change = NEAR_CHANGES[int(rand() * len(NEAR_CHANGES))]
    if change == "link" and not source.urls:
        change = "emoji"
    text = source.text
    urls = list(source.urls)
    if change == "case":
        text = _recase(text, upper=rand() < 0.3)
        if text == source.text:  # nothing to recase (all links, tags and emoji)
            change, text = "punctuation", _repunctuate(text, rand)
    elif change == "punctuation":
        text = _repunctuate(text, rand)
    elif change == "word":
        word = words[int(rand() * len(words))]
        text = f"{word} {text}" if rand() < 0.5 else f"{text} {word}"
    elif change == "emoji":
        emoji = _EMOJI[int(rand() * len(_EMOJI))]
        text = f"{emoji} {text}" if rand() < 0.3 else f"{text} {emoji}"
    else:
        old = urls[-1]
        new = _changed_link(old, rand)
        urls[-1] = new
        head, _, tail = text.rpartition(old)
        text = head + new + tail
    return Copy(text, list(source.hashtags), list(source.mentions), urls), change


def _repunctuate(text: str, rand: Callable[[], float]) -> str:
    """Drop or add end punctuation on the last plain word (a link, tag or mention stays intact)."""
    words = text.split(" ")
    for i in range(len(words) - 1, -1, -1):
        word = words[i]
        if word and not _is_entity(word):
            stripped = word.rstrip(".!?…")
            if stripped and stripped != word:  # it had end punctuation: drop it
                words[i] = stripped
            else:
                words[i] = word + ("!!" if rand() < 0.5 else "...")
            break
    else:
        return text + " !!"
    return " ".join(words)


def _is_entity(word: str) -> bool:
    return any(mark in word for mark in _ENTITY_MARKS)


def _recase(text: str, upper: bool) -> str:
    """Change the case of every word that is not a hashtag, mention or link."""
    words = text.split(" ")
    for i, word in enumerate(words):
        if not _is_entity(word):  # "¿#NovaX2" keeps its tag's case too
            words[i] = word.upper() if upper else word.lower()
    return " ".join(words)


def _changed_link(url: str, rand: Callable[[], float]) -> str:
    if "?" not in url and rand() < 0.5:
        return url + ("?utm_source=share", "?ref=tw", "?s=20")[int(rand() * 3)]
    base = url.split("?", 1)[0]
    return (
        base.rstrip("/")
        + "/"
        + "".join("abcdefghjkmnpqrstuvwxyz23456789"[int(rand() * 31)] for _ in range(4))
    )
