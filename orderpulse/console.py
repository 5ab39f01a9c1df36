"""Terminal output shared by every command: rich consoles on stderr, so stdout stays machine-readable."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

__all__ = ["err", "progress", "print_json_line"]

err = Console(stderr=True, highlight=False)


def progress(transient: bool = True) -> Progress:
    """A progress bar on stderr (hidden automatically when stderr is not a terminal, e.g. in CI)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=transient,
        disable=not err.is_terminal,
    )


def print_json_line(obj: dict[str, Any]) -> None:
    """The last stdout line of training commands: one JSON object (scripts parse it)."""
    sys.stdout.write(json.dumps(obj, default=str, separators=(",", ":")) + "\n")
    sys.stdout.flush()
