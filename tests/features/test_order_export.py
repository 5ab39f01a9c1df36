"""features/order_export.py: a raw export's columns renamed and its cancellation lines split off as events."""

from __future__ import annotations

import pandas as pd
import pytest

from features.errors import DataValidationError
from features.order_export import parse_column_map, split_order_export
from features.validation import validate


def _export(**names: str) -> pd.DataFrame:
    """An Online Retail-shaped export: two orders and one cancellation, column names overridable."""
    cols = {
        "InvoiceNo": ["536365", "536365", "C536379", "536366"],
        "StockCode": ["85123A", "71053", "85123A", "22633"],
        "Description": ["HEART", "LANTERN", "HEART", "HAND WARMER"],
        "Quantity": [6, 6, -1, 2],
        "InvoiceDate": ["2010-12-01 08:26:00"] * 2 + ["2010-12-03 09:41:00", "2010-12-01 08:28:00"],
        "UnitPrice": [2.55, 3.39, 2.55, 1.85],
        "CustomerID": [17850.0, 17850.0, 17850.0, None],
        "Country": ["United Kingdom"] * 4,
    }
    return pd.DataFrame({names.get(k, k): v for k, v in cols.items()})


def test_online_retail_names_are_recognised_and_cancellations_become_events():
    orders, events, report = split_order_export(_export(), cancelled_prefix="C")
    assert orders["order_id"].tolist() == ["536365", "536365", "536366"]
    assert list(orders.columns) == [
        "order_id", "sku", "Description", "quantity", "created_at", "unit_price", "customer_id", "country"
    ]  # fmt: skip
    assert events.to_dict("records") == [
        {
            "event_at": "2010-12-03 09:41:00",
            "customer_id": 17850.0,
            "sku": "85123A",
            "quantity": -1,
            "cancellation_id": "C536379",
        }
    ]
    assert (report.lines_in, report.order_lines, report.cancellation_lines) == (4, 3, 1)
    assert report.renamed["CustomerID"] == "customer_id"
    assert validate(orders, "orders")[0]["customer_id"].tolist() == ["17850", "17850", pd.NA]


def test_online_retail_ii_names_are_recognised_too():
    raw = _export(InvoiceNo="Invoice", UnitPrice="Price", CustomerID="Customer ID")
    orders, events, report = split_order_export(raw, cancelled_prefix="C")
    assert report.renamed == {
        "Invoice": "order_id",
        "InvoiceDate": "created_at",
        "Customer ID": "customer_id",
        "StockCode": "sku",
        "Quantity": "quantity",
        "Price": "unit_price",
        "Country": "country",
    }
    assert len(orders) == 3 and len(events) == 1


def test_without_a_prefix_every_line_stays_an_order_line():
    orders, events, report = split_order_export(_export())
    assert len(orders) == 4 and events.empty and report.cancellation_lines == 0
    assert "every line is an order line" in str(report)


def test_unknown_names_are_refused_with_the_columns_option_as_the_fix_and_then_accepted():
    raw = _export(InvoiceNo="Beleg", InvoiceDate="Zeit")
    with pytest.raises(
        DataValidationError, match=r"export\.order_id: no column recognised.*--columns NAME=order_id"
    ):
        split_order_export(raw)
    orders, _, report = split_order_export(raw, columns=parse_column_map("Beleg=order_id, Zeit=created_at"))
    assert {"order_id", "created_at"} <= set(orders.columns)
    assert report.renamed["Beleg"] == "order_id"


def test_two_candidate_columns_and_a_bad_mapping_are_refused():
    raw = _export().assign(Price=1.0)  # UnitPrice and Price could both be the unit price
    with pytest.raises(
        DataValidationError, match=r"several columns could be unit_price: \['UnitPrice', 'Price'\]"
    ):
        split_order_export(raw)
    with pytest.raises(DataValidationError, match=r"orders table does not have: \['amount'\]"):
        split_order_export(_export(), columns={"UnitPrice": "amount"})
    with pytest.raises(DataValidationError, match=r"export does not have: \['Nope'\]"):
        split_order_export(_export(), columns={"Nope": "order_id"})
    with pytest.raises(ValueError, match="EXPORT_NAME=COLUMN pairs.*Got 'Invoice' instead"):
        parse_column_map("Invoice")


def test_cancellations_without_a_customer_column_are_refused():
    with pytest.raises(DataValidationError, match="no customer column"):
        split_order_export(_export().drop(columns="CustomerID"), cancelled_prefix="C")
