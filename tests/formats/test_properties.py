"""Property tests: no input makes a parser raise anything but ParseError, nor `read_events` raise at all.

Three kinds of input for every format: arbitrary bytes, arbitrary JSON values, and the real sample
records with one value somewhere inside replaced by an arbitrary one (which reaches the mapping
code far more often than random JSON does). Whatever a parser returns must encode as a roost Event
and decode back to the same Event, so nothing it yields can fail later in the raw store.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roost.formats import FORMATS, ImportCounts, ParseError, read_events
from roost.formats.framing import json_records
from roost.formats.records import Rejected, Skip
from roost.formats.tabular import FIELDS
from roost.posts import Event, decode_event, encode
from roost.quarantine import Quarantine, read_quarantine
from tests.conftest import FORMATS_DIR, REAL_POSTS

# Seeded and bounded: the same examples every run, and the whole module in a few seconds.
PROPERTY = settings(
    max_examples=60,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_KEYS = st.sampled_from(
    [
        "id",
        "id_str",
        "text",
        "full_text",
        "data",
        "includes",
        "tweets",
        "tweet",
        "did",
        "kind",
        "commit",
        "record",
        "created_at",
        "createdAt",
        "user",
        "account",
        "content",
        "reblog",
        "delete",
        "status",
        "limit",
        "errors",
        "type",
        "post",
        "seq",
        "author_id",
        "lang",
        "facets",
        "entities",
        "extended_tweet",
        "retweeted_status",
    ]
)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "2021-05-18T19:24:56.000Z",
            "Wed Oct 10 20:19:24 +0000 2018",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "1617293551000",
            "",
            "en",
            "und",
            "@a #b https://c.d",
        ]
    )
)
JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(_KEYS | st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=24,
)
PARSED_FORMATS = sorted(FORMATS)


def _check_items(items: list[Any]) -> None:
    for item in items:
        if isinstance(item, Event):
            assert item.seq is None and item.id
            assert decode_event(encode(item)) == item
        else:
            assert isinstance(item, Skip | Rejected)
            if isinstance(item, Rejected):
                assert item.reason and item.where


def _parse_or_reject(fmt: str, data: Any) -> None:
    parse = FORMATS[fmt].make_parser(None)
    try:
        items = parse(data)
    except ParseError as exc:
        assert str(exc)
        return
    _check_items(items)


@pytest.mark.parametrize("fmt", PARSED_FORMATS)
@PROPERTY
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_parse_errors(fmt: str, data: bytes) -> None:
    _parse_or_reject(fmt, data)


@pytest.mark.parametrize("fmt", PARSED_FORMATS)
@PROPERTY
@given(value=JSON)
def test_arbitrary_json_raises_only_parse_errors(fmt: str, value: Any) -> None:
    _parse_or_reject(fmt, msgspec.json.encode(value))


def _samples() -> list[tuple[str, Any, str]]:
    """(format, decoded record, file) for every real sample record, a real post and roost's own."""
    found: list[tuple[str, Any, str]] = []
    if FORMATS_DIR.exists():
        from roost.formats import detect_format

        for path in sorted(FORMATS_DIR.iterdir()):
            if path.name != "README.md":
                fmt = detect_format(path)
                found += [(fmt, msgspec.json.decode(r.data), path.name) for r in json_records(path)]
    if REAL_POSTS.exists():
        with open(REAL_POSTS, "rb") as f:
            found.append(("jsonl", msgspec.json.decode(f.readline()), REAL_POSTS.name))
    post = {"id": "1", "text": "t", "author_id": "a", "created_at": "2024-01-01T00:00:00Z", "hashtags": ["x"]}
    found += [
        ("roost", {"type": "post", "id": "1", "post": post, "seq": 3}, "event"),
        ("roost", post, "post"),
    ]
    return found


