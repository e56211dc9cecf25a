"""Plain tables of posts, JSON Lines, CSV or Parquet, read through a column mapping.

Each Post field is read from the column of the same name unless `mapping` names another
(`{"text": "body", "id": "tweet_id"}`; a dotted name like `user.id` reaches into nested JSON). The
engagement counts come from `likes`, `reposts`, `replies`, `quotes`, `views` or a `metrics` object.
What a record lacks is filled deterministically, so that a bare `{"id", "text"}` file imports:
`defaults` first (`{"author_id": "me"}`), then author "unknown", time 1970-01-01T00:00:00Z, and,
for a record without an id, `sha256:` + the first 32 hex digits of the SHA-256 of author, time and
text (importing the same file twice still stores each post once). Hashtags, mentions and links
come from their columns when mapped and present (a list, a JSON list, or a space- or
comma-separated string), else from the text. Text is kept exactly as the table has it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from roost.formats import entities
from roost.formats.fields import (
    NO_TIME,
    UNKNOWN,
    as_utc,
    distinct,
    epoch_time,
    iso_time,
    language,
    optional_ident,
)
from roost.formats.records import Item, ParseError, Parser, RecordData, decode
from roost.posts import Event, Metrics, Post

_POST_FIELDS = ("id", "text", "author_id", "created_at", "lang", "reply_to", "repost_of", "quote_of")
# Entities read from a column when the record has one, else found in the text.
_EXTRACTORS = {"hashtags": entities.hashtags_in, "mentions": entities.mentions_in, "urls": entities.urls_in}
_ENTITY_FIELDS = tuple(_EXTRACTORS)
_METRIC_FIELDS = tuple(Metrics.__struct_fields__)
#: The fields a mapping can name, each read by default from the column of its own name.
FIELDS = _POST_FIELDS + _ENTITY_FIELDS + _METRIC_FIELDS
_ENTITY_MARKS = {"hashtags": "#＃", "mentions": "@＠", "urls": ""}
_row_decoder = msgspec.json.Decoder(dict[str, Any])
_NO_METRICS = Metrics()


class _Columns:
    """Where each field is read from, and what stands in when a record lacks it."""

    def __init__(self, mapping: Mapping[str, str] | None, defaults: Mapping[str, str] | None) -> None:
        mapping, defaults = dict(mapping or {}), dict(defaults or {})
        for name in [*mapping, *defaults]:
            if name not in FIELDS:
                raise ValueError(
                    f"unknown Post field {name!r} in the column mapping; fields: {', '.join(FIELDS)}"
                )
        for name in ("id", "text"):
            if name in defaults:
                raise ValueError(f"{name} cannot have a default: it differs for every post")
        columns = {name: [mapping.get(name, name)] for name in FIELDS}
        for name in _METRIC_FIELDS:
            if name not in mapping:
                columns[name].append(f"metrics.{name}")
        # Each column with its dotted path split once, here, rather than for every row.
        self.sources = {
            name: [(c, c.split(".") if "." in c else None) for c in cs] for name, cs in columns.items()
        }
        self.defaults = defaults
        self.mapped = {column.split(".", 1)[0] for cs in columns.values() for column in cs}
        # Most tables have no engagement counts: one set test then spares five lookups per row.
        self.metric_columns = frozenset(c.split(".", 1)[0] for name in _METRIC_FIELDS for c in columns[name])
        self.metric_defaults = any(name in defaults for name in _METRIC_FIELDS)

    def metrics(self, row: dict[str, Any]) -> Metrics:
        if not self.metric_defaults and self.metric_columns.isdisjoint(row):
            return _NO_METRICS
        return Metrics(**{name: _count(self.get(row, name), name) for name in _METRIC_FIELDS})

    def get(self, row: dict[str, Any], name: str) -> Any:
        for column, path in self.sources[name]:
            value = row.get(column)
            if value is None and path is not None:
                value = _walk(row, path)
            if value is not None and value != "":
                return value
        return self.defaults.get(name)


def _walk(value: Any, path: list[str]) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _time(value: Any) -> dt.datetime:
    if value is None:
        return NO_TIME
    if isinstance(value, dt.datetime):
        return as_utc(value)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), dt.UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return epoch_time(value)
    if isinstance(value, str):
        text = value.strip()
        return epoch_time(float(text)) if text.replace(".", "", 1).isdigit() else iso_time(text)
    raise ParseError(f"created_at {value!r:.64} is neither a time nor a Unix timestamp")


def _entity_list(value: Any, name: str) -> list[str]:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = msgspec.json.decode(text)
            except msgspec.DecodeError:
                raise ParseError(f"{name} {text[:64]!r} is not a JSON list") from None
        else:
            value = text.replace(",", " ").split()
    if not isinstance(value, list):
        raise ParseError(f"{name} {value!r:.64} is not a list")
    marks = _ENTITY_MARKS[name]
    return distinct(str(item).lstrip(marks) if marks else str(item) for item in value if item is not None)


def _count(value: Any, name: str) -> int:
    if value is None:
        return 0
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(value) if not isinstance(value, str) else int(float(value.strip()))
    except (ValueError, OverflowError, TypeError):
        raise ParseError(f"{name} {value!r:.64} is not a count") from None


def _post(row: dict[str, Any], columns: _Columns, source: str, keep_extra: bool) -> Post:
    text = columns.get(row, "text")
    if not isinstance(text, str):
        raise ParseError(
            "no text: the text is empty or there is no text column (name it with --map text=COLUMN)"
            if text is None
            else f"text is a {type(text).__name__}"
        )
    author_id = optional_ident(columns.get(row, "author_id"), "author_id") or UNKNOWN
    created_at = _time(columns.get(row, "created_at"))
    post_id = optional_ident(columns.get(row, "id"), "id")
    if post_id is None:
        digest = hashlib.sha256(f"{author_id}\0{created_at.isoformat()}\0{text}".encode()).hexdigest()
        post_id = f"sha256:{digest[:32]}"
    hashtags, mentions, urls = (
        _entity_list(value, name) if (value := columns.get(row, name)) is not None else extract(text)
        for name, extract in _EXTRACTORS.items()
    )
    return Post(
        id=post_id,
        text=text,
        author_id=author_id,
        created_at=created_at,
        lang=language(columns.get(row, "lang")),
        reply_to=optional_ident(columns.get(row, "reply_to"), "reply_to"),
        repost_of=optional_ident(columns.get(row, "repost_of"), "repost_of"),
        quote_of=optional_ident(columns.get(row, "quote_of"), "quote_of"),
        hashtags=hashtags,
        mentions=mentions,
        urls=urls,
        metrics=columns.metrics(row),
        source=source,
        extra={key: value for key, value in row.items() if key not in columns.mapped} if keep_extra else None,
    )


def make_parser(
    source: Path | None,
    *,
    keep_extra: bool = False,
    mapping: Mapping[str, str] | None = None,
    defaults: Mapping[str, str] | None = None,
    format_name: str = "jsonl",
) -> Parser:
    """The parser for rows (dicts) or JSON objects through `mapping`; `format_name` becomes Post.source."""
    columns = _Columns(mapping, defaults)

    def parse(data: RecordData) -> list[Item]:
        row = data if isinstance(data, dict) else decode(_row_decoder, data, "JSON object")
        return [Event.of_post(_post(row, columns, format_name, keep_extra))]

    return parse
