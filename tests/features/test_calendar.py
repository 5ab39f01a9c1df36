"""features/calendar.py: frequency inference and calendar features."""

from __future__ import annotations

import pandas as pd
import pytest

from features.calendar import (
    base_freq,
    calendar_feature_names,
    calendar_features,
    infer_freq,
    seasonal_slots,
    step_length,
    step_unit,
)


def _ds(*values: str) -> pd.Series:
    return pd.Series(pd.to_datetime(list(values), format="ISO8601"))


def test_weekly_anchor_is_inferred_from_the_weekday_of_the_data():
    assert infer_freq(_ds("2024-01-07", "2024-01-14", "2024-01-28"), "W") == "W-SUN"
    assert infer_freq(_ds("2024-01-01", "2024-01-08"), "W") == "W-MON"


def test_weekly_data_on_several_weekdays_is_refused_with_the_counts_and_the_fix():
    with pytest.raises(ValueError, match=r"several \(MON: 1, SUN: 2 distinct.*resample\('W-SUN'\)"):
        infer_freq(_ds("2024-01-07", "2024-01-14", "2024-01-15"), "W")


def test_explicit_weekly_anchor_that_contradicts_the_data_is_refused():
    with pytest.raises(ValueError, match=r"'W-MON' was requested but every ds falls on a SUN"):
        infer_freq(_ds("2024-01-07", "2024-01-14"), "W-MON")


def test_daily_and_hourly_aliases():
    assert infer_freq(_ds("2024-01-01", "2024-01-03"), "D") == "D"
    assert infer_freq(_ds("2024-01-01 00:00", "2024-01-01 05:00"), "H") == "h"
    assert infer_freq(_ds("2024-01-01 00:00", "2024-01-01 05:00"), "h") == "h"


def test_daily_freq_refuses_times_of_day():
    with pytest.raises(ValueError, match=r"needs dates without a time of day, but 1 of 2.*use freq 'H'"):
        infer_freq(_ds("2024-01-01", "2024-01-02 13:00"), "D")


def test_hourly_freq_refuses_minutes():
    with pytest.raises(ValueError, match=r"whole hours, but 1 of 2 distinct ds are not.*2024-01-01 10:30"):
        infer_freq(_ds("2024-01-01 09:00", "2024-01-01 10:30"), "H")


def test_daily_data_declared_hourly_is_refused():
    with pytest.raises(ValueError, match="looks daily.*use freq 'D'"):
        infer_freq(_ds("2024-01-01", "2024-01-02", "2024-01-03"), "H")


def test_weekly_data_declared_daily_is_refused():
    with pytest.raises(ValueError, match="fall on a SUN, so the data looks weekly.*use freq 'W'"):
        infer_freq(_ds("2024-01-07", "2024-01-14", "2024-01-21"), "D")


def test_unknown_frequency_is_refused():
    with pytest.raises(ValueError, match=r"Unsupported frequency 'M'"):
        base_freq("M")
    with pytest.raises(ValueError, match="Unsupported frequency 'fortnightly'"):
        step_length("fortnightly")


def test_step_and_unit_per_frequency():
    assert step_length("W-SUN") == pd.Timedelta(days=7)
    assert step_length("h") == pd.Timedelta(hours=1)
    assert step_length("H") == step_length("1H") == pd.Timedelta(hours=1)
    assert step_length("D") == step_length("1D") == pd.Timedelta(days=1)
    assert step_unit("D") == "days"
    assert step_unit("H") == "hours"
    assert step_unit("W-MON") == "weeks"


def test_daily_calendar_values():
    out = calendar_features(_ds("2024-02-29", "2024-03-01"), "D")
    assert list(out.columns) == calendar_feature_names("D")
    row = out.iloc[0]
    assert row["cal_dayofweek"] == 3  # Thursday
    assert row["cal_dayofmonth"] == 29
    assert row["cal_dayofyear"] == 60
    assert row["cal_weekofyear"] == 9
    assert (row["cal_month"], row["cal_quarter"], row["cal_year"]) == (2, 1, 2024)
    assert (row["cal_is_month_start"], row["cal_is_month_end"], row["cal_days_to_month_end"]) == (0, 1, 0)
    assert out.iloc[1][["cal_is_month_start", "cal_days_to_month_end"]].tolist() == [1, 30]


def test_hour_only_at_hourly_frequency_and_weekly_has_no_weekday():
    assert "cal_hour" in calendar_feature_names("H")
    assert "cal_hour" not in calendar_feature_names("D")
    assert "cal_dayofweek" not in calendar_feature_names("W-SUN")
    out = calendar_features(_ds("2024-01-01 13:00"), "H")
    assert out["cal_hour"].tolist() == [13]


def test_calendar_features_keep_the_index():
    ds = pd.Series(pd.to_datetime(["2024-01-01", "2024-01-01"]), index=[10, 20])
    assert list(calendar_features(ds, "D").index) == [10, 20]


@pytest.mark.parametrize(
    ("freq", "minutes"),
    [
        ("1min", 1),
        ("5min", 5),
        ("15min", 15),
        ("30min", 30),
        ("2h", 120),
        ("H", 60),
        ("D", 1440),
        ("W-SUN", 10080),
    ],
)
def test_step_length_knows_every_regular_grid_from_a_minute_to_a_week(freq, minutes):
    assert step_length(freq) == pd.Timedelta(minutes=minutes)


@pytest.mark.parametrize("freq", ["7min", "30s", "8D", "M", "often"])
def test_steps_that_do_not_divide_a_day_or_leave_the_range_are_refused_with_examples(freq):
    with pytest.raises(ValueError, match=r"Unsupported frequency .*e\.g\. '1min', '5min'"):
        step_length(freq)


def test_the_forecaster_frequencies_stay_h_d_w_only():
    with pytest.raises(ValueError, match="Unsupported frequency '5min'"):
        base_freq("5min")


def test_seasonal_slots_by_frequency():
    ds = _ds("2024-01-01 00:00", "2024-01-01 13:47", "2024-01-07 23:55")
    tod, n_tod, dow, n_dow = seasonal_slots(ds, "5min")
    assert (tod.tolist(), n_tod, dow.tolist(), n_dow) == ([0, 165, 287], 288, [0, 0, 6], 7)
    tod, n_tod, dow, n_dow = seasonal_slots(_ds("2024-01-01", "2024-01-03"), "D")
    assert (tod.tolist(), n_tod, dow.tolist(), n_dow) == ([0, 0], 1, [0, 2], 7)
    assert seasonal_slots(_ds("2024-01-01"), "W")[1:4:2] == (1, 1)
