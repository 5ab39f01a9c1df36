"""A daemon thread that calls a function every ``interval_s`` seconds until stopped.

The model holder (``serving.models``: periodic champion reload) and the order history
(``serving.history``: event high-water-mark polling) both run one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["PeriodicThread"]


class PeriodicThread:
    """``start(interval_s)`` calls ``tick()`` every ``interval_s`` s in a daemon thread named ``name``; ``stop()``
    ends it and waits. An exception in ``tick`` is logged with ``failure`` and the next tick runs as planned."""

    def __init__(self, name: str, tick: Callable[[], None], failure: str, logger: logging.Logger) -> None:
        self.name = name
        self._tick = tick
        self._failure = failure
        self._log = logger
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self, interval_s: float) -> None:
        """Start ticking (0 or less: never; a second start while running is ignored)."""
        if interval_s <= 0 or self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self._tick()
                except Exception:
                    self._log.exception("%s", self._failure)

        self._thread = threading.Thread(target=loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30) -> None:
        """Stop ticking and wait for a tick in progress (at most ``timeout`` s)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None
