"""training/forecast/statistical.py: the level x seasonal-profile member on hand-computable series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.forecast.ensemble import EnsembleForecaster
from training.forecast.statistical import ProfileMember, profile_forecast

WEEK = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0])  # mean 3


def test_profile_forecast_repeats_a_stable_week_exactly():
    y = np.tile(WEEK, 8)
    np.testing.assert_allclose(profile_forecast(y, 10, 7, 14, 56), np.r_[WEEK, WEEK[:3]])


def test_profile_forecast_scales_the_long_profile_by_the_recent_level():
    # six weeks at level 3 then two weeks at twice that: the level is the last 14 days' mean (6), the profile
    # the 8 weeks' shape (every week has the same shape), so the forecast is the week doubled
    y = np.r_[np.tile(WEEK, 6), np.tile(2 * WEEK, 2)]
    np.testing.assert_allclose(profile_forecast(y, 7, 7, 14, 56), 2 * WEEK)


def test_profile_forecast_of_an_all_zero_history_is_zero_and_a_short_one_uses_what_there_is():
    np.testing.assert_allclose(profile_forecast(np.zeros(30), 5, 7, 14, 56), np.zeros(5))
    # 3 values (positions 4, 5, 6 of the season): their mean 2 is the level; positions never seen get 1
    np.testing.assert_allclose(
        profile_forecast(np.array([1.0, 2.0, 3.0]), 7, 7, 14, 56), [2, 2, 2, 2, 1, 2, 3]
    )


def _frame(y: np.ndarray, start: str = "2024-01-01", sid: str = "a") -> pd.DataFrame:
    ds = pd.date_range(start, periods=len(y), freq="D")
    return pd.DataFrame({"series_id": sid, "ds": ds, "y": y}).astype({"series_id": "string"})


def test_profile_member_forecasts_the_steps_after_the_origin_and_never_reads_later_y():
    s = _frame(np.tile(WEEK, 10))
    origin = s["ds"].iloc[55]  # position 55 % 7 = 6: the next day is position 0
    poisoned = s.assign(y=np.where(s["ds"] > origin, 1e6, s["y"]))
    a = ProfileMember("D").forecast(s, origin, 7)
    pd.testing.assert_frame_equal(a, ProfileMember("D").forecast(poisoned, origin, 7))
    assert a["ds"].tolist() == list(pd.date_range(origin + pd.Timedelta(days=1), periods=7, freq="D"))
    np.testing.assert_allclose(a["yhat"], WEEK)
    assert a["step"].tolist() == list(range(1, 8))


def test_profile_member_of_a_series_that_stopped_before_the_origin_continues_its_season():
    s = _frame(np.tile(WEEK, 8))
    origin = s["ds"].max() + pd.Timedelta(days=3)  # three days without rows: positions 0, 1, 2 passed
    a = ProfileMember("D").forecast(s, origin, 4)
    np.testing.assert_allclose(a["yhat"], WEEK[3:7])


def test_profile_member_settings_are_checked():
    with pytest.raises(ValueError, match="level_seasons and profile_seasons must be >= 1"):
        ProfileMember("D", level_seasons=0)


def test_profile_is_an_ensemble_member():
    s = pd.concat([_frame(np.tile(WEEK, 12) * (i + 1), sid=f"s{i}") for i in range(3)], ignore_index=True)
    model = EnsembleForecaster(horizon=7, step=7, members=("profile", "seasonal_naive"), n_jobs=1).fit(s)
    assert set(model.weights_) == {"profile", "seasonal_naive"}
    assert model.member_scores_["profile"]["wape"] == pytest.approx(0.0, abs=1e-9)
    pred = model.predict(7)
    np.testing.assert_allclose(pred.loc[pred["series_id"] == "s1", "yhat"], 2 * WEEK)  # 12 whole weeks


def test_profile_forecast_with_a_year_carries_last_years_ramp_shrunk_by_one_unit():
    n = 420
    y = np.full(n, 10.0)
    y[n - 364 : n - 364 + 14] = 20.0  # last year, the two weeks after the origin's date doubled
    out = profile_forecast(y, 28, 7, 14, 56, year=364)
    # steps 4..11: last year's centred week is all 20 against a level of 10 then: (20 + 1) / (10 + 1)
    np.testing.assert_allclose(out[3:11], 10.0 * 21 / 11)
    np.testing.assert_allclose(out[17:], 10.0)  # weeks last year that were not doubled: ratio 1
    # without a full year and the level window before it, no ratio: the plain profile forecast
    np.testing.assert_allclose(profile_forecast(y[-370:], 28, 7, 14, 56, year=364), np.full(28, 10.0))


def test_profile_yoy_member_reads_no_y_after_the_origin():
    s = _frame(np.r_[np.tile(WEEK, 60)] * np.linspace(1, 2, 420))
    origin = s["ds"].iloc[400]
    poisoned = s.assign(y=np.where(s["ds"] > origin, 1e6, s["y"]))
    member = ProfileMember("D", yearly=True)
    a = member.forecast(s, origin, 14)
    pd.testing.assert_frame_equal(a, ProfileMember("D", yearly=True).forecast(poisoned, origin, 14))
    assert member.name == "profile_yoy" and member.report_["series_with_last_year"] == 1
