"""Order volume from ``POST /v1/events``: accepted orders counted per series and step, then judged.

With ``ORDERPULSE_VOLUME_EVENT_KEYS`` set (``total``, or order fields such as ``channel`` or
``channel,region``), every accepted order (not a duplicate) adds one to the count of its series (``total``, or
``channel=web``, ``channel=web|region=north``) in the step of ``ORDERPULSE_VOLUME_FREQ`` its ``created_at``
falls in. A step is closed, and its count judged by the volume detector like a point posted to
``/v1/actuals``, once the newest order seen (of any series: event time, not the wall clock) is at least one
whole step past its end; steps without an order in between count 0, so a channel that goes silent while the
others keep ordering is judged as a drop. At most ``MAX_STEPS_PER_CLOSE`` steps of a series are judged per
request; a longer backlog (a series whose first order is far behind the newest one) is judged over the next
requests. Orders arriving for a step already closed are counted as ``late`` and
not judged again.

The counts of the open steps live in the audit database (``serving.store.volume_counts``), written in the
transaction that stores the orders: every worker counts into the same rows and a restart loses nothing. A
step is closed and judged exactly once across workers (``VolumeService.close_order_steps``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pandas as pd

from features.calendar import step_length
from serving.store.volume_counts import VolumeCountStore

__all__ = ["OrderVolume", "StepClaim", "parse_event_keys", "MAX_STEPS_PER_CLOSE"]

MAX_STEPS_PER_CLOSE = 4032
"""Steps of one series judged per request at most (two weeks of 5-minute steps): a longer backlog is judged in
parts by the following requests, so one request's work stays bounded."""

_log = logging.getLogger("orderpulse.serving.volume")


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


@dataclass(frozen=True)
class StepClaim:
    """Steps ``[start, end)`` of one series to close, with the counts they were judged from (what the claim
    must find when it closes them)."""

    series_id: str
    start: datetime
    end: datetime
    counts: dict[datetime, int] = field(default_factory=dict)


class OrderVolume:
    """Counts orders into the shared store and tells which steps are due to be judged."""

    def __init__(self, keys: tuple[str, ...], freq: str, counts: VolumeCountStore) -> None:
        self.keys = keys
        self.step = step_length(freq)
        self.store = counts

    def series_of(self, order: Any) -> str:
        if not self.keys:
            return "total"
        return "|".join(f"{k}={getattr(order, k, None) or ''}" for k in self.keys)

    def count_in(self, conn: Any, orders: Sequence[Any]) -> int:
        """Count ``orders`` (accepted ones) inside the transaction ``conn`` that stores them; returns how many
        were late (their step is judged already)."""
        counts: dict[tuple[str, datetime], int] = {}
        for order in orders:
            start = _naive(order.created_at).floor(self.step)  # weekly: 7-day blocks from 1970-01-01
            key = (self.series_of(order), start.to_pydatetime())
            counts[key] = counts.get(key, 0) + 1
        return self.store.add_in(conn, counts)

    def due(self) -> list[str]:
        """Series with at least one step to close: the watermark is a whole step past its end."""
        watermark = self.store.watermark()
        if watermark is None:
            return []
        return sorted(self.store.cursors_before(watermark - self.step))

    def pending(self, series_id: str) -> tuple[StepClaim, list[SimpleNamespace]] | None:
        """The steps of ``series_id`` due now with their points (count 0 where no order came), as read now;
        None when none is due (another worker closed them)."""
        start, watermark = self.store.cursor(series_id), self.store.watermark()
        if start is None or watermark is None:
            return None
        end = pd.Timestamp(watermark) - self.step  # steps starting before it end a whole step before the mark
        if end <= start:
            return None
        cap = pd.Timestamp(start) + MAX_STEPS_PER_CLOSE * self.step
        if end > cap:  # a long backlog (e.g. a new series far behind the newest order): judged in parts
            _log.warning(
                "volume series %r: %d steps due; judging the first %d now, the rest with the next requests",
                series_id,
                (end - pd.Timestamp(start)) // self.step,
                MAX_STEPS_PER_CLOSE,
            )
            end = cap
        end = end.to_pydatetime()
        counts = self.store.open_counts(series_id, start, end)
        steps = pd.date_range(start, end, freq=self.step, inclusive="left")
        points = [
            SimpleNamespace(
                series_id=series_id, ds=ds.to_pydatetime(), y=counts.get(ds.to_pydatetime(), 0), open=1
            )
            for ds in steps
        ]
        return StepClaim(series_id, start, end, counts), points

    def claim(self, conn: Any, claim: StepClaim) -> None:
        """Close the claimed steps inside ``conn`` (``StateConflict`` if another worker got there first)."""
        self.store.claim(conn, claim.series_id, claim.start, claim.end, claim.counts)

    @property
    def late(self) -> int:
        return self.store.late()


def _naive(value: datetime) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts
