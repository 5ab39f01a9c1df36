"""training/volume/scoring.py: NAB-style event-level scoring."""

from __future__ import annotations

import pandas as pd
import pytest

from training.volume.scoring import EventScore, event_score


def test_windows_hit_once_count_once_and_each_run_outside_is_one_false_alarm():
    ds = pd.date_range("2024-01-01", periods=12, freq="h")
    flagged = [1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1]  # runs: [0-1], [3], [6-8], [11]
    windows = [("2024-01-01 06:00", "2024-01-01 07:00"), ("2024-01-01 09:00", "2024-01-01 10:00")]
    s = event_score(ds, flagged, windows)
    # window 1 holds flags 6-7 (flag 8 outside it starts a run), window 2 holds none
    assert s == EventScore(windows=2, detected=1, false_alarms=4)
    assert s.precision == pytest.approx(1 / 5)
    assert s.recall == pytest.approx(1 / 2)
    assert s.f1 == pytest.approx(2 * 0.2 * 0.5 / 0.7)


def test_scores_add_up_over_series_and_empty_flags_score_zero():
    total = EventScore(3, 2, 1) + EventScore(2, 2, 0)
    assert (total.windows, total.detected, total.false_alarms) == (5, 4, 1)
    assert total.f1 == pytest.approx(2 * 0.8 * 0.8 / 1.6)
    assert EventScore(2, 0, 0).f1 == 0.0
    with pytest.raises(ValueError, match="differ in length"):
        event_score(pd.date_range("2024-01-01", periods=3, freq="h"), [1, 0], [])
