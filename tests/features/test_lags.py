"""features/lags.py: lag, rolling, seasonal and expanding features of y on the regular grid."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from features.forecast_config import ForecastFeatureConfig
from features.lags import lag_feature_names, lag_features, seasonal_lag, seasonal_unit

NAN = float("nan")


def _frame(
    values: dict[str, list[float]],
    opens: dict[str, list[int]] | None = None,
    start: str = "2024-01-01",
    freq: str = "D",
) -> pd.DataFrame:
    parts = []
    for sid, ys in values.items():
        parts.append(
            pd.DataFrame(
                {
                    "series_id": sid,
                    "ds": pd.date_range(start, periods=len(ys), freq=freq),
                    "y": np.asarray(ys, dtype="float64"),
                    "open": (opens or {}).get(sid, [1] * len(ys)),
                }
            )
        )
    df = pd.concat(parts, ignore_index=True)
    df["series_id"] = df["series_id"].astype("category")
    df["open"] = df["open"].astype("int8")
    return df


def _config(**kw) -> ForecastFeatureConfig:
    base = {
        "lags": (),
        "rolling_windows": (),
        "seasonal_windows": (),
        "use_expanding_mean": False,
        "use_yearly": False,
    }
    base.update(kw)
    return ForecastFeatureConfig(**base)


def _col(df: pd.DataFrame, name: str) -> list[float]:
    return [None if math.isnan(v) else round(float(v), 6) for v in df[name]]


def test_lags_read_earlier_rows_of_the_same_series_only():
    df = _frame({"a": [1, 2, 3], "b": [10, 20, 30]})
    out = lag_features(df, _config(lags=(1, 2)))
    assert _col(out, "y_lag_1") == [None, 1, 2, None, 10, 20]
    assert _col(out, "y_lag_2") == [None, None, 1, None, None, 10]


def test_rolling_mean_skips_closed_days_instead_of_counting_zeros():
    # day 3 is closed (y=0): the 3-day mean at day 4 is (10 + 20) / 2, not (10 + 20 + 0) / 3
    df = _frame({"a": [10, 20, 0, 40]}, {"a": [1, 1, 0, 1]})
    out = lag_features(df, _config(rolling_windows=(3,), rolling_stats=("mean",)))
    # (a 3-step window needs ceil(0.5 * 3) = 2 observations, so t=1 is missing)
    assert _col(out, "y_rolling_mean_3_lag_1") == [None, None, 15, 15]


def test_closed_days_make_their_lag_missing_not_zero():
    df = _frame({"a": [10, 0, 30]}, {"a": [1, 0, 1]})
    out = lag_features(df, _config(lags=(1,)))
    assert _col(out, "y_lag_1") == [None, 10, None]


def test_missing_y_never_becomes_zero():
    df = _frame({"a": [4, NAN, 8, 6]})
    out = lag_features(df, _config(lags=(1,), rolling_windows=(2,), rolling_stats=("mean",)))
    assert _col(out, "y_lag_1") == [None, 4, None, 8]
    # window of 2 needs 1 observation (rolling_min_fraction 0.5): [4, nan] -> 4, [nan, 8] -> 8
    assert _col(out, "y_rolling_mean_2_lag_1") == [None, 4, 4, 8]


def test_rolling_statistics_need_the_minimum_share_of_observations():
    df = _frame({"a": [2, NAN, NAN, NAN, 6]})
    out = lag_features(df, _config(rolling_windows=(4,), rolling_stats=("mean",), rolling_min_fraction=0.5))
    # at t=4 the window rows 0..3 hold one observation, the minimum is 2
    assert _col(out, "y_rolling_mean_4_lag_1") == [None, None, None, None, None]


def test_rolling_std_max_min_hand_computed():
    df = _frame({"a": [1, 3, 5, 10]})
    out = lag_features(df, _config(rolling_windows=(3,), rolling_stats=("std", "max", "min")))
    assert _col(out, "y_rolling_std_3_lag_1") == [None, None, round(math.sqrt(2), 6), 2.0]
    assert _col(out, "y_rolling_max_3_lag_1") == [None, None, 3, 5]
    assert _col(out, "y_rolling_min_3_lag_1") == [None, None, 1, 1]


def test_std_of_a_constant_window_is_exactly_zero_at_any_level():
    df = _frame({"a": [1e7 + 0.1] * 6})
    out = lag_features(df, _config(rolling_windows=(3,), rolling_stats=("std",)))
    assert out["y_rolling_std_3_lag_1"].iloc[3:].tolist() == [0.0, 0.0, 0.0]


def test_rolling_window_starts_at_min_lag():
    df = _frame({"a": [1, 2, 3, 4, 5, 6]})
    out = lag_features(df, _config(min_lag=2, rolling_windows=(2,), rolling_stats=("mean",)))
    # value at t = mean(y[t-3], y[t-2])
    assert _col(out, "y_rolling_mean_2_lag_2") == [None, None, 1, 1.5, 2.5, 3.5]


def test_seasonal_mean_averages_the_same_weekday():
    ys = list(range(1, 16))  # 15 days
    df = _frame({"a": ys})
    out = lag_features(df, _config(seasonal_windows=((7, 2),)))
    # at day index 14: mean(y[7], y[0]) = (8 + 1) / 2 ; at index 8 only y[1] is available (1 of 2 >= minimum 1)
    assert out["y_seasonal_rolling_mean_2w_lag_7"].iloc[14] == pytest.approx(4.5)
    assert out["y_seasonal_rolling_mean_2w_lag_7"].iloc[8] == pytest.approx(2.0)
    assert math.isnan(out["y_seasonal_rolling_mean_2w_lag_7"].iloc[6])


def test_seasonal_lag_keeps_the_weekday_when_min_lag_grows():
    assert seasonal_lag(1, 7) == 7
    assert seasonal_lag(10, 7) == 14
    assert seasonal_lag(42, 7) == 42
    assert seasonal_unit("D", 7) == "w"
    assert seasonal_unit("H", 24) == "d"
    assert seasonal_unit("D", 5) == "x5"
    names = lag_feature_names(_config(min_lag=10, seasonal_windows=((7, 4),)))
    assert names == ["y_seasonal_rolling_mean_4w_lag_14"]


def test_expanding_mean_is_the_series_level_so_far():
    df = _frame({"a": [2, 4, 0, 6], "b": [100, 200, 300, 400]}, {"a": [1, 1, 0, 1]})
    out = lag_features(df, _config(use_expanding_mean=True))
    assert _col(out, "y_expanding_mean_lag_1") == [None, 2, 3, 3, None, 100, 150, 200]


def test_feature_names_say_what_they_are():
    cfg = ForecastFeatureConfig(
        lags=(42,), min_lag=42, rolling_windows=(28,), rolling_stats=("mean",), seasonal_windows=((7, 4),)
    )
    assert lag_feature_names(cfg) == [
        "y_lag_42",
        "y_rolling_mean_28_lag_42",
        "y_seasonal_rolling_mean_4w_lag_42",
        "y_expanding_mean_lag_42",
    ]


def test_lag_features_are_only_the_y_columns_aligned_with_the_frame_which_is_not_modified():
    df = _frame({"a": [1, 2]})
    before = df.copy()
    out = lag_features(df, _config(lags=(1,)))
    assert list(out.columns) == ["y_lag_1"] and out.index.equals(df.index)
    assert list(pd.concat([df, out], axis=1).columns) == ["series_id", "ds", "y", "open", "y_lag_1"]
    pd.testing.assert_frame_equal(df, before)


def test_lag_features_never_use_values_after_cutoff():
    rng = np.random.default_rng(0)
    n = 80
    values = {s: rng.gamma(2.0, 50.0, n).round(1).tolist() for s in ("a", "b", "c")}
    opens = {s: [0 if i % 7 == 6 else 1 for i in range(n)] for s in values}
    for s in values:
        values[s] = [0.0 if o == 0 else v for v, o in zip(values[s], opens[s], strict=True)]
    df = _frame(values, opens)
    cfg = ForecastFeatureConfig(
        rolling_stats=("mean", "std", "max", "min"),
        lags=(1, 2, 7, 14),
        rolling_windows=(3, 7, 28),
        seasonal_windows=((7, 2), (7, 4)),
    )
    base = lag_features(df, cfg)
    cutoff = pd.Timestamp("2024-02-10")
    perturbed = df.copy()
    after = perturbed["ds"] > cutoff
    perturbed.loc[after, "y"] = perturbed.loc[after, "y"] * 7 + 1000
    perturbed.loc[after & (perturbed["series_id"] == "a"), "y"] = np.nan
    out = lag_features(perturbed, cfg)
    upto = (df["ds"] <= cutoff).to_numpy()
    pd.testing.assert_frame_equal(out.loc[upto], base.loc[upto], check_exact=True)
    assert not out.loc[~upto].equals(base.loc[~upto])  # the perturbation did reach later rows


def test_min_lag_features_ignore_the_last_min_lag_minus_one_values():
    df = _frame({"a": list(np.arange(30.0))})
    cfg = ForecastFeatureConfig(min_lag=5, rolling_windows=(3, 7), seasonal_windows=((7, 2),))
    base = lag_features(df, cfg)
    t = 20
    changed = df.copy()
    changed.loc[t - 4 : t, "y"] = -999.0  # y at t-4 .. t are newer than t - min_lag
    out = lag_features(changed, cfg)
    pd.testing.assert_series_equal(out.iloc[t], base.iloc[t], check_exact=True)


def test_unsorted_frame_is_refused():
    df = _frame({"a": [1, 2], "b": [3, 4]}).iloc[[0, 2, 1, 3]]
    with pytest.raises(ValueError, match=r"sorted by \(series_id, ds\).*found 4 blocks for 2 series"):
        lag_features(df, _config(lags=(1,)))


def test_frame_with_a_hole_in_the_grid_is_refused():
    df = _frame({"a": [1, 2, 3]}).drop(index=1)
    with pytest.raises(ValueError, match=r"full regular 'D' grid.*2024-01-01 00:00:00 -> 2024-01-03"):
        lag_features(df, _config(lags=(1,)))


def test_yearly_ratio_is_last_years_value_relative_to_the_level_then_hand_computed():
    ys = [float(i + 1) for i in range(60)]
    ys[4] = 11.0
    df = _frame({"a": ys}, start="2023-01-02", freq="W-MON")
    cfg = _config(freq="W-MON", level_window=2, use_yearly=True)
    out = lag_features(df, cfg)
    t = 55  # last year's week is 3; the level then is the mean of weeks 1..2 (origin 3 - min_lag 1)
    level_then = (ys[1] + ys[2]) / 2
    assert out["y_yoy_log_ratio_lag_52"].iloc[t] == pytest.approx(
        np.log1p(ys[3]) - np.log1p(level_then), 1e-6
    )
    smoothed = (ys[2] + ys[3] + ys[4]) / 3  # weeks 2..4 centred on week 3
    assert out["y_yoy_log_ratio_mean_3_lag_51"].iloc[t] == pytest.approx(
        np.log1p(smoothed) - np.log1p(level_then), 1e-6
    )
    assert np.isnan(out["y_yoy_log_ratio_lag_52"].iloc[51])  # no last year yet


def test_yearly_features_exist_only_when_last_year_is_known_at_the_origin():
    names = lag_feature_names(ForecastFeatureConfig(min_lag=42, use_yearly=True))
    assert {"y_yoy_log_ratio_lag_364", "y_yoy_log_ratio_mean_7_lag_361"} <= set(names)
    names = lag_feature_names(ForecastFeatureConfig(min_lag=362, lags=(364,), use_yearly=True))
    assert "y_yoy_log_ratio_lag_364" in names and not any("mean_7_lag_361" in n for n in names)
    assert not any("yoy" in n for n in lag_feature_names(ForecastFeatureConfig()))  # off by default
    assert not any("yoy" in n for n in lag_feature_names(ForecastFeatureConfig(freq="H", use_yearly=True)))


def test_yearly_features_never_use_values_after_cutoff():
    rng = np.random.default_rng(3)
    n = 800
    values = {s: rng.gamma(2.0, 50.0, n).round(1).tolist() for s in ("a", "b")}
    df = _frame(values)
    cfg = ForecastFeatureConfig(min_lag=7, use_yearly=True)
    base = lag_features(df, cfg)
    cutoff = pd.Timestamp("2025-03-01")
    perturbed = df.assign(y=np.where(df["ds"] > cutoff, df["y"] * 9 + 100, df["y"]))
    out = lag_features(perturbed, cfg)
    yearly = [c for c in base.columns if "yoy" in c]
    upto = (df["ds"] <= cutoff + pd.Timedelta(days=7)).to_numpy()  # their origin t - 7 is at most the cutoff
    assert base.loc[upto, yearly].notna().any().all()
    pd.testing.assert_frame_equal(out.loc[upto, yearly], base.loc[upto, yearly], check_exact=True)
    assert not out.loc[~upto, yearly].equals(base.loc[~upto, yearly])
