"""features/order_lines.py: lines -> one row per order."""

from __future__ import annotations

import pandas as pd
import pytest

from features.errors import DataValidationError
from features.order_lines import order_table, prepare_order_lines


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
