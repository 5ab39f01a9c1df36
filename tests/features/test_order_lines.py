"""features/order_lines.py: lines -> one row per order."""

from __future__ import annotations

import pandas as pd
import pytest

from features.errors import DataValidationError
from features.order_lines import merge_by_order, order_table, prepare_order_lines


def test_orders_are_sorted_by_created_at_then_order_id_with_first_line_customer():
    lines = prepare_order_lines(
        pd.DataFrame(
            {
                "order_id": ["b", "a", "c", "b"],
                "created_at": ["2024-01-02", "2024-01-02", "2024-01-01", "2024-01-02"],
                "customer_id": ["k2", None, "k3", "k2"],
                "sku": ["s", "s", "t", "t"],
                "quantity": [1, 2, 3, 4],
                "unit_price": [1.0, 1.0, 1.0, 2.0],
            }
        ),
        "orders",
    )
    table = order_table(lines, ())
    assert table.order_id.tolist() == ["c", "a", "b"]
    assert table.guest.tolist() == [False, True, False]
    assert table.comp["order_value"].tolist() == [3.0, 2.0, 1.0 + 8.0]
    assert table.pair_order.tolist() == [0, 1, 2, 2]
    assert table.skus[table.pair_sku].tolist() == ["t", "s", "s", "t"]


def test_missing_quantity_is_refused_with_the_row():
    df = pd.DataFrame(
        {
            "order_id": ["a"],
            "created_at": ["2024-01-01"],
            "sku": ["s"],
            "quantity": [None],
            "unit_price": [1.0],
        }
    )
    with pytest.raises(DataValidationError, match=r"orders\.quantity: missing or non-numeric value \(1 rows"):
        prepare_order_lines(df, "orders")


def _lines(*rows: tuple[str, str, str, float]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"order_id": o, "created_at": pd.Timestamp(t), "sku": k, "quantity": q} for o, t, k, q in rows]
    )


def test_merge_by_order_newer_rows_replace_whole_orders_of_older():
    older = _lines(
        ("o1", "2024-01-01", "a", 1.0),
        ("o1", "2024-01-01", "b", 2.0),
        ("o2", "2024-01-02", "a", 3.0),
    )
    older["note"] = "only in older"  # a column newer lacks is left out
    newer = _lines(("o1", "2024-01-01", "c", 9.0), ("o3", "2024-01-03", "a", 4.0))
    merged = merge_by_order(older, newer)
    assert merged.frame.to_dict("list") == {
        "order_id": ["o2", "o1", "o3"],
        "created_at": [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-03")],
        "sku": ["a", "c", "a"],
        "quantity": [3.0, 9.0, 4.0],
    }
    assert (merged.older_orders_kept, merged.older_rows_kept, merged.older_orders_replaced) == (1, 1, 1)


def test_merge_by_order_compares_ids_as_text_and_keeps_a_lone_table():
    older = pd.DataFrame({"order_id": [7, 8], "label": [0, 1]})
    newer = pd.DataFrame({"order_id": pd.array(["7"], dtype="string"), "label": [1]})
    merged = merge_by_order(older, newer)
    assert merged.frame["label"].tolist() == [1, 1]  # order 8 from older, order "7" from newer
    assert merged.frame["order_id"].astype(str).tolist() == ["8", "7"]
    assert merge_by_order(older, None).frame is older and merge_by_order(older, None).older_orders_kept == 2
    assert merge_by_order(None, newer).frame is newer
    assert merge_by_order(None, None).frame is None
    everything = merge_by_order(older, pd.DataFrame({"order_id": ["7", "8"], "label": [1, 0]}))
    assert everything.frame["label"].tolist() == [1, 0] and everything.older_orders_replaced == 2
