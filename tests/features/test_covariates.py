"""features/covariates.py: covariate join, promo/holiday signals, static attributes, categories."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from features.covariates import (
    apply_categories,
    covariate_features,
    covariate_kind,
    driver_flags,
    learn_categories,
    lookup_rows,
    snake_case,
    static_features,
)

NAN = float("nan")


def _grid(
    n: int, series: tuple[str, ...] = ("a",), start: str = "2024-01-01", freq: str = "D"
) -> pd.DataFrame:
    ds = pd.date_range(start, periods=n, freq=freq)
    df = pd.DataFrame({"series_id": np.repeat(series, n), "ds": np.tile(ds, len(series))})
    df["series_id"] = pd.Categorical(df["series_id"], categories=sorted(series))
    return df


def _cov(values: dict[str, list], start: str = "2024-01-01", series_id: str | None = None) -> pd.DataFrame:
    n = len(next(iter(values.values())))
    df = pd.DataFrame({"ds": pd.date_range(start, periods=n), **values})
    if series_id is not None:
        df.insert(0, "series_id", pd.array([series_id] * n, dtype="string"))
    return df


def _col(df: pd.DataFrame, name: str) -> list:
    return [None if (isinstance(v, float) and math.isnan(v)) else float(v) for v in df[name]]


def test_promo_run_lengths_since_start_until_end():
    out, covered, _ = covariate_features(_grid(9), _cov({"promo": [0, 1, 1, 1, 0, 0, 1, 1, 0]}), "D", cap=30)
    assert covered.all()
    assert _col(out, "promo_flag") == [0, 1, 1, 1, 0, 0, 1, 1, 0]
    assert _col(out, "promo_days_since_start") == [None, 0, 1, 2, None, None, 0, 1, None]
    assert _col(out, "promo_days_until_end") == [None, 2, 1, 0, None, None, 1, 0, None]
    assert _col(out, "promo_run_length") == [None, 3, 3, 3, None, None, 2, 2, None]
    assert _col(out, "promo_days_until_next") == [
        1,
        0,
        0,
        0,
        2,
        1,
        0,
        0,
        None,
    ]  # nothing known after the last day
    assert _col(out, "promo_days_since_last") == [None, 0, 0, 0, 1, 2, 0, 0, 1]


def test_promo_run_cut_by_the_series_start_is_unknown_until_it_reaches_the_cap():
    out, _, _ = covariate_features(_grid(4), _cov({"promo": [1, 1, 1, 0]}), "D", cap=2)
    # the run may have started before the first day: 0 and 1 are only lower bounds, 2 reaches the cap
    assert _col(out, "promo_days_since_start") == [None, None, 2, None]
    assert _col(out, "promo_days_until_end") == [2, 1, 0, None]
    assert _col(out, "promo_run_length") == [2, 2, 2, None]


def test_holiday_distances_are_capped_and_unknown_near_the_edges():
    flags = [0] * 12
    flags[5] = 1
    out, _, _ = covariate_features(_grid(12), _cov({"holiday": flags}), "D", cap=3)
    assert _col(out, "holiday_days_until_next") == [3, 3, 3, 2, 1, 0, 3, 3, 3, 3, None, None]
    assert _col(out, "holiday_days_since_last") == [None, None, 3, 3, 3, 0, 1, 2, 3, 3, 3, 3]


def test_string_holiday_column_gives_type_category_and_flag():
    cov = _cov({"StateHoliday": ["0", "a", "0", "b", 0]})
    out, _, _ = covariate_features(_grid(5), cov, "D", cap=30)
    assert _col(out, "holiday_state_flag") == [0, 1, 0, 1, 0]
    assert isinstance(out["holiday_state_type"].dtype, pd.CategoricalDtype)
    assert out["holiday_state_type"].astype(str).tolist() == ["0", "a", "0", "b", "0"]
    assert _col(out, "holiday_state_days_until_next") == [1, 0, 1, 0, None]


def test_missing_covariate_value_is_unknown_not_no_promo():
    out, _, _ = covariate_features(_grid(5), _cov({"promo": [0, 1, NAN, 1, 0]}), "D", cap=30)
    assert _col(out, "promo_flag") == [0, 1, None, 1, 0]
    # the runs around the missing day have an unknown end / start
    assert _col(out, "promo_days_until_end") == [None, None, None, 0, None]
    assert _col(out, "promo_days_since_start") == [None, 0, None, None, None]
    assert _col(out, "promo_days_since_last") == [None, 0, None, 0, 1]


def test_global_rows_apply_to_every_series_and_per_series_rows_override():
    glob = _cov({"promo": [0, 0, 0], "discount": [0.1, 0.2, 0.3]})
    own = _cov({"promo": [1.0], "discount": [NAN]}, start="2024-01-02", series_id="b")
    cov = pd.concat([glob.assign(series_id=pd.array([pd.NA] * 3, dtype="string")), own], ignore_index=True)
    out, covered, counts = covariate_features(_grid(3, ("a", "b")), cov, "D", cap=30)
    assert covered.all()
    assert _col(out, "promo_flag") == [0, 0, 0, 0, 1, 0]
    # b's own row has no discount: the global value is used
    assert out["cov_discount"].tolist() == pytest.approx([0.1, 0.2, 0.3, 0.1, 0.2, 0.3])
    assert counts["covariate_rows_for_unknown_series_ignored"] == 0


def test_covariate_rows_of_unknown_series_are_counted_and_rows_without_covariates_flagged():
    cov = _cov({"discount": [1.0, 2.0]}, series_id="zzz")
    out, covered, counts = covariate_features(_grid(2, ("a",)), cov, "D", cap=30)
    assert counts["covariate_rows_for_unknown_series_ignored"] == 2
    assert not covered.any()
    assert out["cov_discount"].isna().all()


def test_other_covariates_are_prefixed_cov_and_strings_become_categories():
    cov = _cov({"Discount": [0.5, 0.0], "channel": ["web", "shop"]})
    out, _, _ = covariate_features(_grid(2), cov, "D", cap=30)
    assert list(out.columns) == ["cov_discount", "cov_channel"]
    assert out["cov_discount"].tolist() == [0.5, 0.0]
    assert out["cov_channel"].astype(str).tolist() == ["web", "shop"]


def test_daily_covariates_apply_to_every_hour_of_an_hourly_grid():
    grid = _grid(48, freq="h")
    out, covered, _ = covariate_features(grid, _cov({"promo": [0, 1]}), "h", cap=168)
    assert covered.all()
    assert out["promo_flag"].tolist() == [0.0] * 24 + [1.0] * 24
    assert out["promo_hours_since_start"].iloc[24 + 5] == 5


def test_covariate_dates_off_the_weekly_grid_are_refused():
    grid = _grid(3, start="2024-01-07", freq="W-SUN")
    cov = _cov({"promo": [1, 0]}, start="2024-01-08")
    with pytest.raises(
        ValueError,
        match=r"2 distinct covariate dates do not fall on the series' 'W-SUN' grid.*same frequency",
    ):
        covariate_features(grid, cov, "W-SUN", cap=13)


def test_columns_that_collide_after_renaming_are_refused():
    cov = _cov({"Promo": [1], "promo": [0]})
    with pytest.raises(ValueError, match=r"'Promo' and 'promo' both become feature 'promo'"):
        covariate_features(_grid(1), cov, "D", cap=30)


def test_covariate_kind_and_prefixes():
    assert covariate_kind("promo") == ("promo", "promo")
    assert covariate_kind("Promo2Active") == ("promo", "promo2_active")
    assert covariate_kind("web_promo") == ("promo", "promo_web")
    assert covariate_kind("school_holiday") == ("holiday", "holiday_school")
    assert covariate_kind("discount") == ("cov", "cov_discount")
    assert snake_case("Max_TemperatureC") == "max_temperature_c"


def test_static_attributes_are_joined_by_series_with_static_prefix():
    sid = pd.Series(pd.Categorical(["a", "a", "b", "c"], categories=["a", "b", "c"]))
    static = pd.DataFrame(
        {
            "series_id": pd.array(["a", "b", "x"], dtype="string"),
            "StoreType": ["c", "a", "d"],
            "competition_distance": [1270.0, 570.0, 5.0],
        }
    )
    out, counts = static_features(sid, static)
    assert out["static_store_type"].astype(str).tolist() == ["c", "c", "a", "nan"]
    assert _col(out, "static_competition_distance") == [1270, 1270, 570, None]
    assert counts == {"static_rows_for_unknown_series_ignored": 1, "static_series_missing": 1}


def test_unknown_categories_become_missing_and_are_counted():
    train = pd.DataFrame({"cov_channel": pd.Categorical(["web", "shop", "web"])})
    cats = learn_categories(train)
    assert cats == {"cov_channel": ["shop", "web"]}
    serve = pd.DataFrame({"cov_channel": pd.Categorical(["web", "app", None])})
    out, unknown = apply_categories(serve, cats)
    assert out["cov_channel"].cat.categories.tolist() == ["shop", "web"]
    assert out["cov_channel"].isna().tolist() == [False, True, True]
    assert unknown == {"cov_channel": 1}


def test_backward_looking_covariate_features_ignore_covariates_after_cutoff():
    rng = np.random.default_rng(1)
    n = 60
    cov = _cov({"promo": rng.integers(0, 2, n).astype(float), "holiday": (rng.random(n) < 0.1).astype(float)})
    base, _, _ = covariate_features(_grid(n), cov, "D", cap=10)
    cutoff = 30
    changed = cov.copy()
    changed.loc[cutoff + 1 :, ["promo", "holiday"]] = 1 - changed.loc[cutoff + 1 :, ["promo", "holiday"]]
    out, _, _ = covariate_features(_grid(n), changed, "D", cap=10)
    backward = [
        "promo_flag",
        "promo_days_since_start",
        "promo_days_since_last",
        "holiday_flag",
        "holiday_days_since_last",
    ]
    pd.testing.assert_frame_equal(out.loc[:cutoff, backward], base.loc[:cutoff, backward], check_exact=True)
    # forward-looking ones read the (known in advance) future covariates by design
    assert not out.loc[:cutoff, "promo_days_until_next"].equals(
        base.loc[:cutoff, "promo_days_until_next"]
    ) or not out.loc[:cutoff, "holiday_days_until_next"].equals(base.loc[:cutoff, "holiday_days_until_next"])


def test_lookup_rows_matches_code_and_tick_and_ignores_masked_or_unknown_rows():
    grid_code, grid_tick = np.array([0, 0, 1, 1, -1]), np.array([10, 11, 10, 11, 10])
    table_code, table_tick = np.array([1, 0, 0, -1]), np.array([11, 10, 11, 10])
    out = lookup_rows(
        grid_tick, table_tick, (grid_code, table_code), mask=np.array([True, True, False, True])
    )
    assert out.tolist() == [1, -1, -1, 0, -1]
    assert lookup_rows(np.array([5, 6, 7]), np.array([7, 5])).tolist() == [1, -1, 0]


def test_driver_flags_spread_a_daily_calendar_over_the_day_and_prefer_per_series_rows():
    keys = pd.DataFrame(
        {
            "series_id": ["a", "a", "b", "b"],
            "ds": pd.to_datetime(
                ["2024-01-01 10:05", "2024-01-02 00:00", "2024-01-01 23:55", "2024-01-03 08:00"]
            ),
        }
    )
    cov = pd.DataFrame(
        {
            "series_id": [None, None, "b"],
            "ds": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-01"]),
            "promo": [1, 0, 0],
            "StateHoliday": ["0", "a", "0"],
            "temperature": [3.0, 4.0, 5.0],  # not a driver
        }
    )
    flags = driver_flags(keys, cov)
    assert list(flags.columns) == ["promo_flag", "holiday_state_flag"]
    assert flags["promo_flag"].tolist() == [1.0, 0.0, 0.0, 0.0]  # b overrides the global promo; no row: 0
    assert flags["holiday_state_flag"].tolist() == [0.0, 1.0, 0.0, 0.0]
    same, covered = driver_flags(keys, cov, with_coverage=True)
    assert same.equals(flags)
    assert covered.tolist() == [True, True, True, False]  # 2024-01-03: the calendar says nothing
