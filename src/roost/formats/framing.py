"""Splitting a file into records, each with its position, without loading more than it must.

JSON comes three ways: JSON Lines (read a line at a time, so memory stays flat however large the
file), one JSON array (a Mastodon timeline, a Twitter archive's `window.YTD.tweets.part0 = [...]`),
or one JSON document (a pretty-printed API response). An array is memory-mapped and split by
msgspec into zero-copy views of its elements; only when the array is broken (a truncated download)
does a slower scanner walk it to save every whole element and quarantine the rest. CSV and Parquet
yield one dict per row. gzip and zstd files (told by their magic bytes) are read through a
decompressor; their positions count bytes of the decompressed content, and a compressed array is
decompressed into memory rather than mapped.
"""

from __future__ import annotations

import csv
import gzip
import io
import mmap
import re
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import msgspec
import zstandard

from roost.formats.records import Record

# `window.YTD.tweets.part0 = [` (Twitter archives): a JavaScript assignment in front of the JSON.
_JS_ASSIGNMENT = re.compile(rb"\s*(?:var\s+|const\s+|let\s+)?[A-Za-z_$][\w$.]*\s*=\s*")
_BOM = b"\xef\xbb\xbf"
# A single JSON document larger than this is not read whole to see whether it is one document.
_MAX_DOCUMENT_BYTES = 256 << 20
_ELEMENTS = msgspec.json.Decoder(list[msgspec.Raw])
_ANY = msgspec.json.Decoder()
# A JSON string (with its escapes) or one of the characters that give an array its structure.
_TOKEN = re.compile(rb'"(?:[^"\\]++|\\.)*+"|[\[\]{},]', re.DOTALL)
_MAGIC = {b"\x1f\x8b": "gzip", b"\x28\xb5\x2f\xfd": "zstd"}
_COMPRESSED_SUFFIXES = (".gz", ".zst", ".zstd")
# What a damaged compressed file raises part-way through reading it.
_DECOMPRESSION_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile, zstandard.ZstdError)


def compression(path: Path) -> str | None:
    """ "gzip" or "zstd" when the file is compressed (by its magic bytes), else None."""
    with open(path, "rb") as f:
        magic = f.read(4)
    return _MAGIC.get(magic[:2]) or _MAGIC.get(magic)


def content_name(path: Path) -> str:
    """The file's name without a compression suffix (`a.jsonl.zst` -> `a.jsonl`)."""
    name = path.name
    for suffix in _COMPRESSED_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def open_binary(path: Path) -> BinaryIO:
    """The file's content, decompressed if it is gzip or zstd."""
    kind = compression(path)
    if kind == "gzip":
        return gzip.open(path, "rb")
    if kind == "zstd":
        return io.BufferedReader(zstandard.open(path, "rb"))
    return open(path, "rb")


def js_variable(path: Path) -> str | None:
    """The variable a `name = [...]` file assigns (`window.YTD.tweets.part0`), or None."""
    try:
        with open_binary(path) as f:
            head = f.read(256).removeprefix(_BOM)
    except _DECOMPRESSION_ERRORS:
        return None
    match = _JS_ASSIGNMENT.match(head)
    return match.group().split(b"=")[0].split()[-1].decode() if match else None


def json_records(path: Path) -> Iterator[Record]:
    """The records of a JSON Lines file, a JSON array (elements) or a single JSON document."""
    try:
        with open_binary(path) as f:
            head = f.read(64 << 10)
        start = len(_BOM) if head.startswith(_BOM) else 0
        if match := _JS_ASSIGNMENT.match(head, start):
            start = match.end()
        first = head[start:].lstrip()[:1]
        if first == b"[":
            yield from _array_records(path, start)
        elif first == b"{" and _is_single_document(path, head):
            yield Record(_read_all(path), "document", 0, 0)
        else:
            yield from _line_records(path)
    except _DECOMPRESSION_ERRORS as exc:
        yield Record(b"", "document", 0, 0, error=f"the compressed file is damaged or cut short: {exc}")


def _read_all(path: Path) -> bytes:
    with open_binary(path) as f:
        return f.read()


def _is_single_document(path: Path, head: bytes) -> bool:
    """Whether a file that starts with `{` is one (pretty-printed) document rather than JSON Lines."""
    first_line = head.lstrip().split(b"\n", 1)[0]
    try:
        _ANY.decode(first_line)
        return False  # the first line is a whole value: JSON Lines
    except (msgspec.DecodeError, UnicodeDecodeError):
        pass
    if path.stat().st_size > _MAX_DOCUMENT_BYTES:
        return False
    try:
        _ANY.decode(_read_all(path))
        return True
    except (msgspec.DecodeError, UnicodeDecodeError):
        return False


def _line_records(path: Path) -> Iterator[Record]:
    offset = 0
    with open_binary(path) as f:
        for number, line in enumerate(f, 1):
            start, offset = offset, offset + len(line)
            line = line.strip()
            if number == 1:
                line = line.removeprefix(_BOM)
            if line:  # blank lines are stream keep-alives, not records
                yield Record(line, "line", number, start)


