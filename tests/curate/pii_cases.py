"""A labelled PII set, generated: many formats of each kind, and look-alikes that are not PII."""

from __future__ import annotations

import base64
import ipaddress
import random
import string
from dataclasses import dataclass

import phonenumbers

from roost.curate.pii import luhn_valid


@dataclass(frozen=True)
class Case:
    kind: str  # email, phone, card, ip, secret; "none" for a look-alike
    value: str  # the PII string (or the look-alike)
    text: str  # a post containing it
    lang: str = "en"


TEMPLATES = [
    "reach me at {} if you want the details",
    "{} is where to send it",
    "ok here it is: {}.",
    "my contact ({}) please don't share",
    "you can try {}, it should work",
]

# Regions tried by default (config phone_regions), with the post language that points to each.
PHONE_REGIONS = {
    "US": "en",
    "GB": "en",
    "DE": "de",
    "FR": "fr",
    "ES": "es",
    "IN": "hi",
    "BR": "pt",
    "JP": "ja",
}
# Regions outside that list: only their international form is expected to be found.
INTERNATIONAL_ONLY = ["AU", "CA", "ZA", "NL", "SE", "MX"]


def _emails(rng: random.Random) -> list[str]:
    locals_ = ["john.doe", "j_smith", "ana-maria", "bob+news", "x", "first.m.last", "user123", "O'Brien"]
    domains = [
        "example.com",
        "mail.example.co.uk",
        "uni-berlin.de",
        "startup.io",
        "sub.domain.org",
        "post.museum",
    ]
    out = []
    for _ in range(60):
        local, domain = rng.choice(locals_), rng.choice(domains)
        local = local.replace("'", "") + (str(rng.randrange(100)) if rng.random() < 0.5 else "")
        address = f"{local}@{domain}"
        out.append(address.upper() if rng.random() < 0.15 else address)
    at_forms = [
        ("[at]", "[dot]"),
        ("(at)", "(dot)"),
        ("{at}", "{dot}"),
        (" [at] ", " [dot] "),
        (" (at) ", "."),
    ]
    for _ in range(20):
        at, dot = rng.choice(at_forms)
        name, host = rng.choice(["jane", "m.rossi", "k_lee"]), rng.choice(["example", "gmail", "corp-mail"])
        out.append(f"{name}{at}{host}{dot}com")
    return out


def _phones(rng: random.Random) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    types = [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]
    formats = [
        phonenumbers.PhoneNumberFormat.INTERNATIONAL,
        phonenumbers.PhoneNumberFormat.E164,
        phonenumbers.PhoneNumberFormat.NATIONAL,
    ]
    for region in [*PHONE_REGIONS, *INTERNATIONAL_ONLY]:
        made = 0
        while made < 12:
            example = phonenumbers.example_number_for_type(region, rng.choice(types))
            national = str(example.national_number)
            # Vary the subscriber digits; keep only numbers libphonenumber calls valid.
            digits = national[:-4] + "".join(rng.choice(string.digits) for _ in range(4))
            number = phonenumbers.parse("+" + str(example.country_code) + digits)
            if not phonenumbers.is_valid_number(number):
                continue
            fmt = (
                rng.choice(formats)
                if region in PHONE_REGIONS
                else phonenumbers.PhoneNumberFormat.INTERNATIONAL
            )
            out.append((phonenumbers.format_number(number, fmt), PHONE_REGIONS.get(region, "en")))
            made += 1
    return out


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    return next(body + d for d in string.digits if luhn_valid(body + d))


def _cards(rng: random.Random) -> list[str]:
    out = []
    for prefix, length in [
        ("4", 16),
        ("51", 16),
        ("55", 16),
        ("2221", 16),
        ("34", 15),
        ("37", 15),
        ("6011", 16),
    ]:
        for _ in range(6):
            number = _luhn_complete(prefix, length, rng)
            style = rng.randrange(3)
            if length == 15:
                groups = [number[:4], number[4:10], number[10:]]
            else:
                groups = [number[i : i + 4] for i in range(0, length, 4)]
            out.append([number, " ".join(groups), "-".join(groups)][style])
    return out


def _ips(rng: random.Random) -> list[str]:
    out = []
    while len(out) < 40:
        address = ipaddress.IPv4Address(rng.getrandbits(32))
        if address.is_global:
            out.append(str(address))
    for _ in range(20):
        address = ipaddress.IPv6Address((0x2001 << 112) | rng.getrandbits(112))
        out.append(address.compressed if rng.random() < 0.6 else address.exploded)
    out += ["192.168.1.20", "10.0.0.7", "fe80::1ff:fe23:4567:890a"]
    return out


