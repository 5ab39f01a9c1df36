"""training/forecast/forecaster.py: shapes, dates, closed days, intervals, leakage, explanations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.errors import NotFittedError
from training import progress
from training.forecast.forecaster import LGBMForecaster, default_buckets, dense_buckets

SMALL = {"n_estimators": 40, "num_leaves": 15, "min_child_samples": 5, "learning_rate": 0.2}


def make_tables(n_series: int = 4, days: int = 240, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Daily series with a level per series, a weekly pattern, a promo that lifts sales by 60% and Sundays closed."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2023-01-02", periods=days, freq="D")
    rows = []
    for i in range(n_series):
        level = 100.0 * (i + 1)
        promo = ((np.arange(days) // 7) % 3 == 0).astype(int)  # one promo week in three
        dow = ds.dayofweek.to_numpy()
        y = level * (1 + 0.1 * dow) * (1 + 0.6 * promo) * rng.lognormal(0, 0.05, days)
        open_ = (dow != 6).astype(int)
        rows.append(
            pd.DataFrame(
                {
                    "series_id": f"s{i}",
                    "ds": ds,
                    "y": np.where(open_ == 1, y, 0.0),
                    "open": open_,
                    "promo": promo,
                }
            )
        )
    full = pd.concat(rows, ignore_index=True)
    series = full[["series_id", "ds", "y", "open"]].assign(
        series_id=lambda d: d["series_id"].astype("string")
    )
    covariates = full[["series_id", "ds", "promo"]].assign(
        series_id=lambda d: d["series_id"].astype("string")
    )
    return {"series": series, "covariates": covariates}


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return make_tables()


@pytest.fixture(scope="module")
def split(tables):
    s = tables["series"]
    origin = s["ds"].max() - pd.Timedelta(days=14)
    return s.loc[s["ds"] <= origin], s.loc[s["ds"] > origin], origin


@pytest.fixture(scope="module")
def fitted(tables, split) -> LGBMForecaster:
    train, _, _ = split
    return LGBMForecaster(freq="D", horizon=14, params=SMALL).fit(train, covariates=tables["covariates"])


def test_fit_reports_every_lightgbm_round_of_every_bucket_to_the_current_progress(
    tables, split, recorded_progress
):
    train, _, _ = split
    model = LGBMForecaster(
        freq="D",
        horizon=14,
        buckets=(7, 14),
        params={**SMALL, "n_estimators": 12},
        calibrate=False,
        n_seeds=2,
    )
    with progress.reporting(recorded_progress):
        model.fit(train, covariates=tables["covariates"])
    # every seed's rounds: 2 seeds x 12 rounds per bucket
    assert recorded_progress.tasks == {
        "LightGBM rounds, steps 1-7": [1] * 24 + [24],
        "LightGBM rounds, steps 8-14": [1] * 24 + [24],
    }


def test_a_clone_keeps_every_constructor_parameter():
    import inspect

    from sklearn.base import clone

    from features.forecast_config import ForecastFeatureConfig

    not_defaults = {
        "freq": "W",
        "horizon": 8,
        "levels": (50,),
        "buckets": (4, 8),
        "params": {"num_leaves": 7},
        "feature_config": ForecastFeatureConfig(freq="W", use_weather=False),
        "calibrate": "refit",
        "random_state": 3,
        "n_jobs": 1,
        "engine": "dask",
        "scheduler": "tcp://scheduler:8786",
        "holidays": "GB",
        "target_transform": "yoy",
        "n_seeds": 2,
    }
    assert set(not_defaults) == set(inspect.signature(LGBMForecaster).parameters)
    model = LGBMForecaster(**not_defaults)
    assert model.get_params() == not_defaults
    copy = clone(model)
    assert copy is not model
    assert copy.get_params() == not_defaults
    assert copy.set_params(horizon=4).horizon == 4 and model.horizon == 8


def test_default_is_one_direct_bucket_and_dense_buckets_are_dense_near_the_origin():
    assert default_buckets(42, "D") == (42,)
    assert dense_buckets(42, "D") == (7, 14, 28, 42)
    assert dense_buckets(5, "D") == (5,)
    assert dense_buckets(48, "H") == (24, 48)


def test_dense_buckets_forecast_every_step_from_their_own_booster(tables, split):
    train, test, _ = split
    model = LGBMForecaster(freq="D", horizon=14, buckets=(7, 14), params=SMALL).fit(
        train, covariates=tables["covariates"]
    )
    assert sorted(model.boosters_) == [7, 14]
    assert "y_lag_7" in model.feature_names_[7] and "y_lag_7" not in model.feature_names_[14]
    pred = model.predict(14, test)
    assert sorted(pred["step"].unique()) == list(range(1, 15))


def test_predict_before_fit_raises_not_fitted():
    with pytest.raises(NotFittedError, match="call fit"):
        LGBMForecaster().predict(7)


def test_horizon_out_of_range_is_refused(tables):
    with pytest.raises(
        ValueError, match=r"'horizon' parameter must be an int in the range \[1, 366\]. Got 0"
    ):
        LGBMForecaster(horizon=0).fit(tables["series"])


def test_forecast_has_every_series_and_the_next_horizon_dates(fitted, split):
    _, test, origin = split
    pred = fitted.predict(14, test)
    assert len(pred) == 4 * 14
    assert pred.groupby("series_id")["ds"].min().eq(origin + pd.Timedelta(days=1)).all()
    assert pred.groupby("series_id")["ds"].max().eq(origin + pd.Timedelta(days=14)).all()
    assert sorted(pred["step"].unique()) == list(range(1, 15))


def test_closed_days_forecast_exactly_zero(fitted, split):
    _, test, _ = split
    pred = fitted.predict(14, test).merge(test[["series_id", "ds", "open"]], on=["series_id", "ds"])
    closed = pred.loc[pred["open"] == 0]
    assert len(closed) == 4 * 2  # two Sundays in 14 days
    assert (closed[["yhat", "yhat_lo_80", "yhat_hi_80", "yhat_lo_95", "yhat_hi_95"]] == 0).all().all()
    assert (pred.loc[pred["open"] == 1, "yhat"] > 0).all()


def test_intervals_are_nested_and_widen_with_level(fitted, split):
    _, test, _ = split
    p = fitted.predict(14, test)
    p = p.loc[p["yhat"] > 0]
    assert (p["yhat_lo_95"] <= p["yhat_lo_80"]).all() and (p["yhat_lo_80"] <= p["yhat"]).all()
    assert (p["yhat"] <= p["yhat_hi_80"]).all() and (p["yhat_hi_80"] <= p["yhat_hi_95"]).all()
    assert ((p["yhat_hi_95"] - p["yhat_lo_95"]) > (p["yhat_hi_80"] - p["yhat_lo_80"])).mean() > 0.9


def test_forecast_is_accurate_on_learnable_data(fitted, split):
    _, test, _ = split
    p = fitted.predict(14, test).merge(test, on=["series_id", "ds"])
    p = p.loc[p["open"] == 1]
    wape = np.abs(p["yhat"] - p["y"]).sum() / p["y"].sum()
    assert wape < 0.15


def test_changing_data_after_the_origin_changes_no_forecast(tables, split):
    train, test, origin = split
    series = tables["series"]
    model = LGBMForecaster(freq="D", horizon=14, params=SMALL, calibrate=False).fit(
        train, covariates=tables["covariates"]
    )
    base = model.predict(14, series=series, origin=origin, levels=())
    perturbed = series.assign(y=np.where(series["ds"] > origin, series["y"] * 10 + 5, series["y"]))
    again = model.predict(14, series=perturbed, origin=origin, levels=())
    assert len(base) == 4 * 14
    pd.testing.assert_frame_equal(base, again)


def test_explanations_add_up_to_the_log_forecast(fitted, split):
    _, test, _ = split
    p = fitted.predict(14, test, explain=True)
    contrib = p.filter(like="contrib_").sum(axis=1) + p["base"]
    open_ = p["yhat"] > 0
    np.testing.assert_allclose(contrib[open_], np.log1p(p.loc[open_, "yhat"]), rtol=1e-6, atol=1e-6)
    assert {"contrib_promo", "contrib_calendar", "contrib_level/lags"} <= set(p.columns)


def test_promo_days_get_a_positive_promo_effect(fitted, split, tables):
    _, test, _ = split
    p = fitted.predict(14, test, explain=True).merge(tables["covariates"], on=["series_id", "ds"])
    p = p.loc[p["yhat"] > 0]
    on, off = p.loc[p["promo"] == 1, "effect_promo"].mean(), p.loc[p["promo"] == 0, "effect_promo"].mean()
    # lags that see the one-week-in-three promo cycle share the credit (SHAP splits correlated features)
    assert on > 0.05 and off < 0
    assert on - off > 0.1


def test_series_whose_history_stops_early_still_get_a_forecast(tables, split):
    train, test, origin = split
    short = train.loc[~((train["series_id"] == "s3") & (train["ds"] > origin - pd.Timedelta(days=30)))]
    model = LGBMForecaster(freq="D", horizon=14, params=SMALL, calibrate=False).fit(
        short, covariates=tables["covariates"]
    )
    pred = model.predict(14, test, levels=())
    assert len(pred.loc[pred["series_id"] == "s3"]) == 14


def test_uncalibrated_levels_are_refused(tables, split):
    train, test, _ = split
    model = LGBMForecaster(freq="D", horizon=14, params=SMALL, calibrate=False).fit(
        train, covariates=tables["covariates"]
    )
    assert "yhat" in model.predict(14, test, levels=()).columns
    with pytest.raises(ValueError, match=r"Interval level\(s\) \[80\] were not calibrated"):
        model.predict(14, test, levels=(80,))


def test_levels_of_a_history_too_short_to_calibrate_are_refused_naming_the_lengths():
    t = make_tables(n_series=2, days=40)  # 40 days < 3 x 14: no holdout of 14 days with 28 days before it
    model = LGBMForecaster(freq="D", horizon=14, params=SMALL).fit(t["series"], covariates=t["covariates"])
    assert model.calibration_report_["rows"] == 0
    future = make_tables(n_series=2, days=54)["covariates"].query("ds > '2023-02-10'")
    with pytest.raises(ValueError, match=r"skipped: 40 periods up to 2023-02-10 < 3 x 14.*shorter horizon"):
        model.predict(14, future.drop(columns="promo"), levels=(80,))


def test_weekly_series_anchored_on_wednesday():
    ds = pd.date_range("2022-01-05", periods=120, freq="W-WED")
    rng = np.random.default_rng(1)
    series = pd.DataFrame(
        {
            "series_id": pd.array(["a"] * 120, dtype="string"),
            "ds": ds,
            "y": 50 + 10 * np.sin(np.arange(120) / 8) + rng.normal(0, 1, 120),
            "open": np.int8(1),
        }
    )
    model = LGBMForecaster(freq="W", horizon=8, params=SMALL).fit(series)
    pred = model.predict(8)
    assert list(pred["ds"]) == list(pd.date_range(ds[-1] + pd.Timedelta(days=7), periods=8, freq="W-WED"))


def test_split_calibration_fits_once_before_the_holdout_and_refit_uses_all_data(tables, split):
    train, test, origin = split
    split_model = LGBMForecaster(freq="D", horizon=14, params=SMALL).fit(
        train, covariates=tables["covariates"]
    )
    refit_model = LGBMForecaster(freq="D", horizon=14, params=SMALL, calibrate="refit").fit(
        train, covariates=tables["covariates"]
    )
    assert split_model.calibration_report_["mode"] == "split"
    assert split_model.calibration_report_["origin"] == str((origin - pd.Timedelta(days=14)).date())
    rows_split = split_model.fit_reports_[14].n_rows
    rows_refit = refit_model.fit_reports_[14].n_rows
    assert rows_refit - rows_split == 4 * 14  # the 14 held-out days of the 4 series
    assert split_model.residual_quantiles_ == refit_model.residual_quantiles_
    # both forecast from the latest origin
    assert split_model.predict(14, test)["ds"].min() == refit_model.predict(14, test)["ds"].min()


def test_unknown_calibration_mode_is_refused(tables):
    with pytest.raises(ValueError, match="calibrate must be 'split', 'refit', True or False. Got 'both'"):
        LGBMForecaster(horizon=7, calibrate="both").fit(tables["series"])


def test_holidays_are_learned_and_generated_for_a_horizon_no_table_covers():
    from features.holidays import holiday_calendar

    ds = pd.date_range("2009-01-01", "2010-12-20", freq="D")
    holiday = holiday_calendar("GB", None, ds[0], ds[-1])["holiday_public"].to_numpy() == 1
    rng = np.random.default_rng(0)
    series = pd.concat(
        [
            pd.DataFrame(
                {
                    "series_id": sid,
                    "ds": ds,
                    "y": level * np.where(holiday, 0.1, 1.0) * rng.lognormal(0, 0.05, len(ds)),
                }
            )
            for sid, level in (("a", 100.0), ("b", 40.0))
        ],
        ignore_index=True,
    ).astype({"series_id": "string"})
    series["open"] = 1
    model = LGBMForecaster(freq="D", horizon=14, params=SMALL, holidays="GB").fit(series)
    assert "holiday_public_flag" in model.feature_names_[14]
    pred = model.predict(14)  # 2010-12-21 .. 2011-01-03: no covariates table was ever given
    off = pd.to_datetime(["2010-12-25", "2010-12-26", "2010-12-27", "2010-12-28", "2011-01-01", "2011-01-03"])
    on_holiday = pred["ds"].isin(off)
    assert on_holiday.sum() == 2 * 6
    ratio = pred.loc[on_holiday, "yhat"].mean() / pred.loc[~on_holiday, "yhat"].mean()
    plain = LGBMForecaster(freq="D", horizon=14, params=SMALL).fit(series).predict(14)
    plain_ratio = plain.loc[on_holiday, "yhat"].mean() / plain.loc[~on_holiday, "yhat"].mean()
    assert ratio < 0.2 and plain_ratio > 0.4  # 0.10 vs 0.57: last year's dates alone explain it far less


def _trending(n_series: int = 3, days: int = 200) -> pd.DataFrame:
    """Series that grow 1% a day: the last weeks are above every level the history shows."""
    rng = np.random.default_rng(1)
    ds = pd.date_range("2023-01-02", periods=days, freq="D")
    parts = []
    for i in range(n_series):
        y = 50 * (i + 1) * np.exp(0.01 * np.arange(days)) * (1 + 0.2 * (ds.dayofweek == 5))
        y = y * rng.lognormal(0, 0.03, days)
        parts.append(pd.DataFrame({"series_id": f"t{i}", "ds": ds, "y": y, "open": 1}))
    return pd.concat(parts, ignore_index=True).astype({"series_id": "string"})


def test_level_transform_extrapolates_a_trend_that_log_cannot():
    s = _trending()
    origin = s["ds"].max() - pd.Timedelta(days=28)
    train, test = s.loc[s["ds"] <= origin], s.loc[s["ds"] > origin]
    wape = {}
    for name in ("log", "level"):
        model = LGBMForecaster(freq="D", horizon=28, params=SMALL, target_transform=name).fit(train)
        p = model.predict(28, test).merge(test, on=["series_id", "ds"])
        wape[name] = float((p["yhat"] - p["y"]).abs().sum() / p["y"].sum())
        assert model.target_transform_ == name
    # log1p trees cannot forecast above the highest level seen in training: they stay ~25% under the ramp
    assert wape["log"] > 0.15
    assert wape["level"] < 0.5 * wape["log"]


@pytest.mark.parametrize("name", ["level", "yoy"])
def test_transformed_forecasts_use_no_data_after_the_origin_and_explanations_add_up(tables, split, name):
    train, _, origin = split
    series = tables["series"]
    model = LGBMForecaster(freq="D", horizon=14, params=SMALL, target_transform=name).fit(
        train, covariates=tables["covariates"]
    )
    base = model.predict(14, series=series, origin=origin, explain=True)
    perturbed = series.assign(y=np.where(series["ds"] > origin, series["y"] * 10 + 5, series["y"]))
    pd.testing.assert_frame_equal(base, model.predict(14, series=perturbed, origin=origin, explain=True))
    open_ = base["yhat"] > 0
    total = base.filter(like="contrib_").sum(axis=1) + base["base"]
    np.testing.assert_allclose(total[open_], np.log1p(base.loc[open_, "yhat"]), rtol=1e-6, atol=1e-6)


def test_auto_transform_keeps_the_candidate_with_the_lowest_holdout_wape():
    s = _trending()
    model = LGBMForecaster(freq="D", horizon=14, params=SMALL, target_transform="auto").fit(s)
    report = model.transform_report_
    assert set(report["holdout_wape"]) == {"log", "level"}  # no last year in 200 days: no "yoy"
    assert report["chosen"] == min(report["holdout_wape"], key=report["holdout_wape"].get)
    assert model.target_transform_ == report["chosen"] == "level"
    assert model.calibration_report_["rows"] == 3 * 14 and model.residual_quantiles_


def test_unknown_target_transform_is_refused(tables):
    with pytest.raises(ValueError, match="target_transform must be one of"):
        LGBMForecaster(freq="D", horizon=14, target_transform="boxcox").fit(tables["series"])


def test_n_seeds_averages_single_seed_models_in_log_space(tables, split):
    train, test, _ = split

    def fit(**kw):
        model = LGBMForecaster(freq="D", horizon=14, params=SMALL, levels=(), calibrate=False, **kw)
        return model.fit(train, covariates=tables["covariates"])

    both = fit(n_seeds=2).predict(14, test)
    one, other = fit(n_seeds=1).predict(14, test), fit(n_seeds=1, random_state=1).predict(14, test)
    expected = np.expm1((np.log1p(one["yhat"]) + np.log1p(other["yhat"])) / 2)
    np.testing.assert_allclose(both["yhat"], expected, rtol=1e-9)
    assert not np.allclose(one["yhat"], other["yhat"])


def test_n_seeds_must_be_a_positive_int(tables):
    with pytest.raises(ValueError, match="n_seeds must be a positive int. Got 0"):
        LGBMForecaster(freq="D", horizon=14, n_seeds=0).fit(tables["series"])
