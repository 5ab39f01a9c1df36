"""features/weather.py: derived weather signals and the join through static.region."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from features.weather import (
    WEATHER_DATE_MISSING,
    WEATHER_NO_REGION,
    WEATHER_PRESENT,
    derive_weather,
    weather_features,
)

NAN = float("nan")


def _weather(region: str = "north", start: str = "2024-01-01", **cols: list) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    return pd.DataFrame(
        {"region": pd.array([region] * n, dtype="string"), "ds": pd.date_range(start, periods=n), **cols}
    )


def _grid(
    n: int, series: tuple[str, ...] = ("s1",), start: str = "2024-01-01", freq: str = "D"
) -> pd.DataFrame:
    ds = pd.date_range(start, periods=n, freq=freq)
    df = pd.DataFrame({"series_id": np.repeat(series, n), "ds": np.tile(ds, len(series))})
    df["series_id"] = pd.Categorical(df["series_id"], categories=sorted(series))
    return df


def _static(mapping: dict[str, str | None]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "series_id": pd.array(list(mapping), dtype="string"),
            "region": pd.array(list(mapping.values()), dtype="string"),
        }
    )


def _col(df: pd.DataFrame, name: str) -> list:
    return [None if math.isnan(v) else round(float(v), 4) for v in df[name]]


def test_temp_drop_is_today_minus_the_mean_of_the_previous_three_days():
    out = derive_weather(_weather(temp_mean=[10, 12, 14, 4, 6]))
    # day 3: 4 - (10 + 12 + 14) / 3 = -8 ; day 4: 6 - (12 + 14 + 4) / 3 = -4
    assert _col(out, "weather_temp_drop_3d") == [None, None, None, -8.0, -4.0]


def test_cold_and_heat_flags_use_documented_thresholds_on_temp_max():
    out = derive_weather(_weather(temp_max=[-1, 0, 15, 30, 31, NAN]))
    assert _col(out, "weather_cold_flag") == [1, 1, 0, 0, 0, None]
    assert _col(out, "weather_heat_flag") == [0, 0, 0, 1, 1, None]
    custom = derive_weather(_weather(temp_max=[-1, 0, 25]), cold_max_c=-1.0, heat_min_c=25.0)
    assert _col(custom, "weather_cold_flag") == [1, 0, 0]
    assert _col(custom, "weather_heat_flag") == [0, 0, 1]


def test_rain_flag_and_three_day_precipitation():
    out = derive_weather(_weather(precip_mm=[0.0, 2.0, 0.5, 1.0]))
    assert _col(out, "weather_rain_flag") == [0, 1, 0, 1]
    assert _col(out, "weather_precip_mm_3d") == [None, None, 2.5, 3.5]


def test_a_day_missing_from_the_table_is_missing_not_interpolated():
    w = _weather(temp_mean=[10, 12, 14, 4, 6], precip_mm=[1.0, 1.0, 1.0, 1.0, 1.0]).drop(index=2)
    out = derive_weather(w)
    assert len(out) == 5  # the calendar is complete again
    assert _col(out, "weather_temp_mean") == [10, 12, None, 4, 6]
    assert _col(out, "weather_temp_drop_3d") == [None, None, None, None, None]
    assert _col(out, "weather_precip_mm_3d") == [None, None, None, None, None]


def test_other_numeric_columns_are_plain_features_and_text_becomes_category():
    out = derive_weather(_weather(Mean_Humidity=[80, 90], events=["Rain", None]))
    assert _col(out, "weather_mean_humidity") == [80, 90]
    assert isinstance(out["weather_events"].dtype, pd.CategoricalDtype)
    assert out["weather_events"].isna().tolist() == [False, True]


def test_weather_with_a_time_of_day_is_refused():
    w = _weather(temp_mean=[1.0, 2.0])
    w.loc[1, "ds"] = pd.Timestamp("2024-01-02 12:00")
    with pytest.raises(ValueError, match=r"Weather must be daily, but 1 rows have a time of day.*aggregate"):
        derive_weather(w)


def test_series_join_weather_through_their_region_and_missing_regions_are_counted():
    weather = pd.concat([_weather("north", temp_mean=[1.0, 2.0]), _weather("south", temp_mean=[10.0, 20.0])])
    grid = _grid(2, ("s1", "s2", "s3", "s4"))
    static = _static({"s1": "south", "s2": "north", "s3": None, "s4": "atlantis"})
    out, status, counts = weather_features(grid, weather, static, "D")
    assert _col(out, "weather_temp_mean") == [10, 20, 1, 2, None, None, None, None]
    assert status.tolist() == [WEATHER_PRESENT] * 4 + [WEATHER_NO_REGION] * 4
    assert counts == {"weather_series_without_region": 1, "weather_series_region_unknown": 1}


def test_dates_beyond_the_weather_table_stay_missing_and_are_flagged():
    grid = _grid(4, ("s1",))
    out, status, _ = weather_features(grid, _weather(temp_mean=[1.0, 2.0]), _static({"s1": "north"}), "D")
    assert _col(out, "weather_temp_mean") == [1, 2, None, None]
    assert status.tolist() == [WEATHER_PRESENT, WEATHER_PRESENT, WEATHER_DATE_MISSING, WEATHER_DATE_MISSING]


def test_hourly_series_take_the_weather_of_their_day():
    grid = _grid(48, ("s1",), freq="h")
    out, _, _ = weather_features(grid, _weather(temp_mean=[1.0, 2.0]), _static({"s1": "north"}), "h")
    assert out["weather_temp_mean"].tolist() == [1.0] * 24 + [2.0] * 24


def test_weekly_series_take_the_mean_of_the_seven_days_ending_at_ds():
    temps = [float(i) for i in range(14)]  # 2024-01-01 (Mon) .. 2024-01-14 (Sun)
    grid = _grid(2, ("s1",), start="2024-01-07", freq="W-SUN")
    out, _, _ = weather_features(grid, _weather(temp_mean=temps), _static({"s1": "north"}), "W-SUN")
    # week ending Sun 2024-01-07: days 0..6 -> 3.0 ; week ending 2024-01-14: days 7..13 -> 10.0
    assert _col(out, "weather_temp_mean") == [3.0, 10.0]


def test_weather_features_never_use_weather_after_cutoff():
    rng = np.random.default_rng(2)
    n = 30
    weather = _weather(
        temp_mean=rng.normal(10, 5, n).round(1).tolist(),
        temp_max=rng.normal(15, 8, n).round(1).tolist(),
        precip_mm=rng.gamma(1.0, 2.0, n).round(1).tolist(),
        humidity=rng.integers(40, 100, n).tolist(),
    )
    grid = _grid(n, ("s1",))
    static = _static({"s1": "north"})
    base, _, _ = weather_features(grid, weather, static, "D")
    cutoff = pd.Timestamp("2024-01-15")
    changed = weather.copy()
    late = changed["ds"] > cutoff
    changed.loc[late, ["temp_mean", "temp_max", "precip_mm", "humidity"]] = -50
    out, _, _ = weather_features(grid, changed, static, "D")
    upto = (grid["ds"] <= cutoff).to_numpy()
    pd.testing.assert_frame_equal(out.loc[upto], base.loc[upto], check_exact=True)
    assert not out.loc[~upto].equals(base.loc[~upto])
