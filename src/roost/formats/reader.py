"""`read_events`: any supported file in, roost Events out, with counts and quarantine.

It streams: one record is framed, parsed and handed on at a time, so a file of any size reads in
flat memory. A record that fails is quarantined with its reason and position and the file reads
on; control notices and records of other kinds (likes, follows, `limit`) are counted by kind.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roost.formats import jetstream, mastodon, native, tabular, twitter_archive, twitter_v1, twitter_v2
from roost.formats.detect import detect_format
from roost.formats.framing import csv_records, json_records, parquet_records
from roost.formats.records import ParseError, Parser, Record, Rejected, Skip, as_bytes
from roost.posts import Event
from roost.quarantine import Quarantine


@dataclass(frozen=True)
class Format:
    """One import format: how its files split into records, and how a record becomes events."""

    name: str
    records: Callable[[Path], Iterator[Record]]
    make_parser: Callable[..., Parser]  # (source path or None, *, keep_extra, **options) -> Parser
    options: frozenset[str] = frozenset()


_TABLE_OPTIONS = frozenset({"mapping", "defaults"})


def _table(name: str, records: Callable[[Path], Iterator[Record]]) -> Format:
    return Format(name, records, functools.partial(tabular.make_parser, format_name=name), _TABLE_OPTIONS)


#: Every format `roost import` reads, by name (docs/formats.md describes each).
FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("twitter-v2", json_records, twitter_v2.make_parser),
        Format("twitter-v1", json_records, twitter_v1.make_parser),
        Format("twitter-archive", json_records, twitter_archive.make_parser, frozenset({"author_id"})),
        Format("jetstream", json_records, jetstream.make_parser),
        Format("mastodon", json_records, mastodon.make_parser),
        _table("jsonl", json_records),
        _table("csv", csv_records),
        _table("parquet", parquet_records),
        Format("roost", json_records, native.make_parser),
    )
}


@dataclass
class ImportCounts:
    """What reading one or more files found."""

    records: int = 0  # lines, array elements, rows or documents read
    posts: int = 0  # post events, including originals embedded in other records
    deletes: int = 0  # delete events
    skipped: dict[str, int] = field(default_factory=dict)  # records counted and not imported, by kind
    quarantined: int = 0  # records (or parts of records) that failed, each in quarantine with its reason
    bytes_read: int = 0  # how far into the current file reading has got (for progress)


def read_events(
    path: Path,
    fmt: str | None = None,
    *,
    quarantine: Quarantine | None = None,
    counts: ImportCounts | None = None,
    keep_extra: bool = False,
    **options: Any,
) -> Iterator[Event]:
    """The events in the file at `path`, in file order (`seq` None), read in `fmt` or the detected format.

    Failing records go to `quarantine` (when given; else they are only counted), never stopping the
    read. Raises ValueError (UnknownFormatError included) up front for an unknown format or option.
    """
    path = Path(path)
    name = fmt or detect_format(path)
    spec = FORMATS.get(name)
    if spec is None:
        raise ValueError(f"unknown format {name!r}; formats: {', '.join(FORMATS)}")
    unknown = set(options) - spec.options
    if unknown:
        takes = f"takes only {', '.join(sorted(spec.options))}" if spec.options else "takes no options"
        raise ValueError(f"format {name} {takes}, not {', '.join(sorted(unknown))}")
    parse = spec.make_parser(path, keep_extra=keep_extra, **options)
    return _events(path, spec, parse, quarantine, counts if counts is not None else ImportCounts())


def _events(
    path: Path, spec: Format, parse: Parser, quarantine: Quarantine | None, counts: ImportCounts
) -> Iterator[Event]:
    source = str(path)

    def reject(reason: str, record: bytes, position: str) -> None:
        counts.quarantined += 1
        if quarantine is not None:
            quarantine.put(reason, record, source=source, position=position)

    for record in spec.records(path):
        counts.records += 1
        counts.bytes_read = record.offset
        if record.error is not None:
            reject(record.error, as_bytes(record.data), record.position())
            continue
        try:
            items = parse(record.data)
        except ParseError as exc:
            reject(str(exc), as_bytes(record.data), record.position())
            continue
        for item in items:
            if isinstance(item, Event):
                if item.type == "post":
                    counts.posts += 1
                else:
                    counts.deletes += 1
                yield item
            elif isinstance(item, Skip):
                counts.skipped[item.kind] = counts.skipped.get(item.kind, 0) + 1
            elif isinstance(item, Rejected):
                reject(item.reason, item.record, f"{record.position()} {item.where}")
