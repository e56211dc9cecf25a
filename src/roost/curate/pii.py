"""PII scrubbing: e-mail addresses, phone numbers, IP addresses, card numbers and secrets.

Each kind is replaced by a bracketed tag (`[email]`, `[phone]`, ...), so the post stays readable and
nothing identifying reaches the corpus or the shards. Phone numbers are found by Google's
libphonenumber (the `phonenumbers` port), trying the region the post's language suggests and then a
list of others; card numbers must pass the Luhn check and start like a real card; secrets are the
token formats providers publish plus `password=...`-style assignments.

Detectors run from the most specific to the least (a secret may contain digits a phone matcher would
take; an IP address looks like digits with dots), and cheap pre-checks skip the regular expressions a
post cannot match.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter

import phonenumbers

from roost.curate.config import PiiConfig
from roost.curate.steps import Doc, Step

# Provider token formats, as the providers document them, plus generic secret assignments.
_SECRET = re.compile(
    "|".join(
        [
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
            r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b",
            r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255}\b",
            r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b",
            r"\bglpat-[A-Za-z0-9_\-]{20,}",
            r"\bxox[abposr]-[A-Za-z0-9\-]{10,}",
            r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}\b",
            r"\bsk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_\-]{20,}",
            r"\bAIza[0-9A-Za-z_\-]{35}",
            r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
            r"\bSG\.[A-Za-z0-9_\-]{16,32}\.[A-Za-z0-9_\-]{16,64}",
            r"\b(?:npm|hf)_[A-Za-z0-9]{30,}\b",
            r"\bSK[0-9a-f]{32}\b",
            # key = value: only the value is the secret (the lookbehind keeps the key readable), and
            # a value of lowercase letters is a word ("the secret: practice"), not a secret.
            r"(?i:(?<=password)|(?<=passwd)|(?<=secret)|(?<=api_key)|(?<=apikey)|(?<=api-key)"
            r"|(?<=token)|(?<=access_key))(?P<separator>\s*[:=]\s*[\"']?)"
            r"(?=[^\s\"']*[\d!$%&*#@^~]|[^\s\"']*[a-z][^\s\"']*[A-Z])[^\s\"']{6,}",
        ]
    )
)
_EMAIL = re.compile(
    r"(?<![\w.+\-])[A-Za-z0-9][A-Za-z0-9!#$%&'*+/=?^_`{|}~\-]*(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}\b"
    # obfuscated: name [at] domain [dot] com, name(at)domain(dot)com, name {at} domain {dot} com
    r"|\b[\w.+\-]+\s*[\[({<]\s*at\s*[\])}>]\s*[\w\-]+(?:\s*(?:[\[({<]\s*dot\s*[\])}>]|\.)\s*[\w\-]+)+",
    re.IGNORECASE,
)
_OBFUSCATED_AT = re.compile(r"[\[({<]\s*at\s*[\])}>]", re.IGNORECASE)
# Cheap tests that rule a detector out for most posts: every provider token is a run of 20+ token
# characters, and a secret assignment needs a key word before ":" or "=".
_TOKEN_RUN = re.compile(r"[\w\-]{20}", re.ASCII)
_ASSIGNMENT = re.compile(r"(?i:password|passwd|secret|api[_\-]?key|token|access_key)\s*[:=]")
# 13 to 19 digits, optionally grouped by single spaces or dashes; "+" starts a phone number instead.
_CARD = re.compile(r"(?<![\d\-+])\d(?:[ \-]?\d){12,18}(?![\d\-])")
_IPV4 = re.compile(
    r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w]|\.\d)"
)
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%\w+)?(?![\w:])")
# At least seven digits with separators: what a card, phone or IPv4 address needs.
_DIGITS = re.compile(r"\d(?:[\s().\-/]{0,3}\d){6,}")
_IPV4_HINT = re.compile(r"\d\.\d{1,3}\.\d")
_VALID = phonenumbers.Leniency.VALID
# Digits a phone matcher may take for a number in some region but that read as a date.
_DATE = re.compile(r"\d{1,4}[./\-]\d{1,2}[./\-]\d{2,4}$")

#: The phone region tried first for a post in each language.
LANG_REGION = {
    "en": "US",
    "es": "ES",
    "fr": "FR",
    "de": "DE",
    "it": "IT",
    "pt": "BR",
    "ja": "JP",
    "hi": "IN",
    "ar": "SA",
    "el": "GR",
    "nl": "NL",
    "tr": "TR",
    "ru": "RU",
    "ko": "KR",
    "zh": "CN",
    "id": "ID",
    "pl": "PL",
    "sv": "SE",
}


def _glued_at(text: str) -> bool:
    """An @ right after a word character: what every e-mail address has and a mention has not."""
    at = text.find("@", 1)
    while at != -1:
        before = text[at - 1]
        if before.isalnum() or before in "._-+":
            return True
        at = text.find("@", at + 1)
    return False


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum every payment card number carries."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_prefix(digits: str) -> bool:
    """Issuer ranges (IIN) and lengths of the card networks in common use."""
    n = len(digits)
    two, four = int(digits[:2]), int(digits[:4])
    if digits[0] == "4":
        return n in (13, 16, 19)  # Visa
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return n == 16  # Mastercard
    if two in (34, 37):
        return n == 15  # American Express
    if digits.startswith("6011") or two == 65 or 644 <= int(digits[:3]) <= 649 or two == 62:
        return 16 <= n <= 19  # Discover, UnionPay
    if two == 35:
        return 16 <= n <= 19  # JCB
    if two in (30, 36, 38, 39):
        return 14 <= n <= 19  # Diners Club
    return False


class PiiScrubber:
    """Finds and replaces PII in one text; counts what it replaced by kind."""

    def __init__(self, config: PiiConfig) -> None:
        self.config = config
        self.tags = config.replacements
        self.regions = list(dict.fromkeys(r.upper() for r in config.phone_regions))
        self.counts: Counter[str] = Counter()

    def scrub(self, text: str, lang: str | None = None) -> str:
        config = self.config
        if config.secrets and (
            "-----BEGIN" in text
            or _TOKEN_RUN.search(text)
            or (("=" in text or ":" in text) and _ASSIGNMENT.search(text))
        ):
            text = _SECRET.sub(self._secret, text)
        if config.emails and (_glued_at(text) or _OBFUSCATED_AT.search(text)):
            text = self._sub(_EMAIL, "email", text)
        if config.ips and text.count(":") >= 2:
            text = _IPV6.sub(self._ipv6, text)
        if config.ips and _IPV4_HINT.search(text):
            text = _IPV4.sub(self._ipv4, text)
        if not _DIGITS.search(text):
            return text
        if config.cards:
            text = _CARD.sub(self._card, text)
        if config.phones and _DIGITS.search(text):
            text = self._phones(text, lang)
        return text

    def _sub(self, pattern: re.Pattern[str], kind: str, text: str) -> str:
        text, n = pattern.subn(self.tags[kind], text)
        self.counts[kind] += n
        return text

    def _secret(self, match: re.Match[str]) -> str:
        self.counts["secret"] += 1
        return (match.group("separator") or "") + self.tags["secret"]

    def _card(self, match: re.Match[str]) -> str:
        digits = match.group(0).replace(" ", "").replace("-", "")
        if luhn_valid(digits) and _card_prefix(digits):
            self.counts["card"] += 1
            return self.tags["card"]
        return match.group(0)

    def _ipv4(self, match: re.Match[str]) -> str:
        address = ipaddress.IPv4Address(match.group(0))
        if address.is_loopback or address.is_unspecified:
            return match.group(0)
        self.counts["ip"] += 1
        return self.tags["ip"]

    def _ipv6(self, match: re.Match[str]) -> str:
        candidate = match.group(0)
        if candidate.count(":") < 2:
            return candidate
        try:
            address = ipaddress.IPv6Address(candidate)
        except ValueError:
            return candidate
        if address.is_loopback or address.is_unspecified:
            return candidate
        self.counts["ip"] += 1
        return self.tags["ip"]

    def _phones(self, text: str, lang: str | None) -> str:
        first = LANG_REGION.get(lang or "", self.regions[0] if self.regions else "US")
        for region in [first, *(r for r in self.regions if r != first)]:
            matches = [
                m
                for m in phonenumbers.PhoneNumberMatcher(text, region, leniency=_VALID)
                if not _DATE.match(m.raw_string)
            ]
            if matches:
                parts, end = [], 0
                for match in matches:
                    parts.append(text[end : match.start])
                    parts.append(self.tags["phone"])
                    end = match.end
                parts.append(text[end:])
                text = "".join(parts)
                self.counts["phone"] += len(matches)
            if not _DIGITS.search(text):
                break
        return text


class ScrubPii(Step):
    name = "pii"

    def __init__(self, config: PiiConfig) -> None:
        super().__init__()
        self.scrubber = PiiScrubber(config)
        # The scrubber's counts are this step's counters.
        self.stats = self.scrubber.counts

    def process(self, doc: Doc) -> None:
        doc.text = self.scrubber.scrub(doc.text, doc.post.lang)
