"""What `roost demo` shows while it builds: one row per stage (waiting, running with a bar and live
figures, done with its summary, or reused from an earlier run). On a terminal the rows update in
place; anywhere else (a pipe, CI, a test) each stage prints a line when it starts and ends."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn
from rich.text import Text

Report = Callable[..., None]  # report(completed=None, total=None, detail=None)


class _Took(ProgressColumn):
    """Elapsed time while a stage runs; its final time (or "reused") once it is over."""

    def render(self, task: Task) -> Text:
        if task.fields.get("took"):
            return Text(task.fields["took"], style="dim")
        if not task.started:
            return Text("")
        return Text(_seconds(task.elapsed or 0.0), style="cyan")


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value < 90 else f"{value / 60:.1f} min"


class StageDisplay:
    def __init__(self, console: Console, stages: list[tuple[str, str]]) -> None:
        self.console = console
        self.interactive = console.is_terminal
        self.progress = Progress(
            TextColumn("{task.fields[mark]}", justify="center"),
            TextColumn("[bold]{task.description:<10}"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[detail]}", markup=False),
            _Took(),
            console=console,
            disable=not self.interactive,
            refresh_per_second=4,
        )
        self.tasks = {
            name: self.progress.add_task(title, start=False, total=None, mark="·", detail="", took="")
            for name, title in stages
        }
        self.titles = dict(stages)

    def __enter__(self) -> StageDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def reused(self, name: str, summary: str) -> None:
        task = self.tasks[name]
        self.progress.update(task, mark="[green]✓", detail=summary, took="reused", total=1, completed=1)
        if not self.interactive:
            self.console.print(f"✓ {self.titles[name]} (reused): {summary}", highlight=False)

    @contextmanager
    def stage(self, name: str, what: str) -> Iterator[Report]:
        """Show stage `name` running (`what` it does) while the block runs; the block calls the
        report function it gets with its progress. The caller marks it done with `done`."""
        task = self.tasks[name]
        self.progress.start_task(task)
        self.progress.update(task, mark="[cyan]▶", detail=what)
        if not self.interactive:
            self.console.print(f"▶ {self.titles[name]}: {what}", highlight=False)
        self._started = time.monotonic()

        def report(
            completed: float | None = None, total: float | None = None, detail: str | None = None
        ) -> None:
            changes: dict = {}
            if total is not None:
                changes["total"] = total
            if completed is not None:
                changes["completed"] = completed
            if detail is not None:
                changes["detail"] = detail
            self.progress.update(task, **changes)

        try:
            yield report
        except BaseException:
            self.progress.update(task, mark="[red]✗", took=_seconds(time.monotonic() - self._started))
            raise

    def done(self, name: str, summary: str, seconds: float) -> None:
        task = self.tasks[name]
        total = self.progress.tasks[task].total or 1
        self.progress.update(
            task, mark="[green]✓", detail=summary, took=_seconds(seconds), total=total, completed=total
        )
        if not self.interactive:
            self.console.print(f"✓ {self.titles[name]} ({_seconds(seconds)}): {summary}", highlight=False)

    def note(self, text: str) -> None:
        """A line above the rows (a warning, a skipped step)."""
        self.console.print(text, highlight=False)
