"""Order volume from ``POST /v1/events``: accepted orders counted per series and step, then judged.

With ``ORDERPULSE_VOLUME_EVENT_KEYS`` set (``total``, or order fields such as ``channel`` or
``channel,region``), every accepted order (not a duplicate) adds one to the count of its series (``total``, or
``channel=web``, ``channel=web|region=north``) in the step of ``ORDERPULSE_VOLUME_FREQ`` its ``created_at``
falls in. A step is closed, and its count judged by the volume detector like a point posted to
``/v1/actuals``, once the newest order seen (of any series: event time, not the wall clock) is at least one
whole step past its end; steps without an order in between count 0, so a channel that goes silent while the
others keep ordering is judged as a drop. Orders arriving for a step already closed are counted as ``late`` and
not judged again.

Counts of open steps live in this process; a restart loses the open steps (closed ones are judged already).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pandas as pd

from features.calendar import step_length

__all__ = ["OrderVolume", "parse_event_keys"]


def parse_event_keys(text: str | None) -> tuple[str, ...] | None:
    """``None``: off; ``"total"``: one series of all orders; ``"channel,region"``: those order fields."""
    if text is None or not text.strip():
        return None
    keys = tuple(k.strip() for k in text.split(",") if k.strip())
    if keys == ("total",):
        return ()
    unknown = [k for k in keys if k not in ("channel", "region", "country", "customer_id")]
    if unknown:
        raise ValueError(
            f"ORDERPULSE_VOLUME_EVENT_KEYS names unknown order fields {unknown}: use 'total' or a comma list of "
            "channel, region, country"
        )
    return keys


class OrderVolume:
    """Per-series counts of the open steps and the event-time watermark (thread-safe)."""

    def __init__(self, keys: tuple[str, ...], freq: str) -> None:
        self.keys = keys
        self.step = step_length(freq)
        self._counts: dict[str, dict[pd.Timestamp, int]] = {}
        self._next: dict[str, pd.Timestamp] = {}  # per series: the first step not judged yet
        self._watermark: pd.Timestamp | None = None
        self._lock = threading.Lock()
        self.late = 0

    def series_of(self, order: Any) -> str:
        if not self.keys:
            return "total"
        return "|".join(f"{k}={getattr(order, k, None) or ''}" for k in self.keys)

    def add(self, orders: Sequence[Any]) -> list[SimpleNamespace]:
        """Count ``orders`` (accepted ones only); returns the closed steps as points ``series_id, ds, y, open``
        in time order per series, ready for ``VolumeService.observe``."""
        with self._lock:
            for order in orders:
                ts = _naive(order.created_at)
                start = ts.floor(self.step)  # weekly steps: 7-day blocks from 1970-01-01 (Thursdays)
                sid = self.series_of(order)
                first = self._next.setdefault(sid, start)
                if start < first:
                    self.late += 1
                    continue
                bucket = self._counts.setdefault(sid, {})
                bucket[start] = bucket.get(start, 0) + 1
                if self._watermark is None or ts > self._watermark:
                    self._watermark = ts
            return self._close()

    def _close(self) -> list[SimpleNamespace]:
        if self._watermark is None:
            return []
        closed: list[SimpleNamespace] = []
        for sid, first in list(self._next.items()):
            counts = self._counts.get(sid, {})
            start = first
            while start + 2 * self.step <= self._watermark:  # one whole step of grace after its end
                closed.append(
                    SimpleNamespace(series_id=sid, ds=start.to_pydatetime(), y=counts.pop(start, 0), open=1)
                )
                start += self.step
            self._next[sid] = start
        return closed


def _naive(value: datetime) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts
