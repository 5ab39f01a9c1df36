"""features/orders.py: order lines -> series table, per H/D/W, with zero-filled gaps."""

from __future__ import annotations

import pandas as pd
import pytest

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
    out = aggregate_orders(orders, "H")
    day1 = out[out["ds"] < "2024-01-01 14:00"]
    assert day1["ds"].dt.hour.tolist() == [10, 11, 12, 13]
    assert day1["y"].tolist() == [2.0, 0.0, 0.0, 1.0]
    assert out["ds"].iloc[-1] == pd.Timestamp("2024-01-03 00:00")
    assert len(out) == 14 + 24 + 1  # 10:00 on Jan 1 .. 00:00 on Jan 3, every hour
    assert out["y"].sum() == 4.0


def test_daily_counts_with_zero_day_between_orders(orders):
    out = aggregate_orders(orders, "D")
    assert out["ds"].dt.strftime("%Y-%m-%d").tolist() == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert out["y"].tolist() == [3.0, 0.0, 1.0]
    assert out.attrs["report"].zero_periods_filled == 1


def test_weekly_periods_start_on_monday_and_sunday_belongs_to_the_previous_week():
    orders = _orders(
        [
            ("o1", "2024-01-07 23:59", "a", 1, 1.0, "UK"),  # Sunday -> week of Monday 2024-01-01
            ("o2", "2024-01-08 00:00", "a", 1, 1.0, "UK"),  # Monday -> its own week
            ("o3", "2024-01-24 12:00", "a", 1, 1.0, "UK"),  # Wednesday -> week of Monday 2024-01-22
        ]
    )
    out = aggregate_orders(orders, "W")
    assert out["ds"].dt.strftime("%Y-%m-%d").tolist() == [
        "2024-01-01",
        "2024-01-08",
        "2024-01-15",
        "2024-01-22",
    ]
    assert (out["ds"].dt.dayofweek == 0).all()
    assert out["y"].tolist() == [1.0, 1.0, 0.0, 1.0]


def test_quantity_and_revenue_are_summed_per_period(orders):
    qty = aggregate_orders(orders, "D", value="quantity")
    revenue = aggregate_orders(orders, "D", value="revenue")
    assert qty["y"].tolist() == [1 + 2 + 3 + 1, 0.0, 5.0]
    assert revenue["y"].tolist() == [1 * 2.0 + 2 * 3.0 + 3 * 2.0 + 1 * 2.0, 0.0, 5 * 1.0]


def test_order_with_two_lines_of_one_sku_counts_once_for_that_sku():
    orders = _orders(
        [("o1", "2024-01-01 10:00", "a", 1, 1.0, "UK"), ("o1", "2024-01-01 10:00", "a", 4, 1.0, "UK")]
    )
    assert aggregate_orders(orders, "D", by="sku")["y"].tolist() == [1.0]
    assert aggregate_orders(orders, "D", by="sku", value="quantity")["y"].tolist() == [5.0]


def test_keys_are_joined_with_a_bar_and_each_key_spans_only_its_own_first_to_last_period(orders):
    out = aggregate_orders(orders, "D", by=("country", "sku"))
    assert out["series_id"].tolist() == ["FR|a", "FR|b", "UK|a", "UK|b"]
    assert out["ds"].dt.day.tolist() == [1, 3, 1, 1]  # no zeros before a key's first or after its last order
    assert out["y"].tolist() == [1.0, 1.0, 2.0, 1.0]


def test_without_keys_the_single_series_is_called_all(orders):
    assert set(aggregate_orders(orders, "W")["series_id"]) == {"all"}


def test_missing_key_values_form_their_own_counted_group():
    orders = _orders(
        [("o1", "2024-01-01 10:00", "a", 1, 1.0, None), ("o2", "2024-01-01 11:00", "a", 1, 1.0, "UK")]
    )
    out = aggregate_orders(orders, "D", by="country")
    assert out["series_id"].tolist() == [MISSING_KEY, "UK"]
    assert out.attrs["report"].missing_key_lines == {"country": 1}
    assert "country=1" in str(out.attrs["report"])


def test_result_passes_series_validation_unchanged(orders):
    out = aggregate_orders(orders, "H", by="country", value="revenue")
    clean, report = validate(out, "series")
    assert report.rows_out == len(out) and report.repairs == {}
    pd.testing.assert_frame_equal(clean.drop(columns="open"), out, check_like=True)
    assert str(out["series_id"].dtype) == "string" and str(out["ds"].dtype) == "datetime64[ns]"


def test_orders_after_a_period_do_not_change_that_period_or_earlier_ones(orders):
    cutoff = pd.Timestamp("2024-01-02")
    later = pd.concat([orders, _orders([("o9", "2024-01-05 08:00", "a", 7, 9.0, "UK")])], ignore_index=True)
    later.loc[later["created_at"] >= cutoff, "quantity"] *= 10
    for value in ("orders", "quantity", "revenue"):
        before = aggregate_orders(orders, "D", by="sku", value=value)
        after = aggregate_orders(later, "D", by="sku", value=value)
        keep = lambda df: df[df["ds"] < cutoff].reset_index(drop=True)  # noqa: E731
        pd.testing.assert_frame_equal(keep(before), keep(after))


def test_lowercase_hourly_alias_is_accepted(orders):
    pd.testing.assert_frame_equal(aggregate_orders(orders, "h"), aggregate_orders(orders, "H"))


def test_unknown_freq_is_refused_with_the_allowed_values(orders):
    with pytest.raises(ValueError, match=r"freq must be one of 'H'.*Got 'M' instead"):
        aggregate_orders(orders, "M")


def test_unknown_value_is_refused(orders):
    with pytest.raises(ValueError, match=r"value must be one of .*Got 'units' instead"):
        aggregate_orders(orders, "D", value="units")


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
