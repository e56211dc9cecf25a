"""roost's own JSON: one `roost.posts.Event` or `Post` per line, as `roost simulate` writes them.

The round trip is exact: a Post keeps its own `source` (`simulate`, or the format it was first
imported from), and only the log's `seq` is dropped (the log that reads the events assigns its
own) and `extra` unless it is asked for.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from roost.formats.records import Item, ParseError, Parser, RecordData
from roost.posts import Event, decode_event, decode_post


def _decode(data: RecordData) -> Event:
    if isinstance(data, dict):
        raise ParseError("expected a JSON line, got a table row")
    try:
        event = decode_event(data)
    except msgspec.ValidationError as event_error:  # (a DecodeError too, so caught first)
        try:
            event = Event.of_post(decode_post(data))
        except msgspec.ValidationError as post_error:
            raise ParseError(f"neither a roost Event ({event_error}) nor a Post ({post_error})") from None
        except OverflowError:
            raise ParseError("created_at is out of range in UTC") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ParseError(f"invalid JSON: {exc}") from None
    except OverflowError:  # Post normalises created_at to UTC, which can leave datetime's range
        raise ParseError("created_at is out of range in UTC") from None
    if not event.id:
        raise ParseError("the event's id is empty")
    event.seq = None
    return event


def _parse(data: RecordData, keep_extra: bool) -> list[Item]:
    event = _decode(data)
    if event.post is not None and not keep_extra:
        event.post.extra = None
    return [event]


def make_parser(source: Path | None, *, keep_extra: bool = False) -> Parser:
    """The parser for roost Event / Post JSON lines."""
    return lambda data: _parse(data, keep_extra)
