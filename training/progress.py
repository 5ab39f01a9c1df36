"""How training code reports progress without printing: a small ``Progress`` protocol.

Library code (``training/``) never prints and never imports the CLI. A job takes a ``Progress`` and calls
``info(message)`` for a status line, ``warning(message)`` for something the user should look at, and
``task(description, total)`` around a loop it can count (backtest windows, LightGBM boosting rounds, Optuna
trials, batches of scored orders)::

    with progress.task("backtest windows", total=n_windows) as task:
        for window in windows:
            ...
            task.advance()

The default, ``LoggingProgress``, writes the lines to ``logging`` (logger ``training``) and the tasks at DEBUG
level; the CLI passes its own implementation that renders the lines and rich progress bars with ETA on
stderr (``orderpulse.console.RichProgress``).

Estimators (``LGBMForecaster.fit``) cannot take a progress argument without breaking scikit-learn's contract,
so a job makes its progress the *current* one for the code it calls (``reporting(progress)``), and
``current()`` returns it (``LoggingProgress`` outside any job). ``lightgbm_rounds`` is the LightGBM callback
that advances a task once per boosting round.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol

__all__ = [
    "Progress",
    "Task",
    "LoggingProgress",
    "current",
    "reporting",
    "resolve",
    "lightgbm_rounds",
]

log = logging.getLogger("training")


class Task(Protocol):
    """A counted piece of work started by ``Progress.task``."""

    def advance(self, n: int = 1) -> None: ...


class Progress(Protocol):
    """Where training code reports what it is doing (see the module docstring)."""

    def info(self, message: str) -> None: ...

    def warning(self, message: str) -> None: ...

    def task(self, description: str, total: int | None) -> AbstractContextManager[Task]: ...


class LoggingProgress:
    """``Progress`` on ``logging``: lines at INFO/WARNING, a task's start and end at DEBUG."""

    def __init__(self, logger: logging.Logger | None = None):
        self.logger = logger or log

    def info(self, message: str) -> None:
        self.logger.info(message)

    def warning(self, message: str) -> None:
        self.logger.warning(message)

    @contextlib.contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Task]:
        counter = _Counter()
        started = time.perf_counter()
        self.logger.debug("%s: started (%s steps)", description, total if total is not None else "?")
        yield counter
        self.logger.debug("%s: %d steps in %.1fs", description, counter.done, time.perf_counter() - started)


_CURRENT: contextvars.ContextVar[Progress | None] = contextvars.ContextVar("training_progress", default=None)


def current() -> Progress:
    """The progress of the job running in this context (``LoggingProgress`` when none is)."""
    return _CURRENT.get() or LoggingProgress()


def resolve(progress: Progress | None) -> Progress:
    """``progress`` if given, else ``current()``: what a function with a ``progress=None`` argument uses."""
    return progress if progress is not None else current()


@contextlib.contextmanager
def reporting(progress: Progress | None) -> Iterator[Progress]:
    """Make ``progress`` (or the current one) the progress of everything called inside the block."""
    chosen = resolve(progress)
    token = _CURRENT.set(chosen)
    try:
        yield chosen
    finally:
        _CURRENT.reset(token)


def lightgbm_rounds(task: Task) -> Callable[[Any], None]:
    """A LightGBM callback (``lgb.train(..., callbacks=[...])``) advancing ``task`` once per boosting round."""

    def callback(env: Any) -> None:
        task.advance()

    callback.order = 40  # type: ignore[attr-defined]  # after the built-in callbacks (early stopping is 30)
    return callback


class _Counter:
    def __init__(self) -> None:
        self.done = 0

    def advance(self, n: int = 1) -> None:
        self.done += n
