"""Tests of features/ids.py: the id rule of every table, event and request."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.errors import DataValidationError
from features.ids import ids_as_known, ids_as_text, normalize_ids
from features.validation import ValidationReport, validate


def test_ids_are_stripped_blank_is_missing_and_whole_floats_lose_their_decimals():
    values, missing = ids_as_text(pd.Series([" a ", "", None, "b"], dtype=object))
    assert values[[0, 3]].tolist() == ["a", "b"] and missing.tolist() == [False, True, True, False]
    floats, missing = ids_as_text(pd.Series([12.0, np.nan, 7.0]))
    assert floats[[0, 2]].tolist() == ["12", "7"] and missing.tolist() == [False, True, False]


def test_small_and_large_inputs_are_normalised_the_same_way():
    raw = pd.Series([" x1", "", None, 5, "y "] * 100, dtype=object)
    large, large_missing = ids_as_text(raw)
    small = np.concatenate([ids_as_text(raw.iloc[i : i + 5])[0] for i in range(0, 500, 5)])
    assert [None if v is pd.NA else v for v in small] == [None if v is pd.NA else v for v in large]
    assert large_missing.sum() == 200


def test_text_ids_written_as_whole_floats_lose_the_dot_zero_and_are_counted():
    report = ValidationReport(table="orders", rows_in=5)
    ids = normalize_ids(pd.Series(["14911.0", None, " 12345.0", "777", ""], dtype=object), report)
    assert ids.tolist() == ["14911", pd.NA, "12345", "777", pd.NA]
    assert report.repairs == {"ids_whole_float_repaired": 2}


@pytest.mark.parametrize(
    "values",
    [
        ["14911.0", "3.5"],  # one value is not a whole number: the column is left as it is
        ["14911.0", "A12.0x"],
        ["14911.0", "A12"],
        [3.5, 4.0],  # a float column with a fraction: "4.0" stays
    ],
)
def test_id_columns_with_any_value_that_is_not_a_whole_number_are_left_alone(values):
    report = ValidationReport(table="orders", rows_in=2)
    ids = normalize_ids(pd.Series(values), report)
    assert ids.tolist() == [str(v) for v in values]
    assert ids_as_text(np.array(values, dtype=object))[0].tolist() == [str(v) for v in values]
    assert report.repairs == {}


def test_request_sized_and_table_sized_ids_lose_the_dot_zero_alike():
    raw = pd.Series(["14911.0", None, 12345.0, "777", " 42.0 "] * 100, dtype=object)
    small_report, large_report = (ValidationReport(table="t", rows_in=0) for _ in range(2))
    large, _ = ids_as_text(raw, large_report)
    small = np.concatenate([ids_as_text(raw.iloc[i : i + 5], small_report)[0] for i in range(0, 500, 5)])
    assert large[:5].tolist() == ["14911", pd.NA, "12345", "777", "42"]
    assert [None if v is pd.NA else v for v in small] == [None if v is pd.NA else v for v in large]
    assert small_report.repairs == large_report.repairs == {"ids_whole_float_repaired": 300}


def test_two_spellings_of_one_whole_number_become_one_id_and_the_merge_is_counted():
    report = ValidationReport(table="orders", rows_in=7)
    raw = pd.Series(["14911.0", "14911", " 14911.00", "777", " 777 ", "12.0", None], dtype=object)
    ids = normalize_ids(raw, report)
    assert ids.tolist() == ["14911", "14911", "14911", "777", "777", "12", pd.NA]
    # "14911.0", "14911" and "14911.00" (as sent, stripped) are one id now; " 777 " was only stripped
    assert report.repairs == {"ids_whole_float_repaired": 3, "ids_merged_by_repair": 3}
    small = ValidationReport(table="request", rows_in=7)
    assert ids_as_text(raw.to_numpy(), small)[0].tolist() == ids.tolist()
    assert small.repairs == report.repairs


def test_a_repair_that_merges_nothing_counts_no_merge():
    report = ValidationReport(table="orders", rows_in=3)
    normalize_ids(pd.Series(["14911.0", "14911.0", "12"], dtype=object), report)
    assert report.repairs == {"ids_whole_float_repaired": 2}


def test_a_series_table_whose_merged_ids_disagree_is_refused_and_one_that_agrees_is_counted():
    rows = {"series_id": ["7.0", "7", "8"], "ds": ["2024-01-01", "2024-01-01", "2024-01-01"]}
    with pytest.raises(DataValidationError, match=r"duplicate key \(series_id, ds\) with different values"):
        validate(pd.DataFrame({**rows, "y": [5.0, 6.0, 1.0]}), "series")
    out, report = validate(pd.DataFrame({**rows, "y": [5.0, 5.0, 1.0]}), "series")
    assert out["series_id"].tolist() == ["7", "8"]
    assert report.repairs == {
        "ids_whole_float_repaired": 1,
        "ids_merged_by_repair": 2,
        "exact_duplicate_rows_dropped": 1,
    }
    assert "ids_merged_by_repair=2" in str(report)


def test_lines_of_two_orders_merged_by_the_repair_with_two_customers_are_refused():
    orders = pd.DataFrame(
        {
            "order_id": ["536365.0", "536365"],
            "created_at": ["2011-01-03 08:00", "2011-01-03 08:00"],
            "customer_id": ["14911", "12345"],
            "sku": ["a", "b"],
            "quantity": [1, 2],
            "unit_price": [1.0, 1.0],
        }
    )
    with pytest.raises(DataValidationError, match="lines of one order name different customers"):
        validate(orders, "orders")


def test_requested_ids_are_read_as_the_ids_a_model_knows():
    known = {"7", "x", "8.0"}
    ids, read_as = ids_as_known(["7.0", "8.0", "x", "7", "9.0", "7.5"], known)
    # "8.0" is known as it is (a model trained on a column with text ids); "9" is unknown either way
    assert ids == ["7", "8.0", "x", "7", "9.0", "7.5"]
    assert read_as == {"7.0": "7"}
