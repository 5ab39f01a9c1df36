"""training/review/scenarios.py: what-if scenario builders and the explanation of a change, on hand-built frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.review import scenarios

D = pd.Timestamp("2024-01-01")


def _day(i: int) -> pd.Timestamp:
    return D + pd.Timedelta(days=i)


def test_promo_change_sets_the_promo_of_each_series_for_each_day():
    plan = scenarios.promo_change(_day(0), days=2, series_ids=["a", "b"], value=1)
    assert list(plan.columns) == ["series_id", "ds", "promo"]
    assert list(zip(plan["series_id"], plan["ds"], strict=True)) == [
        ("a", _day(0)),
        ("a", _day(1)),
        ("b", _day(0)),
        ("b", _day(1)),
    ]
    assert (plan["promo"] == 1.0).all()


def test_promo_change_without_series_applies_to_every_series():
    plan = scenarios.promo_change("2024-01-01", days=3, value=0, column="promo_tv")
    assert list(plan.columns) == ["ds", "promo_tv"]
    assert list(plan["ds"]) == [_day(0), _day(1), _day(2)]


def test_promo_change_refuses_an_empty_change():
    with pytest.raises(ValueError, match="days must be >= 1.*Got 0"):
        scenarios.promo_change(D, days=0)


@pytest.fixture
def weather() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "region": ["north"] * 3 + ["south"] * 3,
            "ds": [_day(i) for i in range(3)] * 2,
            "temp_mean": [10.0, 11.0, 12.0, 20.0, 21.0, 22.0],
            "temp_min": 5.0,
            "precip_mm": 0.0,
            "wind_mean": 3.0,
        }
    )


@pytest.fixture
def static() -> pd.DataFrame:
    return pd.DataFrame({"series_id": ["a", "b", "c"], "region": ["north", "north", None]})


def test_weather_change_shifts_temperatures_and_sets_rain_in_the_series_regions(weather, static):
    change = scenarios.weather_change(weather, static, ["a"], _day(1), days=2, temp_delta_c=-5, precip_mm=20)
    assert list(change.columns) == ["region", "ds", "temp_mean", "temp_min", "precip_mm"]  # wind unchanged
    assert list(change["region"]) == ["north", "north"]
    assert list(change["temp_mean"]) == [6.0, 7.0]
    assert list(change["temp_min"]) == [0.0, 0.0]
    assert list(change["precip_mm"]) == [20.0, 20.0]


def test_weather_change_refuses_series_without_a_region(weather, static):
    with pytest.raises(ValueError, match=r"Series \['c'\] have no region"):
        scenarios.weather_change(weather, static, ["a", "c"], _day(0), days=1)


def test_weather_change_refuses_days_the_weather_table_does_not_cover(weather, static):
    with pytest.raises(ValueError, match="has 1 of the 2 rows"):
        scenarios.weather_change(weather, static, ["a"], _day(2), days=2, temp_delta_c=-5)


def _what_if() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "series_id": ["a", "a", "b", "b"],
            "ds": [_day(0), _day(1), _day(0), _day(1)],
            "yhat": [12.0, 10.0, 0.0, 6.0],
            "yhat_base": [10.0, 10.0, 0.0, 4.0],
        }
    )


def test_what_if_summary_sums_base_and_scenario_per_series_with_a_total():
    table = scenarios.what_if_summary(_what_if()).set_index("series_id")
    assert table.loc["a", "delta"] == 2.0
    assert table.loc["a", "delta_pct"] == pytest.approx(0.1)
    assert table.loc["b", "forecast_base"] == 4.0
    assert table.loc["all", "forecast_scenario"] == 28.0
    assert table.loc["all", "delta_pct"] == pytest.approx(4 / 24)
    assert table["days"].dtype == "int64" and table.loc["all", "days"] == 2


def test_what_if_summary_keeps_only_the_days_asked_for():
    table = scenarios.what_if_summary(_what_if(), start=_day(1), end=_day(1)).set_index("series_id")
    assert table.loc["a", "delta"] == 0.0
    assert table.loc["b", "delta"] == 2.0


def _explained(yhat: list[float], promo: list[float], cal: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "series_id": ["a", "a"],
            "ds": [_day(0), _day(1)],
            "yhat": yhat,
            "contrib_calendar": cal,
            "contrib_promo": promo,
        }
    )


def test_change_by_family_shares_the_change_in_proportion_to_the_contributions():
    base = _explained([10.0, 10.0], promo=[0.0, 0.0], cal=[0.1, 0.1])
    # day 0: promo +0.2 and calendar +0.1 log units, the forecast +30: promo 20, calendar 10
    # day 1: only promo changes, the forecast +5: all of it to promo
    scenario = _explained([40.0, 15.0], promo=[0.2, 0.3], cal=[0.2, 0.1])
    table = scenarios.change_by_family(base, scenario).set_index("series_id")
    assert table.loc["a", "promo"] == pytest.approx(25.0)
    assert table.loc["a", "calendar"] == pytest.approx(10.0)
    assert table.loc["a", "total"] == pytest.approx(35.0)
    assert table.loc["all", "total"] == pytest.approx(35.0)


def test_change_by_family_gives_nothing_to_families_when_the_forecast_is_unchanged():
    base = _explained([10.0, 10.0], promo=[0.1, 0.1], cal=[0.1, 0.1])
    table = scenarios.change_by_family(base, base).set_index("series_id")
    assert np.allclose(table.loc["a"].to_numpy(dtype=float), 0.0)


def test_change_by_family_needs_explained_forecasts():
    plain = _explained([1.0, 1.0], [0.0, 0.0], [0.0, 0.0]).drop(columns=["contrib_promo"])
    with pytest.raises(ValueError, match=r"missing in base: \['promo'\]"):
        scenarios.change_by_family(plain, _explained([1.0, 1.0], [0.0, 0.0], [0.0, 0.0]))


def _plan() -> pd.DataFrame:
    """Series a: promo on days 0-4 (week 1), off on days 7-13 (week 2)."""
    promo = [1, 1, 1, 1, 1, 0, 0] + [0] * 7
    return pd.DataFrame({"series_id": "a", "ds": [_day(i) for i in range(14)], "promo": promo})


def test_pick_change_start_prefers_the_week_the_change_alters_most():
    start = scenarios.pick_change_start(_plan(), ["a"], [_day(0), _day(7)], days=7, value=1)
    assert start == _day(7)  # turning promo on changes 7 days of week 2, only 2 of week 1


def test_pick_change_start_for_promo_off_prefers_the_promo_week():
    start = scenarios.pick_change_start(_plan(), ["a"], [_day(0), _day(7)], days=7, value=0)
    assert start == _day(0)


def test_pick_change_start_counts_days_beyond_the_stored_plan_as_changed():
    start = scenarios.pick_change_start(_plan(), ["a"], [_day(0), _day(14)], days=7, value=1)
    assert start == _day(14)


def test_pick_change_start_names_the_stored_columns_when_the_column_is_missing():
    with pytest.raises(ValueError, match=r"no column 'discount' to change; they have \['promo'\]"):
        scenarios.pick_change_start(_plan(), ["a"], [_day(0)], column="discount")
