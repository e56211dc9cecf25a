"""Importing files into the workspace's raw store (`roost import`).

Events are applied in batches, each batch one transaction. Posts are upserted by id and rewritten
only when their bytes change, so importing the same files again stores nothing new and leaves the
store as it was.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from roost.formats.detect import UnknownFormatError, detect_format
from roost.formats.reader import ImportCounts, read_events
from roost.posts import Event
from roost.quarantine import Quarantine
from roost.rawstore import RawStore

#: Events per raw-store transaction: large enough that commits cost little, small enough that a
#: progress display moves.
BATCH_EVENTS = 4096


@dataclass
class FileImport:
    """What importing one file did."""

    path: str
    format: str | None
    counts: ImportCounts = field(default_factory=ImportCounts)
    net_new: int = 0  # change in the number of posts the store holds: new ones less deleted ones
    tombstoned: int = 0  # deletes the store had not seen before
    error: str | None = None  # why the file could not be read at all (then nothing was imported)
    left_out: bool = False  # found in a folder and of no known format: not an error, not imported


def expand_paths(paths: Iterable[Path]) -> list[tuple[Path, bool]]:
    """(file, named) for the paths given, a folder standing for the files under it (sorted, hidden
    ones left out); `named` is False for a file found in a folder."""
    files: list[tuple[Path, bool]] = []
    for path in paths:
        if path.is_dir():
            found = (p for p in sorted(path.rglob("*")) if p.is_file())
            files += [
                (p, False)
                for p in found
                if not any(part.startswith(".") for part in p.relative_to(path).parts)
            ]
        else:
            files.append((path, True))
    return files


def import_file(
    store: RawStore,
    path: Path,
    fmt: str | None = None,
    *,
    quarantine: Quarantine | None = None,
    keep_extra: bool = False,
    mapping: dict[str, str] | None = None,
    defaults: dict[str, str] | None = None,
    on_batch: Callable[[FileImport], None] | None = None,
    batch_events: int = BATCH_EVENTS,
    named: bool = True,
) -> FileImport:
    """Import one file into `store`; a file that cannot be read at all is reported, not raised.

    A file found in a folder (`named=False`) whose format cannot be told is left out quietly
    (a README beside the data), where a file named on its own is an error.

    `mapping` and `defaults` are the column mapping of jsonl / csv / parquet (`defaults` may also
    name a Twitter archive's `author_id`).
    """
    result = FileImport(path=str(path), format=fmt)
    try:
        try:
            result.format = fmt or detect_format(path)
        except UnknownFormatError:
            if named:
                raise
            result.left_out = True
            return result
        options = _format_options(result.format, mapping or {}, defaults or {})
        events = read_events(
            path, result.format, quarantine=quarantine, counts=result.counts, keep_extra=keep_extra, **options
        )
        held = store.count()
        for batch in _batches(events, batch_events):
            result.tombstoned += store.apply(batch).deletes
            if on_batch is not None:
                on_batch(result)
        result.net_new = store.count() - held
    except (OSError, ValueError) as exc:
        result.error = str(exc)
    finally:
        if quarantine is not None:
            quarantine.flush()
    return result


def _format_options(fmt: str, mapping: dict[str, str], defaults: dict[str, str]) -> dict[str, Any]:
    """The `read_events` options a column mapping and defaults stand for in format `fmt`."""
    if fmt in ("jsonl", "csv", "parquet"):
        return {"mapping": mapping, "defaults": defaults}
    if fmt == "twitter-archive" and not mapping and defaults.keys() <= {"author_id"}:
        return {"author_id": defaults["author_id"]} if defaults else {}
    if mapping or defaults:
        raise ValueError(
            f"{fmt} files take no column mapping (only jsonl, csv, parquet; twitter-archive: author_id)"
        )
    return {}


def _batches(events: Iterator[Event], size: int) -> Iterator[list[Event]]:
    while batch := list(itertools.islice(events, size)):
        yield batch
