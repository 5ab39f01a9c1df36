import numpy as np
import pandas as pd
import pytest

from features.errors import NotFittedError
from training.forecast.baselines import (
    SeasonalNaive,
    StatsModelsETS,
    StatsModelsSARIMAX,
    season_for,
)


def _series(values, series="a", start="2024-01-01", freq="D", open=None, **extra):
    n = len(values)
    out = pd.DataFrame(
        {
            "series_id": pd.array([series] * n, dtype="string"),
            "ds": pd.date_range(start, periods=n, freq=freq),
            "y": np.asarray(values, dtype="float64"),
            "open": np.asarray([1] * n if open is None else open, dtype="int8"),
        }
    )
    for k, v in extra.items():
        out[k] = v
    return out


WEEK = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0]


# ------------------------------------------------------------------------------------------ frequencies
def test_default_season():
    assert (season_for("D"), season_for("h"), season_for("W-MON")) == (7, 24, 52)


def test_unknown_frequency_is_refused_with_the_supported_ones():
    with pytest.raises(ValueError, match="Unsupported frequency 'fortnightly'"):
        SeasonalNaive("fortnightly").fit(_series(list(range(1, 15))))


# ------------------------------------------------------------------------------------------ seasonal naive
def test_seasonal_naive_repeats_the_last_season():
    train = _series(list(range(1, 15)))  # two weeks: 1..14
    pred = SeasonalNaive("D").fit(train).predict(7)
    assert pred["yhat"].tolist() == [8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0]
    assert pred["ds"].tolist() == list(pd.date_range("2024-01-15", periods=7, freq="D"))
    assert list(pred.columns) == [
        "series_id",
        "ds",
        "yhat",
        "yhat_lo_80",
        "yhat_hi_80",
        "yhat_lo_95",
        "yhat_hi_95",
    ]


def test_seasonal_naive_forecasts_exactly_zero_on_closed_periods():
    train = _series(list(range(1, 15)))
    future = _series([np.nan] * 7, start="2024-01-15", open=[1, 1, 0, 1, 1, 1, 1]).drop(columns="y")
    pred = SeasonalNaive("D").fit(train).predict(7, future)
    closed = pred.iloc[2]
    assert closed[["yhat", "yhat_lo_80", "yhat_hi_80", "yhat_lo_95", "yhat_hi_95"]].tolist() == [0.0] * 5
    assert pred["yhat"].iloc[3] == 11.0


def test_seasonal_naive_repeats_the_last_open_value_when_the_last_season_was_closed():
    # day 8 (same weekday as day 1 and day 15) is closed: the forecast for day 15 repeats day 1
    train = _series(list(range(1, 15)), open=[1] * 7 + [0] + [1] * 6)
    train.loc[7, "y"] = 0.0
    pred = SeasonalNaive("D").fit(train).predict(7)
    assert pred["yhat"].tolist() == [1.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0]


def test_seasonal_naive_ignores_missing_actuals():
    train = _series([*range(1, 14), np.nan])
    pred = SeasonalNaive("D").fit(train).predict(7)
    assert pred["yhat"].iloc[-1] == 7.0


def test_seasonal_naive_hourly_repeats_the_last_day():
    values = list(range(48))
    pred = SeasonalNaive("h").fit(_series(values, freq="h")).predict(24)
    assert pred["yhat"].tolist() == [float(v) for v in range(24, 48)]
    assert pred["ds"].iloc[0] == pd.Timestamp("2024-01-03 00:00")


def test_seasonal_naive_weekly_repeats_the_value_52_weeks_earlier():
    pred = SeasonalNaive("W-SUN").fit(_series(list(range(104)), start="2022-01-02", freq="W-SUN")).predict(2)
    assert pred["yhat"].tolist() == [52.0, 53.0]


def _three_weeks():
    week2 = [v + 1 for v in WEEK]
    week3 = [v + d for v, d in zip(week2, [-2, -1, 0, 1, 2, 3, 4], strict=True)]
    residuals = [1.0] * 7 + [-2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0]
    return _series(WEEK + week2 + week3), week3, residuals


