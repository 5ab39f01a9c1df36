"""features/forecast_config.py: defaults per frequency, the direct-horizon copy, refusals, round trip."""

from __future__ import annotations

import pytest

from features.forecast_config import ForecastFeatureConfig


def test_daily_defaults_cover_a_year_of_lags_and_weekly_multiples():
    cfg = ForecastFeatureConfig(freq="D")
    assert cfg.lags[:7] == (1, 2, 3, 4, 5, 6, 7)
    assert {14, 28, 364} <= set(cfg.lags)
    assert cfg.rolling_windows == (7, 28, 91, 364)
    assert cfg.seasonal_windows == ((7, 4), (7, 8), (7, 52))
    assert ForecastFeatureConfig(freq="H").seasonal_windows == ((24, 7), (168, 4))
    assert 52 in ForecastFeatureConfig(freq="W").lags


def test_for_horizon_drops_short_lags_and_starts_every_window_at_h():
    cfg = ForecastFeatureConfig(freq="D").for_horizon(10)
    assert cfg.min_lag == 10
    assert cfg.lags == (10, 14, 21, 28, 35, 42, 49, 56, 91, 182, 364)
    names = cfg.feature_names_y()
    assert "y_rolling_mean_28_lag_10" in names
    assert "y_seasonal_rolling_mean_4w_lag_14" in names
    assert all(not n.startswith("y_lag_") or int(n.split("_")[-1]) >= 10 for n in names)


def test_explicit_lags_shorter_than_min_lag_are_refused():
    with pytest.raises(ValueError, match=r"lags \[1\] are shorter than min_lag=7.*for_horizon"):
        ForecastFeatureConfig(min_lag=7, lags=(1, 7))


def test_invalid_config_values_are_refused():
    with pytest.raises(ValueError, match=r"min_lag must be a positive int \(steps\). Got 0 instead"):
        ForecastFeatureConfig(min_lag=0)
    with pytest.raises(ValueError, match=r"rolling_stats must be among.*Got \['median'\]"):
        ForecastFeatureConfig(rolling_stats=("median",))
    with pytest.raises(ValueError, match="Unsupported frequency 'M'"):
        ForecastFeatureConfig(freq="M")


def test_config_round_trips_through_a_plain_dict():
    cfg = ForecastFeatureConfig(freq="W", rolling_stats=("mean", "max")).for_horizon(3)
    assert ForecastFeatureConfig.from_dict(cfg.to_dict()) == cfg


def test_with_level_adds_the_level_window_mean_only_when_missing():
    default = ForecastFeatureConfig(freq="W")
    assert default.level_window == 8 and default.with_level() is default
    assert default.level_name == "y_rolling_mean_8_lag_1"
    bare = ForecastFeatureConfig(rolling_windows=(7,), rolling_stats=("std",), level_window=14)
    level = bare.with_level()
    assert level.rolling_windows == (7, 14) and level.rolling_stats == ("mean", "std")
    assert level.for_horizon(42).level_name == "y_rolling_mean_14_lag_42"
    assert ForecastFeatureConfig.from_dict(level.to_dict()) == level
