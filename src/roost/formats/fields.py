"""Field conversions every parser shares: languages, timestamps, ids, Twitter's escaped text.

Each turns one platform value into the form `roost.posts.Post` holds, and raises `ParseError` (never
anything else) when the value cannot be converted.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from collections.abc import Iterable
from typing import Any

from roost.formats.records import ParseError

#: The author of a record that names none (a CSV without an author column, an archive without
#: account.js), and the original of an archive retweet whose record does not carry its id.
UNKNOWN = "unknown"

#: The time of a record that has none: the Unix epoch, so such posts sort first and are easy to find.
NO_TIME = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

# Codes that say "no language" rather than naming one: ISO 639's undetermined / no content /
# multiple / missing, and Twitter's pseudo-codes (qme media only, qht hashtags only, qam mentions
# only, qct cashtags only, qst very short). ISO reserves qaa-qtz for local use, so all of it is out.
_NOT_LANGUAGES = frozenset({"und", "zxx", "mul", "mis"})
# Retired ISO 639-1 codes some platforms still send.
_RETIRED = {"in": "id", "iw": "he", "ji": "yi", "jw": "jv"}


def language(code: object) -> str | None:
    """The platform's language tag as a lowercase ISO 639 code (`pt-BR` -> `pt`), or None."""
    return _language(code) if isinstance(code, str) else None


@functools.lru_cache(maxsize=4096)  # a feed has few distinct tags, each seen millions of times
def _language(code: str) -> str | None:
    primary = code.strip().replace("_", "-").split("-", 1)[0].lower()
    if len(primary) not in (2, 3) or not primary.isascii() or not primary.isalpha():
        return None
    if primary in _NOT_LANGUAGES or (len(primary) == 3 and "qaa" <= primary <= "qtz"):
        return None
    return _RETIRED.get(primary, primary)


def as_utc(ts: dt.datetime) -> dt.datetime:
    """The same instant in UTC; a timestamp without a zone is taken to be UTC already."""
    if ts.tzinfo is None:
        return ts.replace(tzinfo=dt.UTC)
    try:
        return ts.astimezone(dt.UTC)
    except OverflowError:
        raise ParseError(f"time {ts.isoformat()} is out of range in UTC") from None


def iso_time(text: str) -> dt.datetime:
    """An ISO-8601 / RFC 3339 time (`2021-05-18T19:24:56.000Z`) in UTC."""
    try:
        return as_utc(dt.datetime.fromisoformat(text))
    except ValueError:
        raise ParseError(f"time {text[:64]!r} is not ISO-8601") from None


_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {month: i for i, month in enumerate(_MONTH_NAMES, 1)}


def twitter_time(text: str) -> dt.datetime:
    """Twitter's v1.1 time, `Wed Oct 10 20:19:24 +0000 2018`, in UTC.

    Parsed by hand: strptime costs more than decoding the rest of the tweet.
    """
    parts = text.split(" ")
    try:
        _, month, day, clock, zone, year = parts
        hour, minute, second = clock.split(":")
        if len(zone) != 5 or zone[0] not in "+-":
            raise ValueError(zone)
        offset = dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5])) * (-1 if zone[0] == "-" else 1)
        local = dt.datetime(int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second))
        return as_utc(local.replace(tzinfo=dt.timezone(offset)))
    except (ValueError, KeyError, IndexError, OverflowError):
        raise ParseError(f"time {text[:64]!r} is not Twitter's 'Wed Oct 10 20:19:24 +0000 2018'") from None


def epoch_time(value: float) -> dt.datetime:
    """A Unix timestamp in seconds, milliseconds or microseconds (told apart by size) in UTC."""
    try:
        seconds = float(value)
        if not math.isfinite(seconds):
            raise ValueError(value)
        # 1e11 s is the year 5138 and 1e11 ms is 1973: anything larger than that is in a finer unit.
        while abs(seconds) >= 1e11:
            seconds /= 1000
        return dt.datetime.fromtimestamp(seconds, dt.UTC)
    except (OverflowError, OSError, ValueError):
        raise ParseError(f"time {value!r:.64} is not a Unix timestamp") from None


def ident(value: object, what: str) -> str:
    """An id as a non-empty string (platforms send ids as strings or integers)."""
    if isinstance(value, bool):
        raise ParseError(f"{what} is a boolean, not an id")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value:
        return value
    raise ParseError(f"{what} is missing" if value in (None, "") else f"{what} {value!r} is not an id")


def optional_ident(value: object, what: str) -> str | None:
    """Like `ident`, but a missing value (None or "") is None."""
    return None if value is None or value == "" else ident(value, what)


def unescape_twitter(text: str) -> str:
    """Undo Twitter's escaping of `&`, `<` and `>` (and nothing else: `&copy` stays as typed)."""
    if "&" not in text:
        return text
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


#: How a retweet's text starts on Twitter.
RETWEET_PREFIX = re.compile(r"RT @\w+: ")


def retweet_text(text: str, original_text: str | None) -> str:
    """A retweet's text with the original's full text in place of Twitter's truncated copy."""
    prefix = RETWEET_PREFIX.match(text)
    if prefix is None or original_text is None:
        return text
    return prefix.group() + original_text


def distinct(items: Iterable[str]) -> list[str]:
    """The non-empty items in order of first appearance, each once."""
    return list(dict.fromkeys(item for item in items if item))


def unmapped(record: dict[str, Any] | None, mapped: frozenset[str]) -> dict[str, Any] | None:
    """The record's top-level fields that no Post field holds (what `keep_extra` keeps)."""
    if record is None:
        return None
    return {key: value for key, value in record.items() if key not in mapped}


def nested(record: dict[str, Any] | None, key: str) -> dict[str, Any] | None:
    """The object under `key` of a record being kept for `extra` (None when nothing is kept)."""
    if record is None:
        return None
    value = record.get(key)
    return value if isinstance(value, dict) else {}