SAMPLES = _samples()


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """A copy of `value` with the node at `path` (keys and indices) replaced by `new`."""
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replace(value[path[0]], path[1:], new)
    return copy


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every node below the root of a decoded JSON value."""
    children = (
        value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    )
    found = []
    for key, child in children:
        found.append((*path, key))
        found += _nodes(child, (*path, key))
    return found


# Values that break naive mapping code: wrong types, out-of-range numbers and times, empty things.
NASTY = [
    None,
    True,
    0,
    -1,
    2**64 + 1,
    1.5,
    "",
    "x",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "Wed Oct 10 20:19:24 +9999 2018",
    "1e400",
    [],
    {},
    [None],
    {"": None},
]


def test_every_node_of_a_real_record_replaced_by_every_nasty_value() -> None:
    """Exhaustive where random search is thin: one record of each sample file, every node, every value."""
    first_of_each: dict[str, tuple[str, Any]] = {}
    for fmt, record, origin in SAMPLES:
        first_of_each.setdefault(origin, (fmt, record))
    for fmt, record in first_of_each.values():
        parse = FORMATS[fmt].make_parser(None)
        for path in _nodes(record):
            for nasty in NASTY:
                with contextlib.suppress(ParseError):
                    _check_items(parse(msgspec.json.encode(_replace(record, path, nasty))))


@settings(PROPERTY, max_examples=200)
@given(data=st.data())
def test_damaged_real_records_raise_only_parse_errors(data: st.DataObject) -> None:
    fmt, record, _ = data.draw(st.sampled_from(SAMPLES))
    paths = _nodes(record)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        if paths:
            record = _replace(
                record, data.draw(st.sampled_from(paths)), data.draw(JSON | st.sampled_from(NASTY))
            )
            paths = _nodes(record)
    _parse_or_reject(fmt, msgspec.json.encode(record))


_CELLS = (
    _SCALARS
    | st.datetimes(timezones=st.none() | st.timezones())
    | st.dates()
    | st.lists(st.text(max_size=5) | st.integers(), max_size=3)
)


@PROPERTY
@given(row=st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), _CELLS, max_size=10))
def test_arbitrary_table_rows_raise_only_parse_errors(row: dict[str, Any]) -> None:
    for fmt in ("jsonl", "csv", "parquet"):
        _parse_or_reject(fmt, row)


def _file_contents() -> st.SearchStrategy[bytes]:
    encoded = JSON.map(msgspec.json.encode)
    lines = st.lists(encoded | st.binary(max_size=40), max_size=6).map(b"\n".join)
    array = st.lists(encoded, max_size=6).map(lambda items: b"[" + b",".join(items) + b"]")
    cut = st.tuples(array, st.integers(min_value=0, max_value=400)).map(lambda t: t[0][: t[1]])
    prefixed = (array | cut).map(lambda body: b"window.YTD.tweets.part0 = " + body)
    return st.binary(max_size=300) | lines | array | cut | prefixed


@pytest.mark.parametrize("fmt", PARSED_FORMATS)
@settings(PROPERTY, max_examples=30)
@given(content=_file_contents())
def test_read_events_never_raises_and_quarantines_with_reasons(fmt: str, content: bytes) -> None:
    suffix = {"csv": ".csv", "parquet": ".parquet"}.get(fmt, ".jsonl")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"input{suffix}"
        path.write_bytes(content)
        counts = ImportCounts()
        with Quarantine(Path(tmp) / "q", "import") as quarantine:
            events = list(read_events(path, fmt, quarantine=quarantine, counts=counts))
        entries = read_quarantine(Path(tmp) / "q", "import")
    assert counts.quarantined == len(entries)
    assert all(e.reason and e.position and e.source == str(path) for e in entries)
    assert counts.posts + counts.deletes == len(events)
    _check_items(events)


def test_times_at_the_edge_of_datetime_are_rejected_not_raised() -> None:
    # 0001-01-01T00:00:00+01:00 is a valid ISO time whose UTC instant is before year 1.
    post = {"id": "1", "text": "t", "author_id": "a", "created_at": "0001-01-01T00:00:00+01:00"}
    with pytest.raises(ParseError, match="out of range"):
        FORMATS["roost"].make_parser(None)(msgspec.json.encode(post))
    assert dt.datetime.min.year == 1
