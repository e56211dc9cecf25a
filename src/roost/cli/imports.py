"""`roost import`: files from real platforms (or `roost simulate`) into the workspace's raw store."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import typer

from roost.cli.common import JsonOption, console, emit, err_console, fail, workspace

# Kept literal so that `roost --help` does not import the parsers; a test checks it against FORMATS.
FORMAT_NAMES = "twitter-v2, twitter-v1, twitter-archive, jetstream, mastodon, jsonl, csv, parquet, roost"
# Files at least this large get a progress bar.
_PROGRESS_BYTES = 8 << 20


def import_command(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(
        ..., exists=True, help="Files to import; a folder stands for the files in it."
    ),
    fmt: str | None = typer.Option(
        None,
        "--format",
        "-f",
        help=f"Format of every file ({FORMAT_NAMES}); detected per file when left out.",
    ),
    keep_extra: bool = typer.Option(
        False, "--keep-extra", help="Keep each record's unmapped fields in Post.extra."
    ),
    maps: list[str] = typer.Option(
        [],
        "--map",
        metavar="FIELD=COLUMN",
        help="Read a Post field from another column (jsonl, csv, parquet).",
    ),
    defaults: list[str] = typer.Option(
        [],
        "--default",
        metavar="FIELD=VALUE",
        help="Value for records that lack FIELD (jsonl, csv, parquet; author_id for twitter-archive).",
    ),
    to_log: bool = typer.Option(
        False, "--to-log", help="Append to the firehose log (served to consumers) instead of the raw store."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Import posts and deletes; failing records go to quarantine/, and importing again changes nothing."""
    from roost.formats import FORMATS
    from roost.formats.ingest import expand_paths, import_file
    from roost.quarantine import Quarantine
    from roost.rawstore import RawStore

    if fmt is not None and fmt not in FORMATS:
        fail(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
    ws = workspace(ctx)
    mapping, fills = _pairs(maps, "--map"), _pairs(defaults, "--default")
    files = expand_paths(paths)
    results = []
    sink = _log_sink(ws) if to_log else RawStore.in_dir(ws.raw_dir)
    with sink as store, Quarantine(ws.quarantine_dir, "import") as quarantine:
        for path, named in files:
            large = not as_json and path.stat().st_size >= _PROGRESS_BYTES
            with _ProgressBar(path) if large else contextlib.nullcontext() as on_batch:
                result = import_file(
                    store,
                    path,
                    fmt,
                    quarantine=quarantine,
                    keep_extra=keep_extra,
                    mapping=mapping,
                    defaults=fills,
                    on_batch=on_batch,
                    named=named,
                )
            results.append(result)
    report = {"files": results, "quarantine": str(quarantine.path) if quarantine.total else None}
    emit(report, as_json, _render)
    if any(r.error for r in results):
        raise typer.Exit(1)


def _log_sink(ws: Any) -> Any:
    from roost.firehose.live import LogSink, open_writer
    from roost.firehose.log import LogError

    try:
        return LogSink(open_writer(ws))
    except LogError as exc:
        fail(str(exc))


def _pairs(items: list[str], option: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"{option} {item!r}: expected FIELD=VALUE")
        pairs[key.strip()] = value.strip()
    return pairs


class _ProgressBar:
    """A progress bar over a file's bytes (on stderr), moved on after each batch of events."""

    def __init__(self, path: Path) -> None:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

        from roost.formats.framing import compression

        columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
        self.progress = Progress(*columns, console=err_console, transient=True)
        # Positions in a compressed file count decompressed bytes, whose total is not known ahead.
        total = None if compression(path) else path.stat().st_size
        self.task = self.progress.add_task(path.name, total=total)

    def __enter__(self) -> _ProgressBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, result: Any) -> None:
        self.progress.update(self.task, completed=result.counts.bytes_read)


def _render(report: dict[str, Any]) -> None:
    for result in report["files"]:
        if result.left_out:
            console.print(f"[dim]{result.path}: left out (not a file of a known format)[/]")
            continue
        if result.error:
            console.print(f"[bold]{result.path}[/]: [red]error:[/] {result.error}")
            continue
        counts = result.counts
        skipped = sum(counts.skipped.values())
        kinds = ", ".join(f"{kind} {n:,}" for kind, n in sorted(counts.skipped.items()))
        quarantined = (
            f"[yellow]{counts.quarantined:,} quarantined[/]" if counts.quarantined else "0 quarantined"
        )
        console.print(f"[bold]{result.path}[/] [dim]({result.format})[/]", highlight=False)
        console.print(
            f"  {counts.records:,} records: {counts.posts:,} posts, {counts.deletes:,} deletes, "
            f"{skipped:,} skipped{f' ({kinds})' if kinds else ''}, {quarantined}; "
            f"store: {result.net_new:+,} posts",
            highlight=False,
        )
    if report["quarantine"]:
        console.print(f"Quarantined records, each with its reason: {report['quarantine']}", highlight=False)
