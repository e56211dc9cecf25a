"""Telling a file's format from its contents (and, for CSV and Parquet, from its name).

Parquet is known by its `PAR1` magic or `.parquet`, CSV by `.csv` / `.tsv` (also under `.gz` /
`.zst`), a Twitter archive by its `window.YTD.` prefix. Anything else is read as JSON (lines, an
array, or one document) and its first records are classified by the keys each format always has;
the first record that names a specific format decides, so a stream that opens with a `limit`
notice or a blank keep-alive still detects. Records that are JSON objects of no known platform
make the file plain `jsonl`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from roost.formats.framing import content_name, js_variable, json_records
from roost.posts import Post

#: How many records detection looks at before settling for plain `jsonl`.
SAMPLE_RECORDS = 20

_V1_NOTICES = ("delete", "scrub_geo", "limit", "status_withheld", "user_withheld", "disconnect", "warning")
_V2_PAGE_KEYS = frozenset({"data", "includes", "errors", "meta", "matching_rules", "title", "detail", "type"})
_EVENT_KEYS = frozenset({"type", "id", "post", "seq"})
_POST_KEYS = frozenset(Post.__struct_fields__)
_POST_REQUIRED = frozenset({"id", "text", "author_id", "created_at"})


class UnknownFormatError(ValueError):
    """The file's format cannot be told from its contents; name it with --format."""


def detect_format(path: Path) -> str:
    """The name of the format of the file at `path` (a key of `roost.formats.FORMATS`)."""
    path = Path(path)
    with open(path, "rb") as f:
        magic = f.read(4)
    suffix = Path(content_name(path)).suffix.lower()
    if magic == b"PAR1" or suffix == ".parquet":
        return "parquet"
    if suffix in (".csv", ".tsv"):
        return "csv"
    variable = js_variable(path)
    if variable is not None and variable.startswith("window.YTD."):
        return "twitter-archive"
    plain_json = False
    for number, record in enumerate(json_records(path)):
        if number >= SAMPLE_RECORDS:
            break
        try:
            value = msgspec.json.decode(record.data)
        except (msgspec.DecodeError, UnicodeDecodeError, TypeError):
            continue
        kind = classify(value)
        if kind == "jsonl":
            plain_json = True
        elif kind is not None:
            return kind
    if plain_json:
        return "jsonl"
    raise UnknownFormatError(
        f"cannot tell the format of {path}: its first records are not JSON objects of a known shape; "
        "name it with --format"
    )


def classify(value: Any) -> str | None:
    """The format one decoded JSON record belongs to; "jsonl" for an object of no known platform."""
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("did"), str) and value.get("kind") in ("commit", "identity", "account"):
        return "jetstream"
    if isinstance(value.get("tweet"), dict):
        return "twitter-archive"
    if _is_v2_page(value):
        return "twitter-v2"
    first_key = next(iter(value), None)
    if first_key in _V1_NOTICES and isinstance(value[first_key], dict):
        return "twitter-v1"
    has_text = "text" in value or "full_text" in value
    if isinstance(value.get("user"), dict) and ("id_str" in value or "id" in value) and has_text:
        return "twitter-v1"
    if "content" in value and isinstance(value.get("account"), dict) and "created_at" in value:
        return "mastodon"
    keys = value.keys()
    if value.get("type") in ("post", "delete") and isinstance(value.get("id"), str) and keys <= _EVENT_KEYS:
        return "roost"
    if _POST_REQUIRED <= keys <= _POST_KEYS:
        return "roost"
    return "jsonl"


def _is_v2_page(value: dict[str, Any]) -> bool:
    # Tools add their own keys (twarc's `__twarc`); they do not make a page something else.
    if not {key for key in value if not key.startswith("__")} <= _V2_PAGE_KEYS:
        return False
    data = value.get("data")
    if isinstance(data, list):
        data = data[0] if data else {"id": "", "text": ""}
    if isinstance(data, dict):
        return "id" in data and "text" in data
    errors, meta = value.get("errors"), value.get("meta")
    return isinstance(errors, list) or (isinstance(meta, dict) and "result_count" in meta)