def test_seasonal_naive_intervals_are_empirical_residual_quantiles_widened_by_sqrt_of_seasons_ahead():
    train, week3, residuals = _three_weeks()
    pred = SeasonalNaive("D").fit(train).predict(14, levels=(80,))
    q10, q90 = np.quantile(residuals, [0.1, 0.9])
    first, second = pred.iloc[0], pred.iloc[7]  # 1st and 2nd season ahead, both repeat week3[0]
    assert first["yhat"] == second["yhat"] == week3[0]
    assert first["yhat_lo_80"] == pytest.approx(week3[0] + q10)
    assert first["yhat_hi_80"] == pytest.approx(week3[0] + q90)
    assert second["yhat_lo_80"] == pytest.approx(week3[0] + q10 * np.sqrt(2))
    assert second["yhat_hi_80"] == pytest.approx(week3[0] + q90 * np.sqrt(2))


def test_seasonal_naive_intervals_widen_with_the_level():
    train, _, _ = _three_weeks()
    pred = SeasonalNaive("D").fit(train).predict(7, levels=(50, 80, 95))
    w50 = pred["yhat_hi_50"] - pred["yhat_lo_50"]
    w80 = pred["yhat_hi_80"] - pred["yhat_lo_80"]
    w95 = pred["yhat_hi_95"] - pred["yhat_lo_95"]
    assert (w50 < w80).all() and (w80 < w95).all()
    assert (pred["yhat_lo_95"] <= pred["yhat_lo_80"]).all() and (
        pred["yhat_hi_80"] <= pred["yhat_hi_95"]
    ).all()


def test_short_series_borrow_pooled_relative_residuals_and_are_counted():
    train, _, _ = _three_weeks()
    short = _series([5.0] * 7 + [6.0] * 2, series="short")  # 2 residuals only
    model = SeasonalNaive("D", min_residuals=10).fit(pd.concat([train, short], ignore_index=True))
    assert model.n_series_pooled_intervals_ == 1
    pred = model.predict(7, levels=(80,)).set_index("series_id")
    width = (pred["yhat_hi_80"] - pred["yhat_lo_80"]).loc["short"]
    assert (width > 0).all()


def test_predict_before_fit_raises_not_fitted():
    with pytest.raises(NotFittedError, match="SeasonalNaive is not fitted yet"):
        SeasonalNaive("D").predict(7)


def test_future_with_series_the_model_never_saw_is_refused():
    model = SeasonalNaive("D").fit(_series(list(range(14))))
    future = _series([np.nan], series="new", start="2024-01-15").drop(columns="y")
    with pytest.raises(ValueError, match="1 series the model was not fitted on, e.g. \\['new'\\]"):
        model.predict(1, future)


def test_future_rows_inside_the_training_period_are_refused():
    model = SeasonalNaive("D").fit(_series(list(range(14))))
    future = _series([np.nan], start="2024-01-10").drop(columns="y")
    with pytest.raises(ValueError, match="at or before the series' last training ds"):
        model.predict(1, future)


def test_duplicate_training_rows_are_refused():
    train = pd.concat([_series([1.0, 2.0]), _series([1.0])], ignore_index=True)
    with pytest.raises(ValueError, match="1 duplicate \\(series_id, ds\\) rows"):
        SeasonalNaive("D").fit(train)


def test_update_takes_newer_history_without_refitting_intervals():
    model = SeasonalNaive("D").fit(_series(list(range(1, 15))))
    resid_before = model.residuals_.copy()
    model.update(_series(list(range(1, 22))))
    assert model.predict(1)["yhat"].tolist() == [15.0]
    pd.testing.assert_frame_equal(model.residuals_, resid_before)


# ------------------------------------------------------------------------------------------ statsmodels
def _seasonal(n_weeks, series="a", noise=0.5, seed=0):
    rng = np.random.default_rng(seed)
    values = np.tile(WEEK, n_weeks) + rng.normal(0, noise, 7 * n_weeks)
    return _series(values, series=series)


