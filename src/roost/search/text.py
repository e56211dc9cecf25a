"""How search reads text: the analyzers the lexical index and the citation checks share, hashtags
split into the words they run together, and a user's query taken apart into words, phrases, tags.

One analyzer everywhere (tantivy's simple tokenizer, lowercased, accents folded, English Snowball
stems) so that a query, an indexed post and an answer sentence are compared on the same terms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache, lru_cache

import tantivy

from roost.posts import Post

ANALYZER = "roost"
# Citation checks compare content words: the stop words of the simulator's and most real posts'
# languages are left out so that "the" or "de" never counts as support.
_STOPWORD_LANGUAGES = ("english", "spanish", "french", "german", "italian", "portuguese")

_HASHTAG = re.compile(r"(?<![\w&])#(\w+)")
_LINK = re.compile(r"https?://\S+", re.IGNORECASE)
_QUERY_PART = re.compile(r'(-?)"([^"]*)"|(-?)(\S+)')


@cache
def analyzer() -> tantivy.TextAnalyzer:
    """The index's analyzer for post text: simple tokens, no over-long ones, lowercase, ASCII-folded
    (café = cafe, fútbol = futbol) and stemmed (matches = match)."""
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


@cache
def _content_analyzer() -> tantivy.TextAnalyzer:
    builder = (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
    )
    for language in _STOPWORD_LANGUAGES:
        builder = builder.filter(tantivy.Filter.stopword(language))
    return builder.filter(tantivy.Filter.ascii_fold()).filter(tantivy.Filter.stemmer("english")).build()


def terms(text: str) -> list[str]:
    """The index's terms for `text`, in order."""
    return analyzer().analyze(text)


def content_terms(text: str) -> set[str]:
    """Stemmed words of `text` that carry meaning: no stop words, no one-letter tokens, no links."""
    return {t for t in _content_analyzer().analyze(_LINK.sub(" ", text)) if len(t) > 1}


def hashtags_in(text: str) -> list[str]:
    """Hashtags written in `text`, without `#`, in order."""
    return _HASHTAG.findall(text)


@lru_cache(maxsize=1 << 16)  # a platform's tags repeat: each is split once
def split_hashtag(tag: str) -> str:
    """The words a camel-cased hashtag runs together: "CatBooks" -> "Cat Books",
    "MakeAMovieSick" -> "Make A Movie Sick", "420Celebs" -> "420 Celebs"."""
    tag = tag.lstrip("#")
    words: list[str] = []
    start = 0
    for i in range(1, len(tag)):
        before, here, after = tag[i - 1], tag[i], tag[i + 1 : i + 2]
        if (
            here == "_"
            or before == "_"
            or (before.islower() and here.isupper())
            or (before.isdigit() != here.isdigit())
            or (before.isupper() and here.isupper() and after.islower())  # "NFLTeams": NFL | Teams
        ):
            words.append(tag[start:i])
            start = i
    words.append(tag[start:])
    return " ".join(w for w in (w.strip("_") for w in words) if w)


@lru_cache(maxsize=1 << 16)
def normalize_tag(tag: str) -> str:
    """How hashtags are stored and matched: without `#`, case-folded (#NBA = #nba)."""
    return tag.lstrip("#").casefold()


def indexed_text(post: Post) -> str:
    """What the lexical index reads: the text, then the words of each hashtag (so a search for
    "cat books" finds #CatBooks)."""
    return text_with_tags(post.text, post.hashtags)


def text_with_tags(text: str, hashtags: list[str]) -> str:
    """`indexed_text` of a post given as its text and hashtags."""
    # `"#" in text` first: most posts have no hashtag, and a substring test is far cheaper than a
    # regex scan (indexing runs this once per post).
    tags = hashtags or (hashtags_in(text) if "#" in text else ())
    if not tags:
        return text
    return " ".join([text, *[split_hashtag(tag) for tag in tags]])


def has_links(post: Post) -> bool:
    return bool(post.urls) or ("://" in post.text and _LINK.search(post.text) is not None)


@dataclass
class ParsedQuery:
    """A search box's text taken apart. Words are ORed for `top` and ANDed for `latest`; a "quoted
    phrase" must appear as written; `#tag` matches the hashtag (or its words in the text);
    a leading `-` excludes a word, phrase or tag."""

    words: list[str] = field(default_factory=list)
    phrases: list[list[str]] = field(default_factory=list)
    hashtags: list[str] = field(default_factory=list)
    excluded_words: list[str] = field(default_factory=list)
    excluded_phrases: list[list[str]] = field(default_factory=list)
    excluded_hashtags: list[str] = field(default_factory=list)
    plain: list[str] = field(default_factory=list)  # the positive parts as written, for the embedder

    @property
    def positive(self) -> bool:
        """Whether anything must match (a query of exclusions alone matches nothing to rank)."""
        return bool(self.words or self.phrases or self.hashtags)

    def text(self) -> str:
        """The query as plain words, for the embedder: phrases and hashtags' words included."""
        return " ".join(self.plain)


def parse_query(query: str) -> ParsedQuery:
    parsed = ParsedQuery()
    for m in _QUERY_PART.finditer(query):
        if m[2] is not None:  # a quoted phrase
            words = terms(m[2])
            if not m[1]:
                parsed.plain.append(m[2])
            if len(words) == 1:
                (parsed.excluded_words if m[1] else parsed.words).extend(words)
            elif words:
                (parsed.excluded_phrases if m[1] else parsed.phrases).append(words)
            continue
        token, negated = m[4], bool(m[3])
        if not negated:
            parsed.plain.append(split_hashtag(token) if token.startswith("#") else token)
        if token.startswith("#") and len(token) > 1:
            (parsed.excluded_hashtags if negated else parsed.hashtags).append(token[1:])
        else:
            (parsed.excluded_words if negated else parsed.words).extend(terms(token))
    return parsed
