"""features/labels.py: the "cancelled/returned within N days" rule on hand-built orders and events."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.errors import DataValidationError
from features.labels import outcome_labels
from features.validation import validate


def _orders(rows: list[tuple]) -> pd.DataFrame:
    """rows: (order_id, created_at, customer_id, sku)."""
    df = pd.DataFrame(rows, columns=["order_id", "created_at", "customer_id", "sku"])
    return validate(df.assign(quantity=1, unit_price=1.0), "orders")[0]


@pytest.fixture
def orders() -> pd.DataFrame:
    return _orders(
        [
            ("o1", "2024-01-01 09:00", "c1", "a"),
            ("o1", "2024-01-01 09:00", "c1", "b"),
            ("o2", "2024-01-01 12:00", "c2", "a"),
            ("o3", "2024-01-20 08:00", "c1", "b"),
            ("o4", "2024-02-25 10:00", "c3", "a"),
            ("o5", "2024-02-28 10:00", None, "a"),  # a guest
        ]
    )


def _as_dict(labels: pd.DataFrame) -> dict[str, tuple[int, str]]:
    return {r.order_id: (int(r.label), str(r.labeled_at)) for r in labels.itertuples()}


def test_order_id_events_label_within_the_window_and_leave_open_windows_pending(orders):
    events = pd.DataFrame(
        {
            "order_id": ["o1", "o2", "o5", "o9", None],
            "event_at": ["2024-01-05 10:00", "2024-02-15", "2024-03-01", "2024-01-02", "2024-01-03"],
        }
    )
    labels, pending, report = outcome_labels(orders, events, window_days=30)
    assert _as_dict(labels) == {
        "o1": (1, "2024-01-05 10:00:00"),  # cancelled on day 4
        "o2": (0, "2024-01-31 12:00:00"),  # returned after its window closed: 0 when the window closed
        "o3": (0, "2024-02-19 08:00:00"),  # no event, window closed before the data's end
        "o5": (1, "2024-03-01 00:00:00"),  # positive as soon as the event happens, window still open
    }
    assert labels["order_id"].tolist() == ["o1", "o2", "o3", "o5"]  # by creation time
    assert pending.to_dict("records") == [
        {
            "order_id": "o4",
            "created_at": pd.Timestamp("2024-02-25 10:00"),
            "window_closes_at": pd.Timestamp("2024-03-26 10:00"),
        }
    ]
    assert report.as_of == "2024-03-01 00:00:00"  # the latest time in orders and events
    assert (report.orders, report.labels, report.positives, report.negatives) == (5, 4, 2, 2)
    assert report.pending_window_open == 1
    assert report.events_without_key == 1
    assert report.events_matching_no_order == 2  # o2's late return and the unknown o9
    assert "1 orders pending (window still open, not labelled)" in str(report)
    clean, vreport = validate(labels, "labels")
    assert vreport.repairs == {} and len(clean) == 4


def test_window_bounds_are_inclusive_for_order_id_events(orders):
    events = pd.DataFrame({"order_id": ["o1", "o3"], "event_at": ["2024-01-01 09:00", "2024-02-19 08:00"]})
    labels = outcome_labels(orders, events, window_days=30, as_of="2024-12-31").labels
    assert _as_dict(labels)["o1"] == (1, "2024-01-01 09:00:00")  # at creation
    assert _as_dict(labels)["o3"] == (1, "2024-02-19 08:00:00")  # exactly when the window closes


def test_as_of_decides_which_windows_are_closed(orders):
    events = pd.DataFrame({"order_id": ["o1"], "event_at": ["2024-01-05"]})
    early = outcome_labels(orders, events, window_days=30, as_of="2024-02-01")
    assert early.labels["order_id"].tolist() == ["o1", "o2"]
    assert early.pending["order_id"].tolist() == ["o3", "o4", "o5"]
    late = outcome_labels(orders, events, window_days=30, as_of="2024-12-31")
    assert late.pending.empty and len(late.labels) == 5


def test_customer_and_sku_events_label_every_order_of_that_customer_with_that_sku(orders):
    events = pd.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3", None],
            "sku": ["b", "a", "b", "a"],
            "event_at": ["2024-01-25", "2024-01-01 12:00", "2024-03-01", "2024-01-02"],
        }
    )
    labels, pending, report = outcome_labels(orders, events, window_days=30)
    assert _as_dict(labels) == {
        "o1": (1, "2024-01-25 00:00:00"),  # c1 bought b on Jan 1: the Jan 25 return is within 30 days
        "o2": (0, "2024-01-31 12:00:00"),  # the c2 event at the very time of the order does not count
        "o3": (1, "2024-01-25 00:00:00"),  # c1 bought b again on Jan 20: the same return matches it too
    }
    assert pending["order_id"].tolist() == ["o4"]  # c3 bought a, the event is about b
    assert report.guest_orders_unlabelable == 1 and report.orders == 5
    assert report.events_without_key == 1 and report.events_matching_no_order == 2


def test_events_whose_customer_was_exported_as_whole_floats_match_and_are_counted():
    orders = _orders([("o1", "2024-01-01 09:00", "14911", "a"), ("o2", "2024-01-02 09:00", None, "a")])
    events = pd.DataFrame(
        {"customer_id": [14911.0, np.nan], "sku": ["a", "a"], "event_at": ["2024-01-10", "2024-01-11"]}
    )
    labels, _, report = outcome_labels(orders, events, window_days=30)
    assert _as_dict(labels) == {"o1": (1, "2024-01-10 00:00:00")}
    assert report.ids_whole_float_repaired == 1 and report.events_without_key == 1
    assert "1 event ids written as whole floats made integer text" in str(report)


def test_events_read_from_a_csv_with_whole_float_customers_match_orders(tmp_path):
    # read_frame reads a CSV's id columns as pandas strings: "14911.0" must still become "14911"
    from features.io import read_frame

    orders = _orders([("o1", "2024-01-01 09:00", "14911", "a"), ("o2", "2024-01-02 09:00", "14912", "a")])
    path = tmp_path / "events.csv"
    path.write_text("event_at,customer_id,sku\n2024-01-10,14911.0,a\n2024-01-11,,a\n")
    events = read_frame(path, "events")
    assert isinstance(events["customer_id"].dtype, pd.StringDtype)
    labels, _, report = outcome_labels(orders, events, window_days=30, as_of="2024-03-01")
    assert _as_dict(labels) == {"o1": (1, "2024-01-10 00:00:00"), "o2": (0, "2024-02-01 09:00:00")}
    assert (report.ids_whole_float_repaired, report.events_matching_no_order) == (1, 0)


def test_event_ids_written_two_ways_are_one_order_and_the_merge_is_counted():
    orders = _orders(
        [("536365", "2024-01-01 09:00", "14911", "a"), ("536366", "2024-01-02 09:00", None, "a")]
    )
    events = pd.DataFrame({"order_id": ["536365.0", "536365", "536366.0"], "event_at": ["2024-01-05"] * 3})
    labels, _, report = outcome_labels(orders, events, window_days=30)
    assert _as_dict(labels) == {"536365": (1, "2024-01-05 00:00:00"), "536366": (1, "2024-01-05 00:00:00")}
    assert (report.ids_whole_float_repaired, report.ids_merged_by_repair) == (2, 2)
    assert "2 event ids written as whole floats made integer text (2 distinct ids as sent merged" in str(
        report
    )


def test_online_retail_adapter_uses_the_same_rule():
    from features.adapters.online_retail import exception_labels

    orders = _orders([("o1", "2024-01-01", "c1", "a"), ("o2", "2024-03-01", "c1", "a")])
    cancellations = pd.DataFrame(
        {"customer_id": ["c1"], "sku": ["a"], "cancelled_at": pd.to_datetime(["2024-01-10"])}
    )
    labels = exception_labels(orders, cancellations, window_days=30)
    # the adapter closes every window (its data is historical): o2's window ends after the data, still 0
    assert _as_dict(labels) == {"o1": (1, "2024-01-10 00:00:00"), "o2": (0, "2024-03-31 00:00:00")}


def test_events_without_a_time_column_are_refused_with_the_fix(orders):
    with pytest.raises(DataValidationError, match=r"events\.event_at.*required column is missing"):
        outcome_labels(orders, pd.DataFrame({"order_id": ["o1"], "cancelled_at": ["2024-01-02"]}))


def test_events_without_order_or_customer_and_sku_are_refused(orders):
    with pytest.raises(DataValidationError, match=r"neither the order nor the customer and SKU"):
        outcome_labels(orders, pd.DataFrame({"sku": ["a"], "event_at": ["2024-01-02"]}))


def test_unparseable_event_times_are_refused_with_count_and_rows(orders):
    events = pd.DataFrame({"order_id": ["o1", "o2"], "event_at": ["2024-01-02", "soon"]})
    with pytest.raises(DataValidationError, match=r"event_at.*unparseable.*1 row"):
        outcome_labels(orders, events)


def test_window_must_be_positive(orders):
    with pytest.raises(ValueError, match=r"window_days must be a positive number.*Got 0"):
        outcome_labels(orders, pd.DataFrame({"order_id": ["o1"], "event_at": ["2024-01-02"]}), window_days=0)
