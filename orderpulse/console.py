"""Terminal output shared by every command: rich consoles on stderr, so stdout stays machine-readable.

``RichProgress`` renders the ``training.progress.Progress`` a job reports through: status lines on stderr
(indented under the command's first line) and one rich progress bar with ETA per running task (backtest
windows, LightGBM rounds, tuning trials, scoring batches); bars are hidden when stderr is not a terminal.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["err", "progress", "print_json_line", "RichProgress"]

err = Console(stderr=True, highlight=False)


def progress(transient: bool = True) -> Progress:
    """A progress bar on stderr with ETA (hidden automatically when stderr is not a terminal, e.g. in CI)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err,
        transient=transient,
        disable=not err.is_terminal,
    )


class RichProgress:
    """``training.progress.Progress`` on stderr: ``info`` lines indented by two spaces, ``warning`` lines in
    yellow, and one bar per open task (several tasks nest in one live display, e.g. rounds inside windows)."""

    def __init__(self, indent: str = "  "):
        self.indent = indent
        self._bars: Progress | None = None
        self._open = 0

    def info(self, message: str) -> None:
        err.print(f"{self.indent}{escape(message)}")

    def warning(self, message: str) -> None:
        err.print(f"{self.indent}[yellow]{escape(message)}[/]")

    @contextlib.contextmanager
    def task(self, description: str, total: int | None) -> Iterator[_RichTask]:
        if self._bars is None:
            self._bars = progress()
            self._bars.start()
        bars = self._bars
        task_id = bars.add_task(description, total=total)
        self._open += 1
        try:
            yield _RichTask(bars, task_id)
        finally:
            bars.remove_task(task_id)
            self._open -= 1
            if self._open == 0:
                bars.stop()
                self._bars = None


class _RichTask:
    def __init__(self, bars: Progress, task_id: Any):
        self._bars = bars
        self._id = task_id

    def advance(self, n: int = 1) -> None:
        self._bars.advance(self._id, n)


def print_json_line(obj: dict[str, Any]) -> None:
    """The last stdout line of training commands: one JSON object (scripts parse it)."""
    sys.stdout.write(json.dumps(obj, default=str, separators=(",", ":")) + "\n")
    sys.stdout.flush()
