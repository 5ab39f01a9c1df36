"""features/orders.py: order lines -> series and static tables, per H/D/W, on the full regular grid."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from features.calendar import infer_freq, step_length
from features.orders import MISSING_KEY, aggregate_orders
from features.validation import validate


def _orders(rows: list[tuple]) -> pd.DataFrame:
    """rows: (order_id, created_at, sku, quantity, unit_price, country)."""
    df = pd.DataFrame(rows, columns=["order_id", "created_at", "sku", "quantity", "unit_price", "country"])
    return validate(df, "orders")[0]


@pytest.fixture
def orders() -> pd.DataFrame:
    return _orders(
        [
            ("o1", "2024-01-01 10:05", "a", 1, 2.0, "UK"),
            ("o1", "2024-01-01 10:05", "b", 2, 3.0, "UK"),  # second line of o1: still one order
            ("o2", "2024-01-01 10:59", "a", 3, 2.0, "UK"),
            ("o3", "2024-01-01 13:00", "a", 1, 2.0, "FR"),
            ("o4", "2024-01-03 00:00", "b", 5, 1.0, "FR"),
        ]
    )


def test_hourly_counts_distinct_orders_and_fills_empty_hours_with_zero(orders):
    out = aggregate_orders(orders, "H").series
    day1 = out[out["ds"] < "2024-01-01 14:00"]
    assert day1["ds"].dt.hour.tolist() == [10, 11, 12, 13]
    assert day1["y"].tolist() == [2.0, 0.0, 0.0, 1.0]
    assert out["ds"].iloc[-1] == pd.Timestamp("2024-01-03 00:00")
    assert len(out) == 14 + 24 + 1  # 10:00 on Jan 1 .. 00:00 on Jan 3, every hour
    assert out["y"].sum() == 4.0


def test_daily_counts_with_zero_day_between_orders_counted(orders):
    series, _, report = aggregate_orders(orders, "D")
    assert series["ds"].dt.strftime("%Y-%m-%d").tolist() == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert series["y"].tolist() == [3.0, 0.0, 1.0]
    assert report.zero_periods_between_orders == 1
    assert report.zero_periods_padded_to_table_end == 0


def test_weekly_periods_start_on_monday_and_sunday_belongs_to_the_previous_week():
    orders = _orders(
        [
            ("o1", "2024-01-07 23:59", "a", 1, 1.0, "UK"),  # Sunday -> week of Monday 2024-01-01
            ("o2", "2024-01-08 00:00", "a", 1, 1.0, "UK"),  # Monday -> its own week
            ("o3", "2024-01-24 12:00", "a", 1, 1.0, "UK"),  # Wednesday -> week of Monday 2024-01-22
        ]
    )
    out = aggregate_orders(orders, "W").series
    assert out["ds"].dt.strftime("%Y-%m-%d").tolist() == [
        "2024-01-01",
        "2024-01-08",
        "2024-01-15",
        "2024-01-22",
    ]
    assert (out["ds"].dt.dayofweek == 0).all()
    assert out["y"].tolist() == [1.0, 1.0, 0.0, 1.0]


def test_weeks_anchored_on_sunday_start_on_sunday():
    orders = _orders(
        [
            ("o1", "2024-01-06 23:59", "a", 1, 1.0, "UK"),  # Saturday -> week of Sunday 2023-12-31
            ("o2", "2024-01-07 00:00", "a", 1, 1.0, "UK"),  # Sunday -> week of Sunday 2024-01-07
            ("o3", "2024-01-13 12:00", "a", 1, 1.0, "UK"),  # Saturday -> week of Sunday 2024-01-07
        ]
    )
    series, _, report = aggregate_orders(orders, "W-SUN")
    assert series["ds"].dt.strftime("%Y-%m-%d").tolist() == ["2023-12-31", "2024-01-07"]
    assert series["y"].tolist() == [1.0, 2.0]
    assert report.freq == "W-SUN"


@pytest.mark.parametrize("freq", ["H", "h", "D", "W", "W-MON", "W-SUN", "W-WED"])
def test_every_forecaster_frequency_gives_a_regular_grid_the_forecaster_accepts(orders, freq):
    series = aggregate_orders(orders, freq, by="country").series
    assert infer_freq(series["ds"], freq)  # raises when the grid does not fit the frequency
    for _, s in series.groupby("series_id"):
        assert (s["ds"].diff().dropna() == step_length(freq)).all()
    assert series.groupby("series_id")["ds"].max().nunique() == 1  # every series ends at the table's end
    assert series["y"].sum() == 4.0


def test_quantity_and_revenue_are_summed_per_period(orders):
    qty = aggregate_orders(orders, "D", measure="quantity").series
    revenue = aggregate_orders(orders, "D", measure="revenue").series
    assert qty["y"].tolist() == [1 + 2 + 3 + 1, 0.0, 5.0]
    assert revenue["y"].tolist() == [1 * 2.0 + 2 * 3.0 + 3 * 2.0 + 1 * 2.0, 0.0, 5 * 1.0]


def test_order_with_two_lines_of_one_sku_counts_once_for_that_sku():
    orders = _orders(
        [("o1", "2024-01-01 10:00", "a", 1, 1.0, "UK"), ("o1", "2024-01-01 10:00", "a", 4, 1.0, "UK")]
    )
    assert aggregate_orders(orders, "D", by="sku").series["y"].tolist() == [1.0]
    assert aggregate_orders(orders, "D", by="sku", measure="quantity").series["y"].tolist() == [5.0]


def test_every_key_is_padded_with_zeros_to_the_tables_last_period_and_starts_at_its_first_order(orders):
    series, _, report = aggregate_orders(orders, "D", by=("country", "sku"))
    got = {sid: (s["ds"].dt.day.tolist(), s["y"].tolist()) for sid, s in series.groupby("series_id")}
    assert got == {
        "FR|a": ([1, 2, 3], [1.0, 0.0, 0.0]),  # stopped selling on Jan 1: zeros, not a stale level
        "FR|b": ([3], [1.0]),  # first order on Jan 3: nothing invented before it
        "UK|a": ([1, 2, 3], [2.0, 0.0, 0.0]),
        "UK|b": ([1, 2, 3], [1.0, 0.0, 0.0]),
    }
    assert series["series_id"].tolist() == sorted(series["series_id"])
    assert report.zero_periods_padded_to_table_end == 6
    assert report.zero_periods_between_orders == 0
    assert report.last_period == "2024-01-03 00:00:00"


def test_static_table_holds_one_row_per_series_with_its_key_columns(orders):
    series, static, _ = aggregate_orders(orders, "D", by=("country", "sku"))
    assert static.to_dict("records") == [
        {"series_id": "FR|a", "country": "FR", "sku": "a"},
        {"series_id": "FR|b", "country": "FR", "sku": "b"},
        {"series_id": "UK|a", "country": "UK", "sku": "a"},
        {"series_id": "UK|b", "country": "UK", "sku": "b"},
    ]
    assert set(static["series_id"]) == set(series["series_id"])
    clean, report = validate(static, "static")
    assert report.repairs == {} and len(clean) == 4


def test_without_keys_the_single_series_is_called_all_and_static_has_only_its_id(orders):
    series, static, _ = aggregate_orders(orders, "W")
    assert set(series["series_id"]) == {"all"}
    assert static.to_dict("records") == [{"series_id": "all"}]


def test_missing_key_values_form_their_own_counted_group():
    orders = _orders(
        [("o1", "2024-01-01 10:00", "a", 1, 1.0, None), ("o2", "2024-01-01 11:00", "a", 1, 1.0, "UK")]
    )
    series, static, report = aggregate_orders(orders, "D", by="country")
    assert series["series_id"].tolist() == [MISSING_KEY, "UK"]
    assert static["country"].tolist() == [MISSING_KEY, "UK"]
    assert report.missing_key_lines == {"country": 1}
    assert "country=1" in str(report)


def test_result_passes_series_validation_unchanged_and_writes_to_parquet(orders):
    out, static, report = aggregate_orders(orders, "H", by="country", measure="revenue")
    clean, vreport = validate(out, "series")
    assert vreport.rows_out == len(out) and vreport.repairs == {}
    pd.testing.assert_frame_equal(clean.drop(columns="open"), out, check_like=True)
    assert str(out["series_id"].dtype) == "string" and str(out["ds"].dtype) == "datetime64[ns]"
    assert out.attrs == {} and static.attrs == {}
    buf = io.BytesIO()
    out.to_parquet(buf)
    pd.testing.assert_frame_equal(pd.read_parquet(buf), out)
    assert json.loads(json.dumps(report.to_dict()))["rows_out"] == len(out)


def test_value_at_a_period_comes_only_from_orders_created_in_that_period(orders):
    cutoff = pd.Timestamp("2024-01-02")
    later = pd.concat([orders, _orders([("o9", "2024-01-05 08:00", "a", 7, 9.0, "UK")])], ignore_index=True)
    later.loc[later["created_at"] >= cutoff, "quantity"] *= 10
    for measure in ("orders", "quantity", "revenue"):
        before = aggregate_orders(orders, "D", by="sku", measure=measure).series
        after = aggregate_orders(later, "D", by="sku", measure=measure).series
        keep = lambda df: df[df["ds"] < cutoff].reset_index(drop=True)  # noqa: E731
        pd.testing.assert_frame_equal(keep(before), keep(after))
        assert after["ds"].max() == pd.Timestamp("2024-01-05")  # only the padding grew


def test_lowercase_hourly_alias_is_accepted(orders):
    pd.testing.assert_frame_equal(aggregate_orders(orders, "h").series, aggregate_orders(orders, "H").series)


def test_unknown_freq_is_refused_with_the_allowed_values(orders):
    with pytest.raises(ValueError, match=r"freq must be one of 'H'.*'W-<DAY>'.*Got 'M' instead"):
        aggregate_orders(orders, "M")


def test_unknown_measure_is_refused(orders):
    with pytest.raises(ValueError, match=r"measure must be one of .*Got 'units' instead"):
        aggregate_orders(orders, "D", measure="units")


def test_missing_key_column_is_named_with_the_fix(orders):
    with pytest.raises(ValueError, match=r"needs columns \['channel'\].*choose `by` among its columns"):
        aggregate_orders(orders, "D", by="channel")


def test_unparsed_timestamps_are_refused_with_the_fix():
    raw = pd.DataFrame({"order_id": ["o1"], "created_at": ["2024-01-01"], "quantity": [1.0]})
    with pytest.raises(TypeError, match=r"created_at must be datetime64.*validate\(df, 'orders'\)"):
        aggregate_orders(raw, "D")


def test_bar_inside_a_key_value_is_refused_when_keys_are_joined():
    orders = _orders([("o1", "2024-01-01 10:00", "a|b", 1, 1.0, "UK")])
    with pytest.raises(ValueError, match=r"Column 'sku' has values containing '\|'.*\['a\|b'\]"):
        aggregate_orders(orders, "D", by=("country", "sku"))
