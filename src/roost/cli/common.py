"""What every command shares: the workspace from `--home`, and printing for people or `--json`."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import msgspec
import typer
from rich.console import Console

from roost.workspace import Workspace

console = Console()
err_console = Console(stderr=True)

JsonOption = typer.Option(False, "--json", help="Print the result as JSON, for scripts.")


class HomeState:
    """Holds `--home` until a command asks for the workspace (so `--help` touches no disk)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self._workspace: Workspace | None = None

    def workspace(self) -> Workspace:
        if self._workspace is None:
            self._workspace = Workspace(self.home).ensure()
        return self._workspace


def workspace(ctx: typer.Context) -> Workspace:
    """The workspace named by `roost --home`, created if it does not exist yet."""
    return ctx.find_root().obj.workspace()


def emit(result: Any, as_json: bool, render: Callable[[Any], None]) -> None:
    """Print `result` as JSON (one document on stdout) or through `render` for a person."""
    if as_json:
        sys.stdout.buffer.write(msgspec.json.format(msgspec.json.encode(result), indent=2) + b"\n")
        sys.stdout.flush()
    else:
        render(result)


def fail(message: str, code: int = 1) -> NoReturn:
    """Stop the command with a one-line error (no traceback) and a non-zero exit code."""
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def option_time(value: str | None, name: str) -> dt.datetime | None:
    """An ISO-8601 time given as option --`name` (a trailing Z, or none, means UTC)."""
    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"--{name} {value!r} is not an ISO-8601 time (e.g. 2024-03-01T12:00:00Z)")
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