def _token(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _secrets(rng: random.Random) -> list[str]:
    alnum, upper = string.ascii_letters + string.digits, string.ascii_uppercase + string.digits
    out = []
    for _ in range(6):
        out.append("AKIA" + _token(rng, upper, 16))
        out.append("ghp_" + _token(rng, alnum, 36))
        out.append("github_pat_" + _token(rng, alnum + "_", 60))
        out.append("xoxb-" + _token(rng, string.digits, 11) + "-" + _token(rng, alnum, 24))
        out.append("sk_live_" + _token(rng, alnum, 24))
        out.append("sk-proj-" + _token(rng, alnum, 40))
        out.append("AIza" + _token(rng, alnum + "-_", 35))
        out.append("glpat-" + _token(rng, alnum, 20))
        header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').decode().rstrip("=")
        claims = base64.urlsafe_b64encode(f'{{"sub":"{rng.randrange(10**6)}"}}'.encode()).decode().rstrip("=")
        out.append(f"{header}.{claims}.{_token(rng, alnum + '-_', 43)}")
        out.append("hf_" + _token(rng, alnum, 34))
    return out


ASSIGNMENTS = ["password={}", "api_key: {}", "token = {}", "passwd:{}", "secret={}"]

LOOKALIKES = [
    "the meeting is on 2024-03-15 at 10:30, see you",
    "deadline 15/03/2024 or 03.15.2024, whichever comes first",
    "kickoff at 19:45:00 local time",
    "only $1,299.99 or €2.500,00 this week",
    "upgraded to version 2.0.1 and v1.2.3.4 of the app",
    "final score 3-2, what a game",
    "order #A12345 and ticket 4821-77 are still open",
    "ISBN 978-3-16-148410-0 is a great read",
    "my zip is 90210 and I love it",
    "years 1999 2000 2001 were wild",
    "the sha was a94a8fe5ccb19ba61c4c0873d391e987982fbbd3 before the revert",
    "request id 123e4567-e89b-12d3-a456-426614174000 failed",
    "card number 4111 1111 1111 1112 is not a real one",
    "1234 5678 9012 3456 is a classic fake",
    "tracking 1Z999AA10123456784 says tomorrow",
    "pi is 3.14159265 roughly",
    "999.300.1.1 is not an address",
    "ratio was 1.2.3 in the draft",
    "I <3 this song",
    "the #email hashtag is trending",
    "use #ff0000 for the red",
    "population 8,100,000,000 and counting",
    "call of duty 2 is out 4/20",
    "room 1204, building 7",
    "the password is in the usual place",
    "my token of appreciation goes to the team",
    "the secret: practice every day",
    "sk-8 park opens at 9",
    "set PATH=/usr/local/bin before running",
    "coordinates 48.8566, 2.3522 are in Paris",
    "the answer is 42 and 1337 people agree",
    "invoice 2023-001-000457 is paid",
    "game id 7656119804123 on steam",
    "tel aviv trip was fun",
    "at the mall at 5",
    "contact us via the form on the website",
    "dm me @example if you have questions",
    "my handle is @jane_doe on here",
    "10:00-12:00 open, 14:00-18:00 open",
    "the 5-4-3-2-1 countdown",
]


def labelled_cases(seed: int = 7) -> tuple[list[Case], list[Case]]:
    """(PII cases, look-alike cases), each embedded in a short post."""
    rng = random.Random(seed)
    positives: list[Case] = []

    def add(kind: str, value: str, lang: str = "en") -> None:
        positives.append(Case(kind, value, rng.choice(TEMPLATES).format(value), lang))

    for value in _emails(rng):
        add("email", value)
    for value, lang in _phones(rng):
        add("phone", value, lang)
    for value in _cards(rng):
        add("card", value)
    for value in _ips(rng):
        add("ip", value)
    for value in _secrets(rng):
        add("secret", value)
    for i in range(30):
        value = _token(rng, string.ascii_letters + string.digits + "!$%", 12 + i % 8)
        positives.append(
            Case("secret", value, f"oops pasted my config {ASSIGNMENTS[i % 5].format(value)} lol")
        )
    key_body = "\n".join(_token(rng, string.ascii_letters + string.digits + "+/", 64) for _ in range(3))
    key = f"-----BEGIN RSA PRIVATE KEY-----\n{key_body}\n-----END RSA PRIVATE KEY-----"
    positives.append(Case("secret", key, f"why is my deploy failing\n{key}"))
    negatives = [Case("none", text, text) for text in LOOKALIKES]
    return positives, negatives
