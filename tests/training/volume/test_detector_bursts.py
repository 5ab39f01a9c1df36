"""training/volume/detector.py after bursts: a long surge or drop is one alert, the normal points after it raise
none (the scale learns from normal points only, the expectation from clipped residuals), and the next real event
is still seen. Hand-built series: Poisson counts with a daily rhythm (``test_detector._series``), 8 days of
warm-up, events multiplied into them.

The event stays flagged (not alerted again) for 1.3-3.6 hours after its last point: the smoothed z that keeps
an event open remembers hours of deviation. Capping that memory ends the tail within 1.5 hours but splits
bursts of the NAB Twitter series into several alerts (F1 0.61 -> 0.55), so the tail is bounded here, not
removed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.volume.detector import VolumeDetector

from .test_detector import _alerts, _series

TAIL = pd.Timedelta("4h")  # the hysteresis: the event closes within this after its last point (see above)


def _with(s: pd.DataFrame, start: str, hours: float, factor: float) -> tuple[pd.DataFrame, pd.Series]:
    at = (s["ds"] >= start) & (s["ds"] < pd.Timestamp(start) + pd.Timedelta(hours=hours))
    s.loc[at, "y"] = np.round(s.loc[at, "y"] * factor)
    return s, at


@pytest.mark.parametrize("seed", [2, 3])
@pytest.mark.parametrize(
    ("hours", "factor", "direction"), [(6, 3.0, "surge"), (3, 4.0, "surge"), (6, 0.3, "drop")]
)
def test_a_long_event_is_one_alert_and_the_normal_points_after_it_raise_none(seed, hours, factor, direction):
    s, _ = _with(_series(days=16, seed=seed), "2024-01-10 08:00", hours, factor)
    v = VolumeDetector(freq="5min", warmup="8d").detect(s)
    alerts = _alerts(v)
    assert alerts["direction"].tolist() == [direction]
    assert pd.Timestamp("2024-01-10 08:00") <= alerts["ds"].iloc[0] <= pd.Timestamp("2024-01-10 08:15")
    end = pd.Timestamp("2024-01-10 08:00") + pd.Timedelta(hours=hours)
    after = v[v["ds"] >= end + TAIL]
    assert not after["flagged"].any()  # no opposite event at its end, nothing at the next day's same hours
    during = v[(v["ds"] >= "2024-01-10 08:15") & (v["ds"] < end)]
    assert during["flagged"].all()  # one event from start to end, not one alert per point or per burst


@pytest.mark.parametrize("seed", [2, 3])
def test_a_two_day_surge_is_one_event_and_the_volume_after_it_is_not_a_drop(seed):
    s, _ = _with(_series(days=18, seed=seed), "2024-01-10 08:00", 48, 3.0)
    v = VolumeDetector(freq="5min", warmup="8d").detect(s)
    alerts = _alerts(v)
    assert alerts["direction"].tolist() == ["surge"]
    flagged = v.loc[v["flagged"], "ds"]
    assert pd.Timestamp("2024-01-12 08:00") <= flagged.max() <= pd.Timestamp("2024-01-12 08:00") + TAIL


@pytest.mark.parametrize("seed", [2, 3])
@pytest.mark.parametrize("factor", [3.0, 0.3])
def test_the_next_real_event_after_a_long_one_is_seen(seed, factor):
    s, _ = _with(_series(days=16, seed=seed), "2024-01-10 08:00", 6, factor)
    s, _ = _with(s, "2024-01-12 15:00", 0.75, 3.0)
    v = VolumeDetector(freq="5min", warmup="8d").detect(s)
    alerts = _alerts(v)
    assert len(alerts) == 2
    second = alerts.iloc[1]
    assert second["direction"] == "surge"
    assert pd.Timestamp("2024-01-12 15:00") <= second["ds"] <= pd.Timestamp("2024-01-12 15:15")


@pytest.mark.xfail(
    strict=True,
    reason="known limit: three alerted surges on three days of a series' first two weeks are 3 of its ~12 "
    "block maxima, so the return level (once per 14 days) rises to their size and a smaller event is unseen",
)
def test_a_smaller_event_after_three_alerted_surges_in_the_first_weeks_is_seen():
    s = _series(days=16, seed=3)
    for day in ("2024-01-09 08:00", "2024-01-10 09:00", "2024-01-11 10:00"):
        s, _ = _with(s, day, 3, 5.0)
    s, _ = _with(s, "2024-01-13 15:00", 0.75, 3.0)
    alerts = _alerts(VolumeDetector(freq="5min", warmup="8d").detect(s))
    assert (alerts["ds"] >= "2024-01-13 15:00").sum() == 1
