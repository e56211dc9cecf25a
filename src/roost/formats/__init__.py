"""Importers: the formats real platforms export, read into roost Events.

`read_events(path)` detects the format (or takes `fmt`), streams the file record by record and
yields `roost.posts.Event`s; `FORMATS` lists the formats; docs/formats.md says how each maps onto
Post. `roost import` (`roost.formats.ingest`) writes the events into the raw store.
"""

from roost.formats.detect import UnknownFormatError, detect_format
from roost.formats.reader import FORMATS, Format, ImportCounts, read_events
from roost.formats.records import ParseError

__all__ = [
    "FORMATS",
    "Format",
    "ImportCounts",
    "ParseError",
    "UnknownFormatError",
    "detect_format",
    "read_events",
]
