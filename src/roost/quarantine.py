"""Quarantine: where every stage puts the records it could not use, each with its reason.

Nothing is dropped silently. A record that fails to parse, or that a filter removes, is written to
`quarantine/<stage>.jsonl` with why, where it came from (file and line/byte/record position), and the
record itself (as text, cut at `max_record_chars`), so a person can look and fix the cause.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import IO, Any

import msgspec


class QuarantinedRecord(msgspec.Struct):
    stage: str
    reason: str
    source: str
    position: str
    record: str
    at: dt.datetime


class Quarantine:
    """Appends quarantined records for one stage; counts them by reason."""

    def __init__(self, quarantine_dir: Path, stage: str, *, max_record_chars: int = 4000) -> None:
        self.path = Path(quarantine_dir) / f"{stage}.jsonl"
        self.stage = stage
        self.max_record_chars = max_record_chars
        self.counts: dict[str, int] = {}
        self._file: IO[bytes] | None = None
        self._encoder = msgspec.json.Encoder()

    def put(self, reason: str, record: Any, *, source: str = "", position: str = "") -> None:
        """Quarantine `record` (bytes, str, or anything JSON-encodable) because of `reason`."""
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab")  # noqa: SIM115 - held open across many puts
        entry = QuarantinedRecord(
            stage=self.stage,
            reason=reason,
            source=source,
            position=position,
            record=_as_text(record)[: self.max_record_chars],
            at=dt.datetime.now(dt.UTC),
        )
        self._file.write(self._encoder.encode(entry) + b"\n")
        # The reason's first clause is the category; the rest (offsets, values) varies per record.
        key = reason.split(":", 1)[0]
        self.counts[key] = self.counts.get(key, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Quarantine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _as_text(record: Any) -> str:
    if isinstance(record, bytes):
        return record.decode("utf-8", errors="replace")
    if isinstance(record, str):
        return record
    try:
        return msgspec.json.encode(record).decode()
    except (TypeError, msgspec.EncodeError):
        return repr(record)


def read_quarantine(quarantine_dir: Path, stage: str) -> list[QuarantinedRecord]:
    """Every record quarantined by `stage` so far (for tests and `roost quarantine`)."""
    path = Path(quarantine_dir) / f"{stage}.jsonl"
    if not path.exists():
        return []
    decoder = msgspec.json.Decoder(QuarantinedRecord)
    return [decoder.decode(line) for line in path.read_bytes().splitlines() if line]
