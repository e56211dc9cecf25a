"""The contract between a file's framing and a format's parser.

Framing splits a file into `Record`s (a JSON line, an array element, a CSV row, ...) and knows
where each came from. A parser turns one record into `Item`s: events to import, `Skip`s (a control
notice or another kind of record, counted and not imported) and `Rejected` parts of a record that
failed on their own. A parser raises `ParseError`, and only that, when the whole record is bad.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import msgspec

from roost.posts import Event


class ParseError(ValueError):
    """A record cannot be imported; the message says why (and where inside the record)."""


@dataclass(frozen=True, slots=True)
class Skip:
    """A record of a kind that carries no post (`limit`, `app.bsky.feed.like`, ...): counted, not imported."""

    kind: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """One part of a record that failed while the rest imported (a tweet inside a v2 page)."""

    reason: str
    record: bytes
    where: str


Item = Event | Skip | Rejected

#: What a record's data is: raw JSON (bytes or a zero-copy `msgspec.Raw` view), or a row's columns.
RecordData = bytes | msgspec.Raw | dict[str, Any]

#: A format's parser for one file: one record in, its items out.
Parser = Callable[[RecordData], list[Item]]


class Record(NamedTuple):
    """One record of a file: its data and where it came from."""

    data: RecordData
    unit: str  # "line", "element", "row" or "document"
    index: int  # 1-based line number; 0-based element index; 0-based row index, header not counted
    offset: int  # byte offset of a line or element; for rows only an estimate, for progress
    error: str | None = None  # set when framing itself found the record broken (a truncated element)

    def position(self) -> str:
        """Where the record is, for a person looking at the file: `line 12 (byte 3456)`, `row 3`."""
        if self.unit == "document":
            return "document"
        if self.unit == "row":
            return f"row {self.index}"
        return f"{self.unit} {self.index} (byte {self.offset})"


T = TypeVar("T")


def decode(decoder: msgspec.json.Decoder[T], data: RecordData, what: str) -> T:
    """Decode JSON bytes with `decoder`; every failure becomes a ParseError naming `what` was expected."""
    if isinstance(data, dict):
        raise ParseError(f"expected JSON for {what}, got a table row")
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise ParseError(f"not a {what}: {exc}") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ParseError(f"invalid JSON: {exc}") from None


def as_bytes(data: RecordData) -> bytes:
    """The record as bytes, for quarantine."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, msgspec.Raw):
        return bytes(data)
    try:
        return msgspec.json.encode(data)
    except (TypeError, msgspec.EncodeError, UnicodeEncodeError):
        return repr(data).encode("utf-8", "backslashreplace")
