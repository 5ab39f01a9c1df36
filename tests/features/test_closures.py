"""features/closures.py: days since the last closure and its length, from ``open`` only."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.closures import CLOSURE_FEATURES, closure_features
from features.forecast_config import ForecastFeatureConfig
from features.forecast_frame import build_future_frame, build_training_frame, feature_family
from features.validation import validate


def _grid(opens: dict[str, list[int]]) -> pd.DataFrame:
    parts = [
        pd.DataFrame({"series_id": sid, "ds": pd.date_range("2024-01-01", periods=len(o)), "open": o})
        for sid, o in opens.items()
    ]
    g = pd.concat(parts, ignore_index=True)
    return g.assign(series_id=pd.Categorical(g["series_id"]))


def test_closure_features_hand_computed_values():
    opens = [1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1]
    f = closure_features(_grid({"a": opens}), cap=5)
    nan = np.nan
    np.testing.assert_array_equal(f["cal_closed_days_since"], [nan, nan, 0, 1, 2, 3, 0, 0, 0, 1, 2, 3])
    # the run before row 3 is the 1-day closure at row 2; rows 9.. follow the 3-day closure
    np.testing.assert_array_equal(f["cal_closed_run_before"], [nan, nan, 1, 1, 1, 1, 3, 3, 3, 3, 3, 3])


def test_closure_features_cap_and_no_closure_nearby():
    opens = [0] + [1] * 9
    f = closure_features(_grid({"a": opens}), cap=3)
    # the closed step at row 0 touches the series start: its length is unknown
    assert np.isnan(f["cal_closed_run_before"].iloc[0])
    np.testing.assert_array_equal(f["cal_closed_days_since"].iloc[3:], [3] * 7)
    np.testing.assert_array_equal(f["cal_closed_run_before"].iloc[3:], [0] * 7)  # nothing within 3 steps


def test_closure_features_never_cross_series():
    f = closure_features(_grid({"a": [1, 1, 0], "b": [1, 1, 1]}), cap=5)
    # series b starts right after a's closure: b knows nothing of it
    assert np.isnan(f["cal_closed_days_since"].iloc[3:]).all()
    assert np.isnan(f["cal_closed_run_before"].iloc[3:]).all()


def test_closure_features_for_selected_rows_equal_the_full_computation():
    g = _grid({"a": [1, 0, 1, 1, 0, 0, 1, 1], "b": [1, 1, 1, 0, 1, 1, 1, 1]})
    rows = np.array([2, 5, 9, 15])
    full = closure_features(g, cap=4)
    part = closure_features(g, cap=4, rows=rows)
    pd.testing.assert_frame_equal(part, full.iloc[rows].reset_index(drop=True))


def _series() -> pd.DataFrame:
    ds = pd.date_range("2024-01-01", periods=60)
    is_open = np.where((ds.dayofweek == 6) | ds.isin(pd.date_range("2024-02-10", "2024-02-20")), 0, 1)
    y = np.where(is_open == 1, 100.0 + np.arange(60), 0.0)
    return validate(pd.DataFrame({"series_id": "s", "ds": ds, "y": y, "open": is_open}), "series")[0]


def test_closure_features_never_read_y():
    series = _series()
    config = ForecastFeatureConfig(
        freq="D", lags=(7,), rolling_windows=(7,), seasonal_windows=(), use_closures=True
    )
    a, _ = build_training_frame(series, config=config)
    b, _ = build_training_frame(series.assign(y=series["y"] * 3 + 7), config=config)
    pd.testing.assert_frame_equal(a[list(CLOSURE_FEATURES)], b[list(CLOSURE_FEATURES)])
    assert {feature_family(c) for c in CLOSURE_FEATURES} == {"calendar"}


def test_future_frame_reads_known_closures_in_the_horizon_not_y_after_the_origin():
    series = _series()
    config = ForecastFeatureConfig(
        freq="D", lags=(14,), rolling_windows=(7,), seasonal_windows=(), min_lag=14, use_closures=True
    )
    origin = pd.Timestamp("2024-02-05")
    f, _ = build_future_frame(series, horizon=21, config=config, origin=origin)
    g, _ = build_future_frame(
        series.assign(y=np.where(series["ds"] > origin, 1e6, series["y"])),
        horizon=21,
        config=config,
        origin=origin,
    )
    pd.testing.assert_frame_equal(f[list(CLOSURE_FEATURES)], g[list(CLOSURE_FEATURES)])
    # the refurbishment closure 2024-02-10..20 (Sunday 02-11 inside it) is known from the plan in the horizon
    day = f.set_index("ds")
    assert day.loc["2024-02-22", "cal_closed_days_since"] == 2
    assert day.loc["2024-02-22", "cal_closed_run_before"] == 11
    assert day.loc["2024-02-19", "cal_closed_days_since"] == 0
    # before it, the last closure was Sunday 2024-02-04 (before the origin: open is known for the history)
    assert day.loc["2024-02-08", "cal_closed_days_since"] == 4
    assert day.loc["2024-02-08", "cal_closed_run_before"] == 1


def test_rows_whose_open_is_unknown_stop_the_search():
    g = _grid({"a": [0, 1, 1, 1, 1, 1]})
    known = np.array([True, True, False, True, True, True])  # row 2: an inserted gap
    f = closure_features(g, cap=10, known=known)
    np.testing.assert_array_equal(f["cal_closed_days_since"], [0, 1, np.nan, np.nan, np.nan, np.nan])
    # row 0's closure starts the series: its length is unknown
    assert np.isnan(f["cal_closed_run_before"]).all()


def test_closure_features_are_off_by_default():
    a, _ = build_training_frame(_series(), config=ForecastFeatureConfig(freq="D"))
    assert not any(c.startswith("cal_closed_") for c in a.columns)
