"""The sentence that says why a volume point was flagged, for the operator:

    "412 orders in 5 min, expected 180 (95% up to 260): +129%; no promo planned; similar to 2015-03-02 14:00"

A count of exactly 0 below the 95% band says so ("-100%, no data: a channel or collection outage?"): it stays
a drop and one alert, but the operator reads that the feed may be broken rather than demand gone.

The last part names the past alert of the same series and direction whose relative deviation was closest
(``AlertMemory`` keeps the most recent ones), or says it is the first such event.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import pandas as pd

__all__ = ["AlertMemory", "reason_for", "step_words"]

_MEMORY = 64


@dataclass
class AlertMemory:
    """The last alerts of one series: (start, direction, log(1 + y) - log(1 + expected))."""

    alerts: deque = field(default_factory=lambda: deque(maxlen=_MEMORY))
    open_since: pd.Timestamp | None = None

    def similar(self, direction: str, log_ratio: float) -> pd.Timestamp | None:
        """Start of the past alert of this direction whose log(1 + y) / (1 + expected) was closest."""
        same = [(abs(r - log_ratio), ts) for ts, d, r in self.alerts if d == direction]
        return min(same)[1] if same else None


def step_words(step: pd.Timedelta) -> str:
    """``5 min``, ``1 h``, ``1 day``, ``1 week``."""
    minutes = int(step / pd.Timedelta(minutes=1))
    if minutes % (7 * 1440) == 0:
        n = minutes // (7 * 1440)
        return f"{n} week" + ("s" if n > 1 else "")
    if minutes % 1440 == 0:
        n = minutes // 1440
        return f"{n} day" + ("s" if n > 1 else "")
    if minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes} min"


def reason_for(
    *,
    y: float,
    expected: float,
    lo: float,
    hi: float,
    ds: pd.Timestamp,
    step: pd.Timedelta,
    unit: str,
    drivers: list[str],
    active: list[str],
    memory: AlertMemory,
    opens: bool,
    flagged: bool,
    event: str = "",
) -> str:
    """The reason of one point; records the alert in ``memory`` when the point opens one. ``event`` is the
    direction of the open event (``surge``/``drop``) on flagged points."""
    pct = (y - expected) / expected * 100 if expected > 0 else math.inf
    direction = "surge" if y >= expected else "drop"
    bound = f"95% up to {_num(hi)}" if direction == "surge" else f"95% down to {_num(lo)}"
    direction = event or direction
    change = "new volume where none was expected" if math.isinf(pct) else f"{pct:+.0f}%"
    if y == 0 and lo > 0:  # nothing at all where the 95% band says some: most often the data, not demand
        change += ", no data: a channel or collection outage?"
    parts = [f"{_num(y)} {unit} in {step_words(step)}, expected {_num(expected)} ({bound}): {change}"]
    names = [_driver_words(d) for d in drivers]
    if active:
        planned = ", ".join(_driver_words(d) for d in active)
        if flagged:
            parts.append(f"{planned} planned, but beyond its learned effect")
        else:
            parts.append(f"{planned} planned: explained, not an alert")
    elif names:
        parts.append(f"no {' / '.join(names)} planned")
    else:
        parts.append("no known driver given")
    if flagged:
        if opens:
            log_ratio = math.log1p(y) - math.log1p(expected)
            when = memory.similar(direction, log_ratio)
            parts.append(
                f"similar to {when:%Y-%m-%d %H:%M}" if when is not None else f"first {direction} seen"
            )
            memory.alerts.append((ds, direction, log_ratio))
            memory.open_since = ds
        elif memory.open_since is not None:
            parts.append(f"{direction} ongoing since {memory.open_since:%Y-%m-%d %H:%M}")
    return "; ".join(parts)


def _num(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "?"
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:.1f}".rstrip("0").rstrip(".")


def _driver_words(name: str) -> str:
    """``promo_flag`` -> ``promo``, ``holiday_state_flag`` -> ``holiday (state)``, ``promo2_active_flag`` ->
    ``promo2 active``."""
    base = name.removesuffix("_flag")
    for kind in ("promo", "holiday"):
        if base.startswith(kind + "_"):
            return f"{kind} ({base[len(kind) + 1 :].replace('_', ' ')})"
    return base.replace("_", " ")
