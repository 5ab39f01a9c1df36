"""training/forecast/transforms.py: target transforms (offsets in log1p space), round trip and leakage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.forecast_config import ForecastFeatureConfig
from features.forecast_frame import build_future_frame, build_training_frame
from training.forecast.transforms import check_transform, forward, inverse, target_offsets


def _series(n: int = 450, ids=("a", "b"), seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for i, sid in enumerate(ids):
        ds = pd.date_range("2024-01-01", periods=n, freq="D")
        y = (20 + 10 * i) * (1 + 0.01 * np.arange(n)) * rng.gamma(20, 1 / 20, n)
        parts.append(pd.DataFrame({"series_id": sid, "ds": ds, "y": y.round(2), "open": 1}))
    df = pd.concat(parts, ignore_index=True)
    df["series_id"] = df["series_id"].astype("string")
    return df


@pytest.mark.parametrize("name", ["log", "level", "yoy"])
def test_forward_then_inverse_gives_y_back(name):
    frame, _ = build_training_frame(_series(), config=ForecastFeatureConfig(min_lag=7, use_yearly=True))
    rows = frame.loc[frame["y"].notna()]
    offset, _ = target_offsets(rows, name, "y_rolling_mean_28_lag_7")
    y = rows["y"].to_numpy()
    np.testing.assert_allclose(inverse(forward(y, offset), offset), y, rtol=1e-12, atol=1e-9)


def test_level_offset_is_log1p_of_the_mean_of_the_last_window_before_the_origin_hand_computed():
    s = pd.DataFrame(
        {
            "series_id": pd.array(["a"] * 6, dtype="string"),
            "ds": pd.date_range("2024-01-01", periods=6, freq="D"),
            "y": [1.0, 3.0, 5.0, 7.0, 100.0, 200.0],
            "open": [1, 1, 0, 1, 1, 1],
        }
    )
    cfg = ForecastFeatureConfig(
        min_lag=2, level_window=3, lags=(2,), rolling_windows=(), use_yearly=False
    ).with_level()
    assert cfg.rolling_windows == (3,) and cfg.level_name == "y_rolling_mean_3_lag_2"
    frame, _ = build_training_frame(s, config=cfg)
    offset, counts = target_offsets(frame, "level", cfg.level_name)
    # row 6 (2024-01-06): origin t - 2 = day 4; the window days 2..4 skips the closed day 3 -> mean(3, 7) = 5
    assert offset[5] == pytest.approx(np.log1p(5.0), rel=1e-6)
    # days 1-2: the window ends before the series; day 3: one value, fewer than half the window: offset 0, counted
    assert offset[:3].tolist() == [0.0, 0.0, 0.0] and counts["transform_rows_without_level"] == 3


def test_yoy_offset_adds_last_years_ratio_and_falls_back_to_the_level_without_a_last_year():
    frame = pd.DataFrame(
        {"lvl": [9.0, 9.0, np.nan], "y_yoy_log_ratio_mean_7_lag_361": [0.5, np.nan, 0.5], "y": 1.0}
    )
    offset, counts = target_offsets(frame, "yoy", "lvl")
    np.testing.assert_allclose(offset, [np.log1p(9.0) + 0.5, np.log1p(9.0), 0.0])
    assert counts == {"transform_rows_without_level": 1, "transform_rows_without_last_year": 1}


def test_the_scale_at_the_origin_uses_only_y_up_to_the_origin():
    s = _series()
    origin = pd.Timestamp("2025-02-28")  # more than a year in: last year's ratio is known
    cfg = ForecastFeatureConfig(min_lag=14, use_yearly=True)
    base, _ = build_future_frame(s, horizon=14, config=cfg, origin=origin)
    changed = s.copy()
    after = changed["ds"] > origin
    changed.loc[after, "y"] = changed.loc[after, "y"] * 50 + 1000
    out, _ = build_future_frame(changed, horizon=14, config=cfg, origin=origin)
    for name in ("level", "yoy"):
        np.testing.assert_array_equal(
            target_offsets(out, name, cfg.level_name)[0], target_offsets(base, name, cfg.level_name)[0]
        )
    yoy, counts = target_offsets(base, "yoy", cfg.level_name)
    assert counts["transform_rows_without_last_year"] == 0
    assert not np.allclose(yoy, target_offsets(base, "level", cfg.level_name)[0])


def test_training_offsets_never_read_y_after_each_rows_origin():
    s = _series()
    cfg = ForecastFeatureConfig(min_lag=7, use_yearly=True)
    base, _ = build_training_frame(s, config=cfg)
    cut = pd.Timestamp("2025-02-01")
    changed = s.copy()
    changed.loc[changed["ds"] > cut, "y"] = 1e6
    out, _ = build_training_frame(changed, config=cfg)
    upto = (base["ds"] <= cut + pd.Timedelta(days=7)).to_numpy()  # rows whose origin (t - 7) is <= cut
    for name in ("level", "yoy"):
        a = target_offsets(base.loc[upto], name, cfg.level_name)[0]
        b = target_offsets(out.loc[upto], name, cfg.level_name)[0]
        np.testing.assert_array_equal(a, b)
    later = target_offsets(out.loc[~upto], "level", cfg.level_name)[0]
    assert (later > np.log1p(1e5)).any()  # the change does reach rows whose origin is after the cut


def test_unknown_transform_is_refused_with_the_choices():
    assert check_transform("auto") == "auto"
    with pytest.raises(ValueError, match=r"target_transform must be one of .*'level'.*Got 'diff'"):
        check_transform("diff")
