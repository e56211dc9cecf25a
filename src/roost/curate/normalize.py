"""Text normalisation for posts: one canonical form before anything judges or counts them.

Unicode NFC, HTML entities decoded (platforms send `&amp;`), control characters dropped, whitespace
collapsed, mentions replaced by `@user` (except public handles on an allow-list) and links by `http`,
the placeholders the tokenizer keeps as single tokens. Each rule is a config switch.
"""

from __future__ import annotations

import html
import re
import unicodedata

from roost.curate.config import NormalizeConfig
from roost.curate.steps import Doc, Step
from roost.tokenizer import MENTION_PLACEHOLDER, URL_PLACEHOLDER

# Control characters except tab/newline, and invisible characters that only hide text. The
# zero-width joiner (U+200D) stays: emoji sequences are built with it.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u2060\ufeff]")
_RETWEET = re.compile(r"^RT @\w+:\s*")
# A link ends before trailing punctuation that belongs to the sentence ("see https://x.co/a).").
_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"]*[^\s<>\".,;:!?)\]}'’”…]", re.IGNORECASE)
# A mention is an @ not glued to a word (so e-mail addresses are not mentions); a fediverse handle
# (@name@instance.social) is one mention.
_MENTION = re.compile(r"(?<![\w@.+\-/])@(\w{1,50})(@[\w\-]+(?:\.[\w\-]+)+)?")
_MENTION_RUN = re.compile(re.escape(MENTION_PLACEHOLDER) + r"(?: " + re.escape(MENTION_PLACEHOLDER) + r"\b)+")
_H_SPACE = re.compile(r"[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
_SPACE_AROUND_NEWLINE = re.compile(r" ?\n ?")
_BLANK_LINES = re.compile(r"\n{3,}")
# Anything the whitespace rules would change; most posts have none, and skip them.
_WHITESPACE_WORK = re.compile(r"[\t\r\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]|  | \n|\n |\n\n\n")


class Normalize(Step):
    name = "normalize"

    def __init__(self, config: NormalizeConfig) -> None:
        super().__init__()
        self.config = config
        self.allow = {h.lower().lstrip("@") for h in config.mention_allowlist}

    def process(self, doc: Doc) -> None:
        doc.text = self.normalize(doc.text)

    def _mention(self, match: re.Match[str]) -> str:
        handle = match.group(1).lower()
        full = handle + (match.group(2) or "").lower()
        if handle in self.allow or full in self.allow:
            self.stats["mentions_kept"] += 1
            return match.group(0)
        self.stats["mentions_replaced"] += 1
        return MENTION_PLACEHOLDER

    def normalize(self, text: str) -> str:
        """The normalised form of one post's text."""
        config, stats = self.config, self.stats
        if config.nfc and not text.isascii() and not unicodedata.is_normalized("NFC", text):
            text = unicodedata.normalize("NFC", text)
            stats["nfc"] += 1
        if config.html_entities and "&" in text:
            unescaped = html.unescape(text)
            if unescaped != text:
                text = unescaped
                stats["html_entities"] += 1
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if not text.isprintable() and _CONTROL.search(text):
            text = _CONTROL.sub("", text)
            stats["control_chars"] += 1
        if config.strip_retweet_prefix and text.startswith("RT @"):
            text = _RETWEET.sub("", text, count=1)
            stats["retweet_prefix"] += 1
        if config.replace_urls and ("://" in text or "ww." in text.lower()):
            text, n = _URL.subn(URL_PLACEHOLDER, text)
            stats["urls_replaced"] += n
        if config.replace_mentions and "@" in text:
            text = _MENTION.sub(self._mention, text)
        if config.collapse_whitespace and (
            "  " in text
            or "\n" in text
            or "\t" in text
            or (not text.isascii() and _WHITESPACE_WORK.search(text))
        ):
            text = _H_SPACE.sub(" ", text)
            text = _SPACE_AROUND_NEWLINE.sub("\n", text)
            text = _BLANK_LINES.sub("\n\n", text)
        if config.collapse_mention_runs and "@user @user" in text:
            text, n = _MENTION_RUN.subn(MENTION_PLACEHOLDER, text)
            stats["mention_runs_collapsed"] += n
        return text.strip()
