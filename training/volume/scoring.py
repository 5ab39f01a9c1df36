"""Event-level scoring of flags against labelled anomaly windows, as for the Numenta Anomaly Benchmark.

A window counts as detected when at least one flag falls inside it (ends included); each run of consecutive
flagged points outside every window is one false alarm. Precision = detected / (detected + false alarms),
recall = detected / windows, F1 their harmonic mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["EventScore", "event_score"]


@dataclass(frozen=True)
class EventScore:
    windows: int
    detected: int
    false_alarms: int

    def __add__(self, other: EventScore) -> EventScore:
        return EventScore(
            self.windows + other.windows,
            self.detected + other.detected,
            self.false_alarms + other.false_alarms,
        )

    @property
    def precision(self) -> float:
        flagged = self.detected + self.false_alarms
        return self.detected / flagged if flagged else 0.0

    @property
    def recall(self) -> float:
        return self.detected / self.windows if self.windows else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def event_score(
    ds: pd.Series | np.ndarray, flagged: pd.Series | np.ndarray, windows: Sequence[tuple[object, object]]
) -> EventScore:
    """Score the flags of one series (``ds`` in time order) against its ``[start, end]`` windows."""
    t = pd.DatetimeIndex(ds)
    f = np.asarray(flagged, dtype=bool)
    if len(t) != len(f):
        raise ValueError(f"ds and flagged differ in length ({len(t)} != {len(f)}).")
    inside = np.zeros(len(t), dtype=bool)
    detected = 0
    for start, end in windows:
        w = (t >= pd.Timestamp(start)) & (t <= pd.Timestamp(end))
        inside |= w
        detected += bool((f & w).any())
    outside = f & ~inside
    runs = int(outside[0]) + int((outside[1:] & ~outside[:-1]).sum()) if len(outside) else 0
    return EventScore(len(windows), detected, runs)
