"""features/forecast_frame.py: the regular grid, training and future frames, report, families."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from features.errors import DataValidationError
from features.forecast_config import ForecastFeatureConfig
from features.forecast_frame import (
    FEATURE_FAMILIES,
    build_future_frame,
    build_training_frame,
    feature_columns,
    feature_family,
)
from features.validation import validate

SMALL = {"lags": (1, 2, 7), "rolling_windows": (3, 7), "seasonal_windows": ((7, 2),)}


def _series(rows: list[tuple[str, str, float | None, int]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["series_id", "ds", "y", "open"])
    return validate(df, "series")[0]


def _daily(series_ids=("a", "b", "c"), n: int = 70, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Three stores, closed on Sundays, store c misses a week; global and per-store covariates, weather, static."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2024-01-01", periods=n)
    parts = []
    for i, sid in enumerate(series_ids):
        y = rng.gamma(5.0, 20.0 * (i + 1), n).round(0)
        is_open = (ds.dayofweek != 6).astype(int)
        parts.append(
            pd.DataFrame({"series_id": sid, "ds": ds, "y": np.where(is_open == 1, y, 0.0), "open": is_open})
        )
    series = pd.concat(parts, ignore_index=True)
    series = series.loc[~((series["series_id"] == "c") & series["ds"].between("2024-01-20", "2024-01-26"))]
    cov_days = pd.date_range("2023-12-01", periods=n + 60)  # known well before and after the history
    glob = pd.DataFrame(
        {
            "ds": cov_days,
            "holiday": (cov_days.day == 1).astype(int),
            "discount": (cov_days.dayofweek == 4) * 0.1,
        }
    )
    own = pd.concat(
        [
            pd.DataFrame(
                {
                    "series_id": sid,
                    "ds": cov_days,
                    "promo": ((cov_days.dayofyear // 7 + k) % 3 == 0).astype(int),
                }
            )
            for k, sid in enumerate(series_ids)
        ],
        ignore_index=True,
    )
    covariates = pd.concat([glob, own], ignore_index=True)
    weather = pd.concat(
        [
            pd.DataFrame(
                {
                    "region": r,
                    "ds": pd.date_range("2023-12-01", periods=n + 40),
                    "temp_mean": rng.normal(5, 4, n + 40).round(1),
                    "temp_max": rng.normal(9, 5, n + 40).round(1),
                    "precip_mm": rng.gamma(0.8, 2.0, n + 40).round(1),
                }
            )
            for r in ("north", "south")
        ],
        ignore_index=True,
    )
    static = pd.DataFrame(
        {
            "series_id": list(series_ids),
            "region": ["north", "south", "north"][: len(series_ids)],
            "store_type": ["x", "y", "x"][: len(series_ids)],
            "size_m2": [100.0, 250.0, 80.0][: len(series_ids)],
        }
    )
    return {
        "series": validate(series, "series")[0],
        "covariates": validate(covariates, "covariates")[0],
        "weather": validate(weather, "weather")[0],
        "static": validate(static, "static")[0],
    }


# ------------------------------------------------------------------------------------------------ training frame


def test_gap_rows_are_inserted_with_missing_y_and_counted():
    s = _series([("a", "2024-01-01", 1.0, 1), ("a", "2024-01-04", 4.0, 1), ("b", "2024-01-01", 5.0, 1)])
    frame, report = build_training_frame(s, config=ForecastFeatureConfig(**SMALL))
    a = frame[frame["series_id"] == "a"]
    assert a["ds"].dt.day.tolist() == [1, 2, 3, 4]
    assert a["y"].isna().tolist() == [False, True, True, False]
    assert a["open"].tolist() == [1, 1, 1, 1]
    assert report.gap_rows_inserted == 2
    assert report.counts["rows"] == 5


def test_frame_starts_with_ids_target_and_open_then_features():
    data = _daily()
    frame, report = build_training_frame(**data, config=ForecastFeatureConfig(**SMALL))
    assert list(frame.columns[:4]) == ["series_id", "ds", "y", "open"]
    assert isinstance(frame["series_id"].dtype, pd.CategoricalDtype)
    assert report.feature_names == feature_columns(frame) == ["series_id", *frame.columns[4:]]
    families = {feature_family(n) for n in report.feature_names}
    assert families == set(FEATURE_FAMILIES)
    assert isinstance(frame["static_store_type"].dtype, pd.CategoricalDtype)


def test_closed_rows_are_kept_counted_and_skipped_by_y_features():
    s = _series(
        [
            ("a", "2024-01-01", 10.0, 1),
            ("a", "2024-01-02", 0.0, 0),
            ("a", "2024-01-03", 30.0, 1),
            ("a", "2024-01-04", 20.0, 1),
        ]
    )
    frame, report = build_training_frame(
        s,
        config=ForecastFeatureConfig(
            lags=(1,), rolling_windows=(3,), rolling_stats=("mean",), seasonal_windows=()
        ),
    )
    assert report.closed_rows == 1
    assert frame["open"].tolist() == [1, 0, 1, 1]
    assert math.isnan(frame["y_lag_1"].iloc[2])  # yesterday was closed: missing, not 0
    assert frame["y_rolling_mean_3_lag_1"].iloc[3] == pytest.approx(20.0)  # (10 + 30) / 2


def test_promo_until_end_at_the_last_history_day_reads_covariates_known_beyond_it():
    s = _series([("a", f"2024-01-0{d}", float(d), 1) for d in range(1, 5)])
    cov = validate(
        pd.DataFrame({"ds": pd.date_range("2024-01-01", periods=8), "promo": [0, 0, 0, 1, 1, 1, 0, 0]}),
        "covariates",
    )[0]
    frame, _ = build_training_frame(s, covariates=cov, config=ForecastFeatureConfig(**SMALL))
    assert len(frame) == 4  # the look-ahead rows are never output
    assert frame["promo_days_until_end"].tolist()[-1] == 2
    assert frame["promo_run_length"].tolist()[-1] == 3


def test_training_frame_features_never_use_values_after_cutoff():
    data = _daily()
    cfg = ForecastFeatureConfig(rolling_stats=("mean", "std", "max"), **SMALL)
    base, _ = build_training_frame(**data, config=cfg)
    cutoff = pd.Timestamp("2024-02-10")
    changed = {k: v.copy() for k, v in data.items()}
    late = changed["series"]["ds"] > cutoff
    changed["series"].loc[late, "y"] = changed["series"].loc[late, "y"] * 3 + 500
    wlate = changed["weather"]["ds"] > cutoff
    changed["weather"].loc[wlate, ["temp_mean", "temp_max", "precip_mm"]] = 40.0
    out, _ = build_training_frame(**changed, config=cfg)
    upto = base["ds"] <= cutoff
    cols = [c for c in base.columns if c != "y"]
    pd.testing.assert_frame_equal(out.loc[upto, cols], base.loc[upto, cols], check_exact=True)
    assert not out.loc[~upto, "y_lag_1"].equals(base.loc[~upto, "y_lag_1"])


# ------------------------------------------------------------------------------------------------ future frame


def test_future_frame_has_horizon_rows_for_every_series_even_if_history_stops_early():
    s = _series(
        [
            ("a", "2024-01-01", 1.0, 1),
            ("a", "2024-01-02", 2.0, 1),
            ("a", "2024-01-03", 3.0, 1),
            ("b", "2024-01-01", 10.0, 1),
        ]
    )
    frame, report = build_future_frame(s, 2, ForecastFeatureConfig(**SMALL))
    assert frame[["series_id", "ds"]].astype(str).values.tolist() == [
        ["a", "2024-01-04"],
        ["a", "2024-01-05"],
        ["b", "2024-01-04"],
        ["b", "2024-01-05"],
    ]
    assert frame["y"].isna().all()
    assert report.origin == pd.Timestamp("2024-01-03")
    assert report.counts["series_history_ends_before_origin"] == 1
    # b's last value is three steps before its first forecast row
    assert frame.loc[frame["series_id"] == "b", "y_lag_1"].isna().all()
    assert frame["y_lag_2"].tolist()[:2] == [2.0, 3.0]


def test_future_frame_is_unchanged_by_y_after_the_origin():
    data = _daily()
    cfg = ForecastFeatureConfig(**SMALL).for_horizon(7)
    origin = "2024-02-20"
    base, _ = build_future_frame(
        data["series"], 7, cfg, data["covariates"], data["weather"], data["static"], origin
    )
    changed = data["series"].copy()
    late = changed["ds"] > pd.Timestamp(origin)
    changed.loc[late, "y"] = 99999.0
    out, report = build_future_frame(
        changed, 7, cfg, data["covariates"], data["weather"], data["static"], origin
    )
    pd.testing.assert_frame_equal(out, base, check_exact=True)
    assert report.counts["y_after_origin_ignored"] == int((late & changed["y"].notna()).sum())


def test_training_and_future_frames_compute_every_feature_the_same_way():
    data = _daily()
    h = 5
    cfg = ForecastFeatureConfig(**SMALL).for_horizon(h)
    train, _ = build_training_frame(**data, config=cfg)
    origin = pd.Timestamp("2024-02-15")
    fut, _ = build_future_frame(
        data["series"], h, cfg, data["covariates"], data["weather"], data["static"], origin
    )
    rows = train[(train["ds"] > origin) & (train["ds"] <= origin + pd.Timedelta(days=h))].reset_index(
        drop=True
    )
    features = [c for c in feature_columns(fut) if c != "series_id"]
    assert len(rows) == len(fut) == 3 * h
    for col in features:
        a, b = rows[col], fut[col]
        if isinstance(a.dtype, pd.CategoricalDtype):
            a, b = a.astype(str), b.astype(str)
        pd.testing.assert_series_equal(a, b, check_exact=True, check_names=False)


def test_future_open_flags_come_from_series_rows_after_the_origin():
    s = _series([("a", "2024-01-01", 1.0, 1), ("a", "2024-01-02", 2.0, 1), ("a", "2024-01-03", None, 0)])
    frame, report = build_future_frame(s, 2, ForecastFeatureConfig(**SMALL))
    assert frame["open"].tolist() == [0, 1]
    assert report.closed_rows == 1


def test_covariates_missing_for_the_horizon_name_series_dates_and_fix():
    data = _daily(n=30)
    cov = data["covariates"]
    short = cov.loc[cov["ds"] <= pd.Timestamp("2024-01-31")]  # history ends 2024-01-30
    with pytest.raises(
        DataValidationError,
        match=(
            r"covariates are missing for 12 forecast rows of 3 series \(series a, b, c, dates 2024-02-01\.\.2024-02-04\)"
            r".*Fix: pass covariates through the horizon: a row per date from 2024-01-31 through 2024-02-04"
        ),
    ):
        build_future_frame(data["series"], 5, ForecastFeatureConfig(**SMALL), covariates=short)


def test_keys_keep_only_the_rows_asked_for_and_need_no_covariates_elsewhere():
    """A series with a gap in the horizon (stores closed for months): with ``keys`` only the rows asked for
    are built, so covariates missing on the gap's dates are not an error; kept rows equal the full frame's."""
    data = _daily(n=30)
    cov = data["covariates"].loc[data["covariates"]["series_id"].notna()]  # the per-series promo rows only
    origin = pd.Timestamp("2024-01-25")
    full, _ = build_future_frame(
        data["series"], 5, ForecastFeatureConfig(**SMALL), covariates=cov, origin=origin
    )
    # series c has no covariates on the first two horizon days and is asked only for the last three
    gap = cov["series_id"].eq("c") & cov["ds"].between("2024-01-26", "2024-01-27")
    keys = full.loc[
        ~((full["series_id"] == "c") & full["ds"].between("2024-01-26", "2024-01-27")), ["series_id", "ds"]
    ]
    with pytest.raises(
        DataValidationError, match=r"covariates are missing for 2 forecast rows of 1 series \(series c"
    ):
        build_future_frame(
            data["series"], 5, ForecastFeatureConfig(**SMALL), covariates=cov.loc[~gap], origin=origin
        )
    out, _ = build_future_frame(
        data["series"], 5, ForecastFeatureConfig(**SMALL), covariates=cov.loc[~gap], origin=origin, keys=keys
    )
    assert len(out) == 13
    assert out.groupby("series_id", observed=True).size().to_dict() == {"a": 5, "b": 5, "c": 3}
    # series a and b are untouched by keys (c's promo-run features differ: its covariates do have a gap)
    ab = out["series_id"].isin(["a", "b"]).to_numpy()
    expected = full.loc[full["series_id"].isin(["a", "b"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(out.loc[ab].reset_index(drop=True), expected, check_exact=True)
    assert out.loc[~ab, "ds"].dt.strftime("%m-%d").tolist() == ["01-28", "01-29", "01-30"]
    # keys of unknown series or before the origin mark nothing
    extra = pd.DataFrame({"series_id": ["zz", "a"], "ds": pd.to_datetime(["2024-01-27", "2024-01-20"])})
    out2, _ = build_future_frame(
        data["series"], 5, ForecastFeatureConfig(**SMALL), covariates=cov, origin=origin, keys=extra
    )
    assert out2.empty


def test_origin_off_the_grid_and_bad_horizon_are_refused():
    s = _series([("a", "2024-01-01", 1.0, 1), ("a", "2024-01-02", 2.0, 1)])
    with pytest.raises(ValueError, match="origin 2024-01-01 12:00:00 is not on the series' grid"):
        build_future_frame(s, 1, ForecastFeatureConfig(**SMALL), origin="2024-01-01 12:00")
    with pytest.raises(
        ValueError, match=r"'horizon' parameter must be a positive int \(steps\). Got 0 instead"
    ):
        build_future_frame(s, 0, ForecastFeatureConfig(**SMALL))


def test_categories_learned_at_training_count_unknown_values_at_serving():
    data = _daily()
    _, train_report = build_training_frame(**data, config=ForecastFeatureConfig(**SMALL))
    static = data["static"].copy()
    static.loc[static["series_id"] == "b", "store_type"] = "brand-new"
    fut, report = build_future_frame(
        data["series"],
        3,
        ForecastFeatureConfig(**SMALL),
        data["covariates"],
        data["weather"],
        static,
        categories=train_report.categories,
    )
    assert fut["static_store_type"].cat.categories.tolist() == ["x", "y"]
    assert report.counts["unknown_category_values[static_store_type]"] == 3
    assert fut.loc[fut["series_id"] == "b", "static_store_type"].isna().all()


def test_a_categorical_covariate_sent_as_numbers_is_read_with_the_trained_categories():
    data = _daily()
    day = data["covariates"]["ds"].dt.day
    data["covariates"] = data["covariates"].assign(state_holiday=np.where(day == 1, "a", "0"))
    config = ForecastFeatureConfig(**SMALL)
    _, train_report = build_training_frame(**data, config=config)
    assert train_report.categories["holiday_state_type"] == ["0", "a"]
    plan = data["covariates"].assign(state_holiday=0)  # all zero: a CSV reads it as numbers
    fut, _ = build_future_frame(
        data["series"], 3, config, plan, data["weather"], data["static"], categories=train_report.categories
    )
    assert fut["holiday_state_type"].astype(str).tolist() == ["0"] * len(fut)
    assert fut["holiday_state_flag"].tolist() == [0.0] * len(fut)


def test_duplicate_series_rows_are_refused():
    s = pd.DataFrame(
        {
            "series_id": pd.array(["a", "a"], dtype="string"),
            "ds": pd.to_datetime(["2024-01-01"] * 2),
            "y": [1.0, 2.0],
            "open": np.array([1, 1], dtype="int8"),
        }
    )
    with pytest.raises(ValueError, match=r"1 duplicate \(series_id, ds\) rows.*validate"):
        build_training_frame(s, config=ForecastFeatureConfig(**SMALL))


def test_weekly_series_anchor_is_inferred_and_used():
    ds = pd.date_range("2024-01-07", periods=10, freq="W-SUN")
    s = validate(pd.DataFrame({"series_id": "a", "ds": ds, "y": np.arange(10.0)}), "series")[0]
    frame, report = build_training_frame(
        s, config=ForecastFeatureConfig(freq="W", lags=(1, 4), rolling_windows=(4,), seasonal_windows=())
    )
    assert report.freq == "W-SUN"
    assert frame["y_lag_4"].tolist()[4:6] == [0.0, 1.0]
    assert "cal_weekofyear" in frame.columns


def test_hourly_frame_with_daily_covariates():
    ds = pd.date_range("2024-01-01", periods=72, freq="h")
    s = validate(pd.DataFrame({"series_id": "a", "ds": ds, "y": np.arange(72.0)}), "series")[0]
    cov = validate(
        pd.DataFrame({"ds": pd.date_range("2024-01-01", periods=4), "promo": [0, 1, 0, 0]}), "covariates"
    )[0]
    frame, report = build_future_frame(
        s,
        24,
        ForecastFeatureConfig(freq="H", lags=(24,), rolling_windows=(24,), seasonal_windows=((24, 2),)),
        covariates=cov,
    )
    assert report.freq == "h"
    assert len(frame) == 24
    assert frame["cal_hour"].tolist() == list(range(24))
    assert frame["y_lag_24"].tolist() == [float(v) for v in range(48, 72)]
    assert (frame["promo_flag"] == 0).all()
    assert frame["promo_hours_since_last"].tolist()[0] == 25  # the promo day ended at 23:00 two days before


def test_feature_family_of_each_prefix_and_unknown_names():
    assert feature_family("series_id") == "level/lags"
    assert feature_family("y_rolling_mean_28_lag_42") == "level/lags"
    assert feature_family("cal_dayofweek") == "calendar"
    assert feature_family("promo2_active_flag") == "promo"
    assert feature_family("holiday_state_type") == "holiday"
    assert feature_family("weather_temp_drop_3d") == "weather"
    assert feature_family("static_store_type") == "static"
    assert feature_family("cov_discount") == "covariates"
    with pytest.raises(ValueError, match=r"'ds' is not a forecast feature"):
        feature_family("ds")


def test_report_reads_as_a_summary_and_serialises():
    data = _daily()
    _, report = build_training_frame(**data, config=ForecastFeatureConfig(**SMALL))
    text = str(report)
    assert text.startswith("training frame: 210 rows, 3 series, freq D, 2024-01-01..2024-03-10")
    assert "gap_rows_inserted=7" in text
    assert "level/lags 10" in text
    d = report.to_dict()
    assert d["counts"]["closed_rows"] == report.closed_rows
    assert d["categories"]["static_store_type"] == ["x", "y"]


@pytest.mark.slow
def test_rossmann_subset_builds_quickly_and_counts_the_known_gap(shared_data):
    path = shared_data / "rossmann" / "train.csv.gz"
    if not path.exists():
        pytest.skip("rossmann/train.csv.gz is absent")
    raw = pd.read_csv(path, dtype={"StateHoliday": str}, low_memory=False)
    raw = raw.loc[raw["Store"] <= 60]
    series = validate(
        raw.rename(columns={"Store": "series_id", "Date": "ds", "Sales": "y", "Open": "open"})[
            ["series_id", "ds", "y", "open"]
        ],
        "series",
    )[0]
    cov = validate(
        raw.rename(
            columns={"Store": "series_id", "Date": "ds", "Promo": "promo", "StateHoliday": "state_holiday"}
        )[["series_id", "ds", "promo", "state_holiday"]],
        "covariates",
    )[0]
    frame, report = build_training_frame(
        series, covariates=cov, config=ForecastFeatureConfig().for_horizon(7)
    )
    n_days = (series["ds"].max() - series["ds"].min()).days + 1  # every store <= 60 spans the whole period
    assert report.counts["rows"] == len(frame) == 60 * n_days
    assert report.gap_rows_inserted == 60 * n_days - len(series)
    assert report.closed_rows == int((series["open"] == 0).sum())
    assert frame.loc[frame["open"] == 1, "y_rolling_mean_7_lag_7"].notna().mean() > 0.9
