"""features/holidays.py: public-holiday covariates for any dates (the horizon included), per country."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.covariates import covariate_kind
from features.holidays import (
    HOLIDAY_COLUMN,
    add_holidays,
    closure_features,
    country_code,
    holiday_covariates,
)


def _series(ids=("UK", "FR"), start="2010-11-01", end="2010-12-01", freq="D") -> pd.DataFrame:
    ds = pd.date_range(start, end, freq=freq)
    return pd.DataFrame(
        {
            "series_id": pd.array(np.repeat(ids, len(ds)), dtype="string"),
            "ds": np.tile(ds, len(ids)),
            "y": 1.0,
        }
    )


def _on(table: pd.DataFrame, day: str, series_id: str | None = None) -> float:
    rows = table.loc[table["ds"] == pd.Timestamp(day)]
    if series_id is not None:
        rows = rows.loc[rows["series_id"] == series_id]
    assert len(rows) == 1
    return float(rows[HOLIDAY_COLUMN].iloc[0])


def test_country_codes_subdivisions_names_and_unknowns():
    assert country_code("GB") == ("GB", None)
    assert country_code("de-by") == ("DE", "BY")
    assert country_code("United Kingdom") == ("GB", None)
    assert country_code("EIRE") == ("IE", None)
    assert country_code("France") == ("FR", None)
    assert country_code("Unspecified") is None
    assert country_code("DE-XX") is None


def test_country_calendar_covers_the_horizon_without_any_data_for_it():
    series = _series(ids=("UK",))
    table, report = holiday_covariates("GB", series, end="2010-12-31", freq="D")
    assert "series_id" not in table.columns  # one calendar for every series
    assert table["ds"].min() == pd.Timestamp("2010-11-01") and table["ds"].max() == pd.Timestamp("2010-12-31")
    assert table["ds"].diff().dropna().eq(pd.Timedelta(days=1)).all()
    christmas = table.loc[table[HOLIDAY_COLUMN] == 1, "ds"].dt.strftime("%m-%d").tolist()
    assert christmas == ["12-25", "12-26", "12-27", "12-28"]  # incl. the observed (substitute) days
    assert report.calendars == {"GB": 1}


def test_the_column_name_makes_it_a_holiday_covariate():
    assert covariate_kind(HOLIDAY_COLUMN) == ("holiday", "holiday_public")


def test_subdivision_calendars_differ_from_the_country_one():
    series = _series(ids=("m",), start="2010-08-01", end="2010-08-31")
    eng = holiday_covariates("GB-ENG", series, end="2010-08-31", freq="D")[0]
    gb = holiday_covariates("GB", series, end="2010-08-31", freq="D")[0]
    assert _on(eng, "2010-08-30") == 1.0 and _on(gb, "2010-08-30") == 0.0  # Summer Bank Holiday: not Scotland
    series = _series(ids=("m",), start="2011-01-01", end="2011-01-10")
    by = holiday_covariates("DE-BY", series, end="2011-01-10", freq="D")[0]
    be = holiday_covariates("DE-BE", series, end="2011-01-10", freq="D")[0]
    assert _on(by, "2011-01-06") == 1.0 and _on(be, "2011-01-06") == 0.0  # Epiphany: Bavaria only


def test_static_country_column_gives_each_series_its_own_calendar_and_unknown_is_missing():
    series = _series(ids=("s_uk", "s_fr", "s_x"), start="2010-07-01", end="2010-07-31")
    static = pd.DataFrame(
        {"series_id": ["s_uk", "s_fr", "s_x"], "country": ["United Kingdom", "France", "Unspecified"]}
    )
    table, report = holiday_covariates("static", series, end="2010-08-31", freq="D", static=static)
    assert _on(table, "2010-07-14", "s_fr") == 1.0  # Bastille Day in France only
    assert _on(table, "2010-07-14", "s_uk") == 0.0
    assert _on(table, "2010-08-31", "s_uk") == 0.0  # the horizon is covered (GB-wide: no August holiday)
    assert np.isnan(_on(table, "2010-07-14", "s_x"))  # unknown country: unknown, not "no holiday"
    assert report.calendars == {"FR": 1, "GB": 1}
    assert report.series_without_calendar == 1 and report.unknown_countries == ["Unspecified"]
    assert table.groupby("series_id")["ds"].agg(["min", "max"]).astype(str).to_dict("list") == {
        "min": ["2010-07-01"] * 3,
        "max": ["2010-08-31"] * 3,
    }


def test_static_spec_needs_a_country_column():
    with pytest.raises(ValueError, match=r"static table's 'country' column.*no static table was given"):
        holiday_covariates("static", _series(), end="2010-12-31", freq="D")


def test_unknown_calendar_is_refused_with_the_fix():
    with pytest.raises(ValueError, match=r"Unknown holiday calendar 'Atlantis'.*'DE-BY'"):
        holiday_covariates("Atlantis", _series(), end="2010-12-31", freq="D")


def test_weekly_rows_count_the_holidays_of_each_week_on_the_series_weekday():
    series = _series(ids=("UK",), start="2010-11-29", end="2010-12-13", freq="W-MON")
    table, _ = holiday_covariates("GB", series, end="2011-01-03", freq="W")
    assert (table["ds"].dt.dayofweek == 0).all()
    weeks = dict(zip(table["ds"].dt.strftime("%m-%d"), table[HOLIDAY_COLUMN], strict=True))
    assert weeks["12-20"] == 2.0  # Sat 25 + Sun 26 December
    assert weeks["12-27"] == 3.0  # Mon 27, Tue 28 (observed) + Sat 1 January
    assert weeks["12-06"] == 0.0


def test_holiday_values_do_not_depend_on_the_data_or_how_far_it_goes():
    short = holiday_covariates("GB", _series(end="2010-11-15"), end="2011-01-31", freq="D")[0]
    long = holiday_covariates("GB", _series(end="2011-01-15"), end="2011-01-31", freq="D")[0]
    pd.testing.assert_frame_equal(short, long)


def test_add_holidays_keeps_user_values_and_stops_where_the_user_covariates_stop():
    cov = pd.DataFrame({"ds": pd.to_datetime(["2010-12-24", "2010-12-25"]), "promo": [1.0, 0.0]})
    hol = holiday_covariates("GB", _series(ids=("UK",)), end="2010-12-31", freq="D")[0]
    merged = add_holidays(cov, hol)
    assert merged["ds"].max() == pd.Timestamp("2010-12-25")  # the horizon check still sees the user's gap
    row = merged.loc[merged["ds"] == pd.Timestamp("2010-12-25")].iloc[0]
    assert (row["promo"], row[HOLIDAY_COLUMN]) == (0.0, 1.0)
    assert merged.loc[merged["ds"] == pd.Timestamp("2010-11-01"), "promo"].isna().all()
    with pytest.raises(ValueError, match="already has a 'holiday_public' column"):
        add_holidays(merged, hol)


def test_holiday_weeks_flag_the_week_holding_each_holiday_and_count_the_weeks_before():
    from features.holidays import holiday_week_features

    weeks = pd.Series(pd.date_range("2023-10-27", "2024-04-05", freq="W-FRI"))  # rows are Fri .. Thu
    out = holiday_week_features(weeks, cap=13).set_index(weeks)
    # Thanksgiving 2023-11-23 (Thu) is in the week from Fri 11-17; Christmas 2023-12-25 (Mon) from Fri 12-22;
    # Easter 2024-03-31 (Sun) from Fri 03-29
    assert out.index[out["holiday_week_thanksgiving"] == 1].tolist() == [pd.Timestamp("2023-11-17")]
    assert out.index[out["holiday_week_christmas"] == 1].tolist() == [pd.Timestamp("2023-12-22")]
    assert out.index[out["holiday_week_easter"] == 1].tolist() == [pd.Timestamp("2024-03-29")]
    assert out.loc["2023-12-01", "holiday_weeks_until_christmas"] == 3
    assert out.loc["2023-10-27", "holiday_weeks_until_christmas"] == 8
    assert out.loc["2023-12-29", "holiday_weeks_until_christmas"] == 13  # next one is a year away: capped


def test_holiday_weeks_depend_only_on_the_date():
    from features.holidays import holiday_week_features

    weeks = pd.Series(pd.date_range("2010-01-03", "2012-12-30", freq="W-SUN"))
    whole = holiday_week_features(weeks, cap=13)
    part = holiday_week_features(weeks.iloc[100:120].reset_index(drop=True), cap=13)
    pd.testing.assert_frame_equal(part, whole.iloc[100:120].reset_index(drop=True))
    assert whole["holiday_week_christmas"].sum() == 3 and whole["holiday_week_thanksgiving"].sum() == 3


# ---------------------------------------------------------------------------------------------------------
# closure_features: closed shares just before / after a day, from known-in-advance open shares


def _shares(values, start="2024-05-06"):
    ds = pd.date_range(start, periods=len(values), freq="D")
    return pd.DataFrame({"series_id": "total", "ds": ds, "open_share": values})


def test_closure_features_sum_the_closed_shares_before_and_after_each_day():
    # Mon..Sun: Thursday a holiday (5% open), Sunday mostly closed (3% open)
    f = _shares([1.0, 1.0, 1.0, 0.05, 1.0, 1.0, 0.03])
    out = closure_features(f, pd.Timedelta(days=1))
    wed, fri, sat = 2, 4, 5
    assert out.loc[wed, "closed_share_next_1"] == pytest.approx(0.95)
    assert out.loc[fri, "closed_share_prev_1"] == pytest.approx(0.95)
    assert out.loc[sat, "closed_share_next_1"] == pytest.approx(0.97)
    assert out.loc[sat, "closed_share_prev_3"] == pytest.approx(0.95)  # Wed, Thu, Fri
    assert out.loc[wed, "closed_share_next_3"] == pytest.approx(0.95)  # Thu, Fri, Sat
    assert out.loc[0, "closed_share_next_1"] == pytest.approx(0.0)


def test_closure_features_are_missing_where_the_neighbouring_days_are_unknown():
    f = _shares([1.0, 0.0, 1.0, 1.0])
    out = closure_features(f, pd.Timedelta(days=1))
    assert np.isnan(out.loc[0, "closed_share_prev_1"])  # the day before the first row is not listed
    assert np.isnan(out.loc[3, "closed_share_next_1"])  # nor the day after the last (end of the horizon)
    assert np.isnan(out.loc[2, "closed_share_next_3"])
    assert out.loc[2, "closed_share_prev_1"] == pytest.approx(1.0)


def test_closure_features_look_up_days_by_date_not_position_and_per_series():
    gap = pd.concat([_shares([1.0, 0.0]), _shares([1.0], start="2024-05-09")], ignore_index=True)
    other = _shares([0.5, 0.5, 0.5, 0.5]).assign(series_id="region=A")
    out = closure_features(pd.concat([gap, other], ignore_index=True), pd.Timedelta(days=1))
    assert np.isnan(out.loc[2, "closed_share_prev_1"])  # 2024-05-08 is missing, not the 0.0 row before
    assert out.loc[1, "closed_share_prev_1"] == pytest.approx(0.0)
    assert out.loc[4, "closed_share_prev_1"] == pytest.approx(0.5)  # region=A's own day, not total's


def test_closure_features_never_read_y_nor_days_beyond_the_window():
    f = _shares([1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 1.0]).assign(y=np.arange(7.0))
    base = closure_features(f, pd.Timedelta(days=1))
    changed = f.assign(y=-f["y"])
    changed.loc[6, "open_share"] = 0.0  # 3 days after row 3: outside every window of row 0..2
    out = closure_features(changed, pd.Timedelta(days=1))
    pd.testing.assert_frame_equal(out.iloc[:3], base.iloc[:3])
    assert out.loc[3, "closed_share_next_3"] == pytest.approx(2.0)


def test_closure_features_refuse_a_frame_without_open_share():
    with pytest.raises(ValueError, match="open_share"):
        closure_features(pd.DataFrame({"series_id": ["a"], "ds": [pd.Timestamp("2024-01-01")]}), "1D")