def test_ets_follows_a_clean_weekly_pattern_and_zeroes_closed_days():
    train = _seasonal(8)
    future = _series(
        [np.nan] * 7, start=train["ds"].max() + pd.Timedelta(days=1), open=[1, 1, 1, 1, 1, 1, 0]
    ).drop(columns="y")
    model = StatsModelsETS("D").fit(train)
    pred = model.predict(7, future)
    assert model.model_counts_ == {"damped_trend_seasonal": 1}
    expected = [*WEEK[:6], 0.0]
    assert pred["yhat"].to_numpy() == pytest.approx(expected, abs=2.0)
    assert pred["yhat"].iloc[6] == 0.0
    assert (pred["yhat_lo_95"] <= pred["yhat_lo_80"]).all() and (pred["yhat_lo_80"] <= pred["yhat"]).all()


def test_ets_falls_back_to_simpler_models_on_short_series_and_counts_them():
    frame = pd.concat(
        [_series([5.0, 6.0, 7.0, 6.0, 5.0], series="short"), _series([3.0, 4.0], series="tiny")]
    )
    model = StatsModelsETS("D").fit(frame)
    assert model.model_counts_ == {"level": 1, "naive": 1}
    assert set(model.fit_errors_) == {"short", "tiny"}
    pred = model.predict(2).set_index("series_id")
    assert pred.loc["tiny", "yhat"].tolist() == [4.0, 4.0]


def test_ets_interpolates_closed_days_for_fitting_and_counts_them():
    train = _seasonal(6)
    sundays = train["ds"].dt.dayofweek == 6
    train.loc[sundays, ["y", "open"]] = [0.0, 0]
    model = StatsModelsETS("D").fit(train)
    assert model.filled_ == {"values_interpolated": int(sundays.sum())}


def test_sarimax_uses_exogenous_covariates_from_future():
    rng = np.random.default_rng(1)
    promo = np.tile([0, 0, 1, 1, 0], 12)
    train = _series(50 + 20 * promo + rng.normal(0, 1, 60), promo=promo)
    future = _series([np.nan] * 2, start="2024-03-01", promo=[0, 1]).drop(columns="y")
    model = StatsModelsSARIMAX("D", order=(1, 0, 0), seasonal_order=(0, 0, 0), exog=["promo"]).fit(train)
    pred = model.predict(2, future)
    assert pred["yhat"].iloc[1] - pred["yhat"].iloc[0] == pytest.approx(20.0, abs=2.0)


def test_sarimax_with_exogenous_columns_needs_future():
    train = _series(np.arange(30.0), promo=np.zeros(30))
    model = StatsModelsSARIMAX("D", order=(1, 0, 0), seasonal_order=(0, 0, 0), exog=["promo"]).fit(train)
    with pytest.raises(ValueError, match="pass future with their values"):
        model.predict(3)


def test_statsmodels_baselines_raise_not_fitted_before_fit():
    with pytest.raises(NotFittedError, match="StatsModelsETS is not fitted yet"):
        StatsModelsETS("D").predict(3)


@pytest.mark.slow
def test_ets_parallel_fits_match_sequential_fits():
    frame = pd.concat([_seasonal(4, series="a", seed=1), _seasonal(4, series="b", seed=2)], ignore_index=True)
    seq = StatsModelsETS("D", n_jobs=1).fit(frame).predict(7)
    par = StatsModelsETS("D", n_jobs=2).fit(frame).predict(7)
    pd.testing.assert_frame_equal(seq, par)


# ------------------------------------------------------------------------------------------ spec fallback
def test_first_that_fits_names_every_skipped_and_failed_spec_and_falls_back_to_naive():
    from training.forecast.baselines import _first_that_fits

    y = np.array([1.0, 2.0, np.nan, 4.0])

    def fit(arg):
        if arg == "boom":
            raise RuntimeError("singular matrix")
        return f"fitted {arg}"

    chosen = _first_that_fits(
        y, {"big": (False, "x"), "bad": (True, "boom"), "ok": (True, "o")}, fit, "too short"
    )
    assert (chosen.spec, chosen.result) == ("ok", "fitted o")
    assert chosen.error == "big: too short; bad: RuntimeError: singular matrix"

    fallback = _first_that_fits(y, {"big": (False, "x"), "bad": (True, "boom")}, fit, "too short")
    assert (fallback.spec, fallback.last, fallback.sigma) == (
        "naive",
        4.0,
        0.5,
    )  # std of the steps 1, 2 between observed values
    assert fallback.error == "big: too short; bad: RuntimeError: singular matrix"