def _array_records(path: Path, start: int) -> Iterator[Record]:
    content: bytes | mmap.mmap
    if compression(path) is None:
        with open(path, "rb") as f:
            # Not closed here: the element views keep the mapping alive for as long as they live.
            content = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    else:
        content = _read_all(path)
    try:
        elements = _ELEMENTS.decode(_without_trailing_semicolon(memoryview(content)[start:]))
    except (msgspec.DecodeError, UnicodeDecodeError):
        yield from _salvage_array(content, start)
        return
    # The elements lie in order with only spaces and one comma between them, so each one's exact
    # offset is found by stepping over those from where the previous one ended.
    offset = content.find(b"[", start) + 1
    for index, element in enumerate(elements):
        while content[offset] in b" \t\r\n,":
            offset += 1
        yield Record(element, "element", index, offset)
        offset += len(element)


def _without_trailing_semicolon(body: memoryview) -> memoryview:
    end = len(body)
    while end and body[end - 1] in b" \t\r\n;":
        end -= 1
    return body[:end]


def _salvage_array(view: bytes | mmap.mmap, start: int) -> Iterator[Record]:
    """Every element of a broken JSON array; what follows the break as one record with an error.

    Walks strings and brackets with one regex, so that brackets and commas inside strings do not
    count. Elements are the spans between the array's own commas; a span that is not valid JSON is
    left for the parser to reject with its reason.
    """
    depth = 0
    index = 0
    element_start = start
    for match in _TOKEN.finditer(view, start):
        char = view[match.start()]
        if char == 0x22:  # a string: only there to hide the brackets inside it
            continue
        if depth == 1 and char in b",]":
            element = bytes(view[element_start : match.start()]).strip()
            if element or char == 0x2C:  # `[1,,2]` has an empty element; `[1,]` does not
                yield Record(element, "element", index, element_start)
                index += 1
            element_start = match.end()
            if char == 0x5D:  # the array's own closing bracket
                return
        elif char in b"[{":
            depth += 1
            if depth == 1:
                element_start = match.end()
        elif char in b"]}":
            depth -= 1
            if depth < 1:  # closes more than was opened: the structure is lost from here on
                break
    rest = bytes(view[element_start : element_start + 4096]).strip()
    if rest:
        error = f"the array breaks off in element {index} (a truncated or malformed file)"
        yield Record(rest, "element", index, element_start, error=error)


def csv_records(path: Path) -> Iterator[Record]:
    """Rows of a CSV (or, for `.tsv`, tab-separated) file with a header line, as dicts."""
    delimiter = "\t" if content_name(path).lower().endswith(".tsv") else ","
    # Posts can be long; the csv module's default cap of 128 KiB per field would reject them.
    csv.field_size_limit(min(sys.maxsize, 1 << 30))
    # surrogateescape keeps undecodable bytes so that just the row that has them is quarantined.
    with io.TextIOWrapper(open_binary(path), encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
        header: list[str] | None = None
        index = 0
        while True:
            offset = f.buffer.tell()
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                error = f"unreadable CSV {'row' if header else 'header'} at line {reader.line_num}: {exc}"
                yield Record({}, "row", index, offset, error=error)
                if header is None:
                    return
                index += 1
                continue
            except _DECOMPRESSION_ERRORS as exc:
                yield Record(
                    {}, "row", index, offset, error=f"the compressed file is damaged or cut short: {exc}"
                )
                return
            if header is None:
                header = row
                if bad := _row_error(header, header):
                    yield Record({}, "row", 0, 0, error=f"CSV header: {bad}")
                    return
            elif row:
                yield Record(
                    dict(zip(header, row, strict=False)), "row", index, offset, error=_row_error(header, row)
                )
                index += 1


def _row_error(header: list[str], row: list[str]) -> str | None:
    if len(row) > len(header):
        return f"row has {len(row)} fields, the header has {len(header)}"
    for column, value in zip(header, row, strict=False):
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:  # an undecodable byte, kept by surrogateescape
                return f"column {column!r:.64} is not valid UTF-8"
    return None


def parquet_records(path: Path, batch_rows: int = 4096) -> Iterator[Record]:
    """Rows of a Parquet file as dicts, read a batch at a time; a corrupt file is one failed record."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    size = path.stat().st_size  # a missing file is an error of the caller's, not a bad record
    index = 0
    try:
        file = pq.ParquetFile(path)
        total_rows = max(1, file.metadata.num_rows)
        for batch in file.iter_batches(batch_size=batch_rows):
            for row in batch.to_pylist():
                yield Record(row, "row", index, size * index // total_rows)
                index += 1
    except pa.ArrowException as exc:
        with open(path, "rb") as f:
            head = f.read(4096)
        yield Record(head, "row", index, 0, error=f"unreadable Parquet file: {exc}")
