"""The calendar correction: day kinds from the covariates, biases learned per kind out of sample, applied."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.forecast.daykinds import day_kinds, event_holidays, fit_calendar_correction, sparse_weekdays

DAYS = pd.date_range("2024-03-01", periods=28, freq="D")


def _covariates() -> pd.DataFrame:
    """Two stores over 28 days: a public holiday on day 10 (global row), a school holiday on days 0-13 (a
    season: half the rows), promo on days 14-20 for store "a" only."""
    rows = []
    for sid in ("a", "b"):
        for i, d in enumerate(DAYS):
            rows.append(
                {
                    "series_id": sid,
                    "ds": d,
                    "promo": int(sid == "a" and 14 <= i <= 20),
                    "state_holiday": "a" if i == 10 else "0",
                    "school_holiday": int(i <= 13),
                }
            )
    return pd.DataFrame(rows)


def _keys(days=DAYS) -> pd.DataFrame:
    return pd.DataFrame([(s, d) for s in ("a", "b") for d in days], columns=["series_id", "ds"])


def test_day_kinds_name_holidays_their_neighbours_and_promo_combinations():
    cov = _covariates()
    assert event_holidays(cov) == ("holiday_state_flag",)  # school holidays cover half the rows: a season
    keys = _keys()
    kinds = pd.Series(day_kinds(keys, cov, "D"), index=pd.MultiIndex.from_frame(keys))
    assert kinds[("a", DAYS[10])] == "holiday_state"
    assert kinds[("b", DAYS[9])] == "before_holiday_state"
    assert kinds[("b", DAYS[11])] == "after_holiday_state"
    assert kinds[("a", DAYS[15])] == "promo=promo"
    assert kinds[("b", DAYS[15])] == "promo=none"
    assert kinds[("a", DAYS[2])] == "promo=none"  # a school-holiday day is not a kind of its own
    assert day_kinds(keys, None, "D").tolist() == ["promo=none"] * len(keys)


def test_the_correction_learns_a_kinds_relative_bias_not_the_windows_level():
    """Two windows; the forecasts are 10% low everywhere in window 0 and 20% low in window 1 (drift) and on
    promo days a further x1.25 too high: only the promo bias relative to the other days is learned."""
    cov = _covariates()
    keys = _keys()
    kinds = day_kinds(keys, cov, "D")
    parts = []
    for window, level in ((0, 0.9), (1, 0.8)):
        y = np.full(len(keys), 100.0)
        yhat = y * level * np.where(kinds == "promo=promo", 1.25, 1.0)
        parts.append(keys.assign(window=window, y=y, yhat=yhat, open=1))
    corr = fit_calendar_correction(pd.concat(parts), cov, "D", prior_days=0.0)
    promo_days, other = 7, len(keys) - 7
    # each kind's log(sum y / sum yhat) minus the window's; the drift (0.9, 0.8) cancels
    window_level = np.log((promo_days + other) / (promo_days * 1.25 + other))
    assert corr.factors["promo=promo"] == pytest.approx(-np.log(1.25) - window_level, abs=1e-9)
    assert corr.factors["promo=none"] == pytest.approx(-window_level, abs=1e-9)
    assert corr.factors["promo=promo"] == pytest.approx(-0.1924, abs=1e-4)  # log(1/1.25) + log(57.75/56)
    assert corr.days["promo=promo"] == 7 and corr.holidays == ("holiday_state_flag",)
    # shrinkage: 7 promo days with prior 7 halve the correction
    half = fit_calendar_correction(pd.concat(parts), cov, "D", prior_days=7.0)
    assert half.factors["promo=promo"] == pytest.approx(corr.factors["promo=promo"] / 2, abs=1e-9)


def test_apply_multiplies_forecast_and_interval_and_keeps_zeros():
    cov = _covariates()
    keys = _keys()
    kinds = day_kinds(keys, cov, "D")
    bt = keys.assign(window=0, y=100.0, yhat=np.where(kinds == "promo=promo", 125.0, 100.0), open=1)
    corr = fit_calendar_correction(bt, cov, "D", prior_days=0.0)
    pred = pd.DataFrame(
        {
            "series_id": ["a", "a", "b"],
            "ds": [DAYS[15], DAYS[3], DAYS[15]],
            "yhat": [125.0, 100.0, 0.0],
            "yhat_lo_80": [100.0, 80.0, 0.0],
            "yhat_hi_80": [150.0, 120.0, 0.0],
        }
    )
    out = corr.apply(pred, cov)
    m = np.exp(corr.factors["promo=promo"])
    assert out.loc[0, ["yhat", "yhat_lo_80", "yhat_hi_80"]].tolist() == pytest.approx(
        [125 * m, 100 * m, 150 * m]
    )
    assert out.loc[1, "yhat"] == pytest.approx(100 * np.exp(corr.factors["promo=none"]))
    assert out.loc[2, ["yhat", "yhat_lo_80", "yhat_hi_80"]].tolist() == [0.0, 0.0, 0.0]
    assert pred.loc[0, "yhat"] == 125.0  # the input is not modified
    # the promo rows are the over-forecast kind: corrected down, and the other rows up, by the same log mass
    assert m < 1 < np.exp(corr.factors["promo=none"])


def test_closed_rows_unknown_y_and_no_covariates_learn_nothing():
    cov = _covariates()
    keys = _keys()
    bt = keys.assign(window=0, y=np.nan, yhat=100.0, open=1)
    assert fit_calendar_correction(bt, cov, "D").factors == {}
    closed = keys.assign(window=0, y=0.0, yhat=100.0, open=0)
    assert fit_calendar_correction(closed, cov, "D").factors == {}
    corr = fit_calendar_correction(keys.assign(window=0, y=90.0, yhat=100.0), None, "D")
    assert corr.factors == {}
    assert corr.apply(keys.assign(yhat=5.0), None)["yhat"].tolist() == [5.0] * len(keys)
    with pytest.raises(ValueError, match="prior_days"):
        fit_calendar_correction(bt, cov, "D", prior_days=-1)


def test_a_days_kind_reads_the_calendar_one_day_around_it_only():
    """Leakage: a row's kind (and so its correction) depends on the known-in-advance calendar at ds - 1 .. ds + 1
    only; a holiday two or more days later changes nothing, and y is never read."""
    cov = _covariates()
    keys = _keys(DAYS[:9])
    kinds = day_kinds(keys, cov, "D", ("holiday_state_flag",))
    moved = cov.assign(
        state_holiday=np.where(cov["ds"] == DAYS[11], "a", "0")
    )  # the holiday moves a day later
    assert (day_kinds(keys, moved, "D", ("holiday_state_flag",)) == kinds).all()
    assert set(kinds[keys["ds"] == DAYS[8]]) == {"promo=none"}
    bt = _keys(DAYS[:14]).assign(window=0, y=100.0, open=1)
    bt["yhat"] = np.where(bt["ds"] == DAYS[10], 80.0, 100.0)
    corr = fit_calendar_correction(bt, cov, "D")
    assert set(corr.factors) == {"holiday_state", "before_holiday_state", "after_holiday_state", "promo=none"}
    assert corr.factors["holiday_state"] > 0 > corr.factors["promo=none"]  # the holiday was forecast 20% low


def _sunday_trading(n_stores: int = 10, open_on_sunday: int = 1) -> pd.DataFrame:
    """``n_stores`` over DAYS (4 weeks from a Friday); on Sundays only the first ``open_on_sunday`` open."""
    keys = pd.DataFrame([(f"s{i}", d) for i in range(n_stores) for d in DAYS], columns=["series_id", "ds"])
    sunday = keys["ds"].dt.dayofweek == 6
    keys["open"] = np.where(sunday & (keys["series_id"].str[1:].astype(int) >= open_on_sunday), 0, 1)
    return keys


def test_a_weekday_when_most_series_close_is_a_kind_of_its_own():
    """Sunday trading: 1 of 10 stores opens on Sundays and the model forecasts it 10% low there. The promo
    kinds would average that away (1 Sunday row in 60 of the no-promo rows); as its own kind it is learned,
    promo or not, and applied to later Sundays only."""
    keys = _sunday_trading()
    cov = keys[["series_id", "ds"]].assign(
        promo=(keys["ds"].dt.dayofweek == 6).astype(int)
    )  # promo on Sundays too
    assert sparse_weekdays(keys.assign(y=1.0), "D") == (6,)
    sunday_open = (keys["ds"].dt.dayofweek == 6) & (keys["open"] == 1)
    bt = keys.assign(window=0, y=np.where(keys["open"] == 1, 100.0, 0.0))
    bt["yhat"] = np.where(sunday_open, 90.0, bt["y"])
    corr = fit_calendar_correction(bt, cov, "D", prior_days=0.0)
    assert corr.weekdays == (6,) and set(corr.factors) == {"weekday=Sun", "promo=none"}
    level = np.log(bt["y"].sum() / bt["yhat"].sum())
    assert corr.factors["weekday=Sun"] == pytest.approx(np.log(100 / 90) - level, abs=1e-9)
    assert corr.days["weekday=Sun"] == 4 and corr.to_dict()["calendar.weekday.Sun"] == pytest.approx(
        100 / 90 * 24_360 / 24_400 - 1  # 244 open rows: 240 exact, 4 Sunday rows 90 for 100
    )
    later = pd.DataFrame(
        {"series_id": ["s0", "s0"], "ds": pd.to_datetime(["2024-04-07", "2024-04-08"]), "yhat": 90.0}
    )
    out = corr.apply(later, cov)  # a Sunday and a Monday past the covariates: the weekday needs no calendar
    assert out["yhat"].tolist() == pytest.approx(
        [90 * np.exp(corr.factors["weekday=Sun"]), 90 * np.exp(-level)]
    )


def test_sparse_weekdays_need_most_series_closed_and_a_daily_grid():
    every_day = _sunday_trading(open_on_sunday=10)
    assert sparse_weekdays(every_day, "D") == ()
    assert sparse_weekdays(_sunday_trading(open_on_sunday=5), "D") == (6,)  # 5 of 10 open: half, sparse
    assert sparse_weekdays(_sunday_trading(open_on_sunday=6), "D") == ()
    # no open column: a day with y > 0 is open (an order log closed on Saturdays)
    log = every_day.drop(columns="open").assign(y=np.where(every_day["ds"].dt.dayofweek == 5, 0.0, 3.0))
    assert sparse_weekdays(log, "D") == (5,)
    assert sparse_weekdays(log, "W") == () and sparse_weekdays(log.iloc[:0], "D") == ()


def test_metric_names_are_mlflow_safe():
    cov = _covariates().assign(promo2=lambda d: d["promo"])
    keys = _keys()
    bt = keys.assign(window=0, y=100.0, yhat=90.0, open=1)
    names = fit_calendar_correction(bt, cov, "D").to_dict()
    assert "calendar.promo.promo2_and_promo" in names
    assert all(set(n) <= set("abcdefghijklmnopqrstuvwxyz0123456789_.") for n in names)


def test_the_forecaster_applies_what_it_learned_and_explanations_still_add_up():
    """LGBMForecaster.correct_from: promo days over-forecast by 25% in the (here hand-made) backtest are
    lowered in every later forecast; the day_kind family carries the change, so base + contributions is still
    log1p(yhat); closed days stay 0."""
    from training.forecast.forecaster import LGBMForecaster

    rng = np.random.default_rng(0)
    ds = pd.date_range("2023-01-02", periods=200, freq="D")
    rows = []
    for i in range(3):
        promo = ((np.arange(len(ds)) // 7) % 3 == 0).astype(int)
        open_ = (ds.dayofweek != 6).astype(int)
        y = 100.0 * (i + 1) * (1 + 0.5 * promo) * rng.lognormal(0, 0.05, len(ds)) * open_
        rows.append(pd.DataFrame({"series_id": f"s{i}", "ds": ds, "y": y, "open": open_, "promo": promo}))
    full = pd.concat(rows, ignore_index=True)
    series, cov = full[["series_id", "ds", "y", "open"]], full[["series_id", "ds", "promo"]]
    train, test = series.loc[series["ds"] <= ds[-15]], series.loc[series["ds"] > ds[-15]]
    small = {"n_estimators": 30, "num_leaves": 7, "min_child_samples": 5}
    model = LGBMForecaster(freq="D", horizon=14, params=small, n_seeds=1).fit(train, covariates=cov)
    plain = model.predict(14, test, explain=True)
    bt = train.loc[train["ds"] > ds[-60]].merge(cov, on=["series_id", "ds"]).assign(window=0)
    bt["yhat"] = bt["y"] * np.where(bt["promo"] == 1, 1.25, 1.0)
    model.correct_from(bt)
    factors = model.calendar_correction_.factors
    assert (
        set(factors) == {"promo=promo", "promo=none"} and factors["promo=promo"] < 0 < factors["promo=none"]
    )
    fixed = model.predict(14, test, explain=True).merge(cov, on=["series_id", "ds"])
    ratio = fixed["yhat"].to_numpy() / plain["yhat"].where(plain["yhat"] > 0).to_numpy()
    promo, open_ = fixed["promo"] == 1, fixed["yhat"] > 0
    np.testing.assert_allclose(ratio[promo & open_], np.exp(factors["promo=promo"]))
    np.testing.assert_allclose(ratio[~promo & open_], np.exp(factors["promo=none"]))
    assert (fixed.loc[~open_, "yhat"] == 0).all() and (~open_).any()
    total = fixed.filter(like="contrib_").sum(axis=1) + fixed["base"]
    np.testing.assert_allclose(total[open_], np.log1p(fixed.loc[open_, "yhat"]), rtol=1e-6, atol=1e-6)
    assert "day_kind" in model.explain_columns() and "contrib_day_kind" in fixed.columns
