"""Quality filters made for posts, not web pages.

Web-page heuristics (mean word length, stop-word counts, lines ending in punctuation) reject nearly
every post. These look at what goes wrong in posts instead: nothing but mentions, links and hashtags;
too little left to say anything; one character or one word flooding the post; hashtag and mention
stuffing. "Too short" is soft: a short reply whose parent is in the corpus is kept, since threads are
what conversation tuning learns from.
"""

from __future__ import annotations

import re

from roost.curate.config import QualityConfig
from roost.curate.steps import Doc, Filter

# What is not the author's own words: placeholders, hashtags, PII tags.
_NOT_OWN_WORDS = re.compile(r"@user\b|@\w+|\bhttp\b|#\w+|\[(?:email|phone|ip|card|secret)\]")
_ALNUM = re.compile(r"[^\W_]")
_RUN_OF_FOUR = re.compile(r"(.)\1{3,}", re.DOTALL)
# Symbols and emoji: a post of only emoji says something, links and mentions alone do not.
_SYMBOL = re.compile(r"[^\w\s!-/:-@\[-`{-~¡-¿‐-‧…]")
_HASHTAG = re.compile(r"(?<![\w&])#\w")
_MENTION = re.compile(r"(?<![\w.])@\w")


class QualityFilter(Filter):
    name = "quality"
    soft_reasons = frozenset({"too_short"})

    def __init__(self, config: QualityConfig) -> None:
        super().__init__()
        self.config = config
        self._flood = re.compile(r"(.)\1{" + str(config.flood_run - 1) + ",}", re.DOTALL)
        # min_content_chars letters or digits, with anything between them.
        needed = max(config.min_content_chars, 1)
        self._enough = re.compile(
            r"[^\W_]" + (r"(?:[\W_]*[^\W_]){" + str(needed - 1) + "}" if needed > 1 else "")
        )

    def reject(self, doc: Doc) -> str | None:
        text, config = doc.text, self.config
        if not text:
            return "empty"
        if len(text) > config.max_chars:
            return "too_long"
        if _RUN_OF_FOUR.search(text) and self._flooded(text):
            return "char_flood"
        marked = "@" in text or "#" in text or "http" in text or "[" in text
        own = _NOT_OWN_WORDS.sub(" ", text) if marked else text
        if not _ALNUM.search(own):
            # Emoji alone still say something (a reply of "😂" is part of a thread); links,
            # mentions and hashtags alone do not.
            return "too_short" if _SYMBOL.search(own) else "only_links_mentions_hashtags"
        if text.count("#") > config.max_hashtags and len(_HASHTAG.findall(text)) > config.max_hashtags:
            return "hashtag_stuffing"
        if text.count("@") > config.max_mentions and len(_MENTION.findall(text)) > config.max_mentions:
            return "mention_stuffing"
        words = text.lower().split()
        if len(words) >= config.repetition_min_words and len(
            set(words)
        ) < config.repetition_max_unique_share * len(words):
            return "repetition"
        if not self._enough.search(own):
            return "too_short"
        return None

    def _flooded(self, text: str) -> bool:
        """One character repeated `flood_run` times, or runs of 4+ covering `flood_share` of the post."""
        if self._flood.search(text):
            return True
        covered = sum(len(m.group(0)) for m in _RUN_OF_FOUR.finditer(text))
        return len(text) >= 20 and covered >= self.config.flood_share * len(text)
