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

Two guards keep one mis-dated order from switching detection off (every later real order would be ``late``):

- an order created more than ``FUTURE_TOLERANCE`` after the server's wall clock is stored but not counted
  (``future``: an OMS clock or a typo, not demand);
- the watermark only moves to a step more than ``jump`` (a day, or two steps on a coarser grid) past the last
  step it reached when at least ``MIN_SUPPORT`` orders lie at or after that step: a lone order far ahead (one
  dated 2024 among orders of 2011) stays counted in its step, held ``ahead`` of the watermark, and is judged
  once the stream reaches it or confirms the jump. A real jump (orders resuming after an outage or a weekend)
  moves it with its second order. A series starts at its earliest counted step when its first steps are
  judged, not at its first order's, so such an order arriving first does not make the earlier ones late.

The counts of the open steps live in the audit database (``serving.store.volume_counts``), written in the
transaction that stores the orders: every worker counts into the same rows and a restart loses nothing. A
step is closed and judged exactly once across workers (``VolumeService.close_order_steps``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pandas as pd

from features.calendar import step_length
from serving.store.volume_counts import VolumeCountStore

__all__ = [
    "OrderVolume",
    "StepClaim",
    "Counted",
    "parse_event_keys",
    "MAX_STEPS_PER_CLOSE",
    "FUTURE_TOLERANCE",
    "MIN_SUPPORT",
]

MAX_STEPS_PER_CLOSE = 4032
"""Steps of one series judged per request at most (two weeks of 5-minute steps): a longer backlog is judged in
parts by the following requests, so one request's work stays bounded."""

FUTURE_TOLERANCE = pd.Timedelta("15min")
"""An order created later than the wall clock plus this (clock skew between OMS and service) is not counted."""

MIN_SUPPORT = 2
"""Orders at or after a step far past the watermark needed to move the watermark there (a lone one does not)."""

_JUMP = pd.Timedelta("1D")

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
class Counted:
    """What counting a request's accepted orders did: ``late`` (their step was judged already) and ``future``
    (created after the wall clock) were not counted; ``steps`` holds the counts added per (series, step)."""

    late: int = 0
    future: int = 0
    steps: dict[tuple[str, datetime], int] = field(default_factory=dict)


@dataclass(frozen=True)
class StepClaim:
    """Steps ``[start, end)`` of one series to close, with the counts they were judged from (what the claim
    must find when it closes them)."""

    series_id: str
    start: datetime
    end: datetime
    counts: dict[datetime, int] = field(default_factory=dict)
    stored: datetime | None = None  # the cursor as stored (``UNSTARTED`` before the series' first claim)


class OrderVolume:
    """Counts orders into the shared store and tells which steps are due to be judged."""

    def __init__(
        self,
        keys: tuple[str, ...],
        freq: str,
        counts: VolumeCountStore,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.keys = keys
        self.step = step_length(freq)
        self.store = counts
        self.clock = clock
        self.jump = max(_JUMP, 2 * self.step)

    def series_of(self, order: Any) -> str:
        if not self.keys:
            return "total"
        return "|".join(f"{k}={getattr(order, k, None) or ''}" for k in self.keys)

    def count_in(self, conn: Any, orders: Sequence[Any]) -> Counted:
        """Count ``orders`` (accepted ones) inside the transaction ``conn`` that stores them, except those
        created after the wall clock (``future``) and those whose step is judged already (``late``)."""
        limit = _naive(self.clock()) + FUTURE_TOLERANCE
        counts: dict[tuple[str, datetime], int] = {}
        future = 0
        for order in orders:
            created = _naive(order.created_at)
            if created > limit:
                future += 1
                continue
            start = created.floor(self.step)  # weekly: 7-day blocks from 1970-01-01
            key = (self.series_of(order), start.to_pydatetime())
            counts[key] = counts.get(key, 0) + 1
        return Counted(self.store.add_in(conn, counts), future, counts)

    def watermark(self) -> datetime | None:
        """The newest step with open orders that the stream has reached (None: no open orders): each step at
        most ``jump`` past the previous one, or a jump that ``MIN_SUPPORT`` orders at or after it confirm."""
        steps = self.store.open_steps()
        after = 0
        support = []
        for _, orders in reversed(steps):
            after += orders
            support.append(after)
        mark = None
        for (step, _), at_or_after in zip(steps, reversed(support), strict=True):
            if mark is None or step - mark <= self.jump or at_or_after >= MIN_SUPPORT:
                mark = step
        return mark

    def ahead(self, counted: Counted) -> int:
        """Orders of ``counted`` in steps past the watermark: held there, not moving it (see the module)."""
        watermark = self.watermark()
        return sum(n for (_, step), n in counted.steps.items() if watermark is not None and step > watermark)

    def due(self) -> list[str]:
        """Series with at least one step to close: the watermark is a whole step past its end."""
        watermark = self.watermark()
        if watermark is None:
            return []
        return sorted(self.store.cursors_before(watermark - self.step))

    def pending(self, series_id: str) -> tuple[StepClaim, list[SimpleNamespace]] | None:
        """The steps of ``series_id`` due now with their points (count 0 where no order came), as read now;
        None when none is due (another worker closed them)."""
        cursor, watermark = self.store.cursor(series_id), self.watermark()
        if cursor is None or watermark is None:
            return None
        stored, start = cursor
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
        return StepClaim(series_id, start, end, counts, stored), points

    def claim(self, conn: Any, claim: StepClaim) -> None:
        """Close the claimed steps inside ``conn`` (``StateConflict`` if another worker got there first)."""
        stored = claim.start if claim.stored is None else claim.stored
        self.store.claim(conn, claim.series_id, stored, claim.end, claim.counts)

    @property
    def late(self) -> int:
        return self.store.late()


def _naive(value: datetime) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo is not None else ts
