"""features/validation.py: every error path and every documented repair."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.errors import DataValidationError
from features.ids import ids_as_text, normalize_ids
from features.validation import parse_timestamps, validate


def _series(**overrides) -> pd.DataFrame:
    base = {
        "series_id": ["a", "a", "b"],
        "ds": ["2024-01-01", "2024-01-02", "2024-01-01"],
        "y": [1.0, 2.0, 3.0],
    }
    base.update(overrides)
    return pd.DataFrame(base)


def test_valid_series_is_typed_sorted_and_gets_open_column():
    df = _series(series_id=[2, 1, 1], ds=["2024-01-02", "2024-01-02", "2024-01-01"])
    out, report = validate(df, "series")
    assert list(out["series_id"]) == ["1", "1", "2"]
    assert list(out["ds"].dt.day) == [1, 2, 2]
    assert str(out["series_id"].dtype) == "string"
    assert out["open"].tolist() == [1, 1, 1]
    assert report.rows_in == report.rows_out == 3
    assert report.repairs == {}


def test_missing_required_columns_are_all_reported():
    with pytest.raises(
        DataValidationError, match=r"series\.ds: required column is missing.*series\.y: required"
    ):
        validate(pd.DataFrame({"series_id": ["a"]}), "series")


def test_empty_table_is_refused():
    with pytest.raises(DataValidationError, match="no rows"):
        validate(_series().iloc[:0], "series")


def test_unparseable_date_names_the_row_and_the_fix():
    with pytest.raises(
        DataValidationError, match=r"series\.ds: unparseable date/time \(1 rows.*'ds': '31/31/2024'.*ISO 8601"
    ):
        validate(_series(ds=["2024-01-01", "31/31/2024", "2024-01-01"]), "series")


def test_negative_y_is_refused_with_count():
    with pytest.raises(
        DataValidationError, match=r"series\.y: value fails check greater_than_or_equal_to\(0\) \(2 rows"
    ):
        validate(_series(y=[-1.0, 2.0, -3.0]), "series")


def test_non_numeric_and_infinite_y_are_refused():
    with pytest.raises(DataValidationError, match=r"series\.y: not a number.*series\.y: infinite value"):
        validate(_series(y=["x", float("inf"), 1.0]), "series")


def test_open_must_be_binary_and_closed_rows_have_no_volume():
    with pytest.raises(DataValidationError, match=r"isin\(\[0, 1\]\)"):
        validate(_series(open=[1, 2, 1]), "series")
    with pytest.raises(DataValidationError, match="open=0 but y>0"):
        validate(_series(open=[0, 1, 1]), "series")


def test_all_problems_reported_at_once():
    bad = _series(ds=["2024-01-01", "nope", "2024-01-01"], y=[-1.0, 2.0, 3.0])
    with pytest.raises(DataValidationError) as err:
        validate(bad, "series")
    assert {(p.column, p.n_rows) for p in err.value.problems} == {("ds", 1), ("y", 1)}
    assert "--on-bad-rows drop" in str(err.value)


def test_drop_policy_drops_and_counts_bad_rows():
    out, report = validate(_series(y=[-1.0, 2.0, 3.0]), "series", on_bad_rows="drop")
    assert len(out) == 2
    assert report.repairs["bad_rows_dropped"] == 1
    assert "bad_rows_dropped=1" in str(report)


def test_exact_duplicates_are_dropped_and_counted():
    df = pd.concat([_series(), _series().iloc[[0]]], ignore_index=True)
    out, report = validate(df, "series")
    assert len(out) == 3
    assert report.repairs["exact_duplicate_rows_dropped"] == 1


def test_conflicting_duplicate_keys_are_refused():
    df = _series(ds=["2024-01-01", "2024-01-01", "2024-01-01"], y=[1.0, 5.0, 3.0])
    with pytest.raises(
        DataValidationError, match=r"duplicate key \(series_id, ds\) with different values \(2 rows"
    ):
        validate(df, "series")


def test_missing_y_is_kept_and_counted():
    out, report = validate(_series(y=[None, 2.0, 3.0]), "series")
    assert out["y"].isna().sum() == 1
    assert report.repairs["missing_y_kept_as_missing"] == 1


def test_timestamps_with_timezones_become_naive_utc():
    parsed = parse_timestamps(pd.Series(["2024-01-01T10:00:00+02:00", "2024-01-01 09:00:00"]))
    assert parsed.tolist() == [pd.Timestamp("2024-01-01 08:00"), pd.Timestamp("2024-01-01 09:00")]


def test_non_iso_dates_are_parsed_by_the_fallback():
    parsed = parse_timestamps(pd.Series(["2024-01-05", "Jan 6, 2024"]))
    assert parsed.tolist() == [pd.Timestamp("2024-01-05"), pd.Timestamp("2024-01-06")]


def test_an_export_with_its_own_names_is_pointed_to_data_orders():
    raw = pd.DataFrame(
        {"InvoiceNo": ["1"], "StockCode": ["a"], "Quantity": [1], "InvoiceDate": ["2024-01-01"]}
    )
    with pytest.raises(
        DataValidationError, match=r"orders\.order_id: required column.*orderpulse data orders --export"
    ):
        validate(raw.assign(UnitPrice=1.0), "orders")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # a UK export: per value, 12/01/2011 was read as 1 December and 13/01/2011 as 13 January
        (
            ["12/01/2011 08:00", "13/01/2011 09:00", "01/02/2011"],
            ["2011-01-12 08:00", "2011-01-13 09:00", "2011-02-01"],
        ),
        # a US export: a second field above 12 shows month first
        (
            ["12/1/2010 8:26", "1/13/2011 10:00", "2011-01-20"],
            ["2010-12-01 08:26", "2011-01-13 10:00", "2011-01-20"],
        ),
    ],
    ids=["day_first", "month_first"],
)
def test_numeric_dates_are_read_in_the_day_month_order_a_field_above_12_shows(values, expected):
    assert parse_timestamps(pd.Series(values)).tolist() == [pd.Timestamp(v) for v in expected]


@pytest.mark.parametrize("dates", [["1/2/2011", "3/4/2011"], ["13/2/2011", "3/14/2011"]])
def test_numeric_dates_whose_day_month_order_is_ambiguous_or_contradictory_are_refused(dates):
    with pytest.raises(DataValidationError, match=r"series\.ds: unparseable date/time \(2 rows.*above 12"):
        validate(_series(ds=dates, y=[1.0, 2.0], series_id=["a", "a"]), "series")


def _orders(**overrides) -> pd.DataFrame:
    base = {
        "order_id": ["o1", "o1", "o2"],
        "created_at": ["2024-01-01 10:00:00"] * 2 + ["2024-01-01 11:00:00"],
        "customer_id": ["c1", "c1", None],
        "sku": ["s1", "s2", "s1"],
        "quantity": [1, 2, 3],
        "unit_price": [2.5, 1.0, 2.5],
    }
    base.update(overrides)
    return pd.DataFrame(base)


def test_orders_validate_and_keep_guests_missing():
    out, _ = validate(_orders(), "orders")
    assert out["customer_id"].isna().tolist() == [False, False, True]
    assert out["quantity"].tolist() == [1.0, 2.0, 3.0]


def test_orders_with_non_positive_quantity_or_negative_price_are_refused():
    with pytest.raises(DataValidationError, match=r"orders\.quantity.*greater_than\(0\).*orders\.unit_price"):
        validate(_orders(quantity=[0, 2, 3], unit_price=[-1.0, 1.0, 2.5]), "orders")


def test_lines_of_one_order_must_agree_on_time_beyond_the_spread_and_on_customer():
    with pytest.raises(DataValidationError, match="different created_at.*different customers"):
        validate(
            _orders(
                created_at=["2024-01-01 10:00:00", "2024-01-01 10:05:01", "2024-01-01 11:00:00"],
                customer_id=["c1", "c2", None],
            ),
            "orders",
        )


def test_small_time_spread_inside_one_order_is_set_to_the_first_line_time_and_counted():
    raw = _orders(
        order_id=["o1", "o1", "o1", "o2"],
        created_at=["2024-01-01 10:00:59", "2024-01-01 10:01:00", "2024-01-01 10:00:59", "2024-01-01 11:00"],
        customer_id=["c1", "c1", "c1", None],
        sku=["s1", "s2", "s3", "s1"],
        quantity=[1, 2, 3, 4],
        unit_price=[2.5, 1.0, 2.5, 1.0],
    )
    out, report = validate(raw, "orders")
    assert out.loc[out["order_id"] == "o1", "created_at"].unique().tolist() == [
        pd.Timestamp("2024-01-01 10:00:59")
    ]
    assert len(out) == 4  # nothing dropped
    assert report.repairs == {"orders_with_line_times_spread": 1, "order_lines_set_to_first_line_time": 1}
    assert "order_lines_set_to_first_line_time=1" in str(report)


def test_time_spread_repair_limit_is_a_parameter_and_zero_turns_it_off():
    raw = _orders(created_at=["2024-01-01 10:00:00", "2024-01-01 10:30:00", "2024-01-01 11:00:00"])
    out, report = validate(raw, "orders", order_time_spread="1h")
    assert out["created_at"].iloc[:2].tolist() == [pd.Timestamp("2024-01-01 10:00")] * 2
    assert report.repairs["order_lines_set_to_first_line_time"] == 1
    with pytest.raises(DataValidationError, match=r"different created_at.*first line time automatically"):
        validate(
            _orders(created_at=["2024-01-01 10:00", "2024-01-01 10:00:01", "2024-01-01 11:00"]),
            "orders",
            order_time_spread="0s",
        )


def test_larger_time_spread_is_dropped_and_counted_with_the_drop_policy():
    raw = _orders(created_at=["2024-01-01 10:00:00", "2024-01-01 10:06:00", "2024-01-01 11:00:00"])
    out, report = validate(raw, "orders", on_bad_rows="drop")
    assert out["order_id"].tolist() == ["o2"]
    assert report.repairs == {"bad_rows_dropped": 2}


def test_an_order_log_given_as_series_gets_a_hint_to_build_series():
    orders = _orders()
    with pytest.raises(
        DataValidationError, match=r"series\.series_id.*looks like an order log.*features build series"
    ):
        validate(orders, "series")


def test_orders_without_customer_column_are_all_guests_and_counted():
    out, report = validate(_orders().drop(columns="customer_id"), "orders")
    assert out["customer_id"].isna().all()
    assert report.repairs["customer_id_column_absent_all_guests"] == 3


def test_labels_must_be_binary_and_unique_per_order():
    labels = pd.DataFrame(
        {"order_id": ["o1", "o2"], "label": [1, 2], "labeled_at": ["2024-01-02", "2024-01-03"]}
    )
    with pytest.raises(DataValidationError, match=r"labels\.label"):
        validate(labels, "labels")
    dup = pd.DataFrame(
        {"order_id": ["o1", "o1"], "label": [1, 0], "labeled_at": ["2024-01-02", "2024-01-03"]}
    )
    with pytest.raises(DataValidationError, match="duplicate key"):
        validate(dup, "labels")


def test_weather_static_and_covariates_keys():
    weather = pd.DataFrame(
        {"region": ["BY", "BY"], "ds": ["2024-01-01", "2024-01-01"], "temp_mean": [1.0, 2.0]}
    )
    with pytest.raises(DataValidationError, match=r"weather\.region,ds: duplicate key"):
        validate(weather, "weather")
    static = pd.DataFrame({"series_id": ["a", "a"], "region": ["BY", "BE"]})
    with pytest.raises(DataValidationError, match=r"static\.series_id: duplicate key"):
        validate(static, "static")
    cov = pd.DataFrame({"ds": ["2024-01-01", "2024-01-02"], "promo": [1, 0]})
    out, _ = validate(cov, "covariates")
    assert out["promo"].tolist() == [1, 0]


def test_unknown_table_and_policy_are_value_errors():
    with pytest.raises(ValueError, match="Unknown table 'sales'"):
        validate(_series(), "sales")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="on_bad_rows must be 'raise' or 'drop'. Got 'skip'"):
        validate(_series(), "series", on_bad_rows="skip")  # type: ignore[arg-type]


def test_validate_and_ids_as_text_give_the_same_ids():
    raw = pd.DataFrame({"series_id": [" 7 ", "007", 12.5, "x"], "ds": ["2024-01-01"] * 4, "y": [1.0] * 4})
    raw["ds"] = pd.date_range("2024-01-01", periods=4, freq="D").astype(str)
    validated = validate(raw, "series")[0]["series_id"].tolist()
    assert validated == ["007", "12.5", "7", "x"]  # sorted by series_id
    assert sorted(ids_as_text(raw["series_id"])[0].tolist()) == validated
    assert normalize_ids(pd.Series([3.0, 4.0, None])).tolist() == ["3", "4", pd.NA]


def test_dates_outside_1900_2200_are_refused_not_wrapped_around():
    df = pd.DataFrame(
        {"series_id": ["a"] * 3, "ds": ["2015-01-01", "1899-12-31", "2201-01-01"], "y": [1, 2, 3]}
    )
    with pytest.raises(
        DataValidationError, match=r"series.ds: date/time outside 1900-01-01 .. 2200-12-31 \(2 rows"
    ):
        validate(df, "series")
    kept, report = validate(df, "series", on_bad_rows="drop")
    assert kept["ds"].tolist() == [pd.Timestamp("2015-01-01")]


def test_float_customer_column_with_guests_becomes_integer_text_and_is_counted():
    orders = pd.DataFrame(
        {
            "order_id": ["o1", "o2", "o3", "o4"],
            "created_at": ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"],
            "customer_id": [14911.0, np.nan, 14911.0, 12345.0],  # float64: NaN for the guest order
            "sku": ["a", "b", "a", "c"],
            "quantity": [1, 2, 3, 4],
            "unit_price": [1.0, 1.0, 1.0, 1.0],
        }
    )
    out, report = validate(orders, "orders")
    assert out["customer_id"].tolist() == ["14911", pd.NA, "14911", "12345"]
    assert report.repairs == {"ids_whole_float_repaired": 3}
    assert "ids_whole_float_repaired=3" in str(report)
