"""serving/store/checks.py: nothing out of bounds is stored, and stored rows out of bounds are skipped on read."""

from datetime import datetime

import pytest
from sqlalchemy import text

from serving.store.db import Database
from serving.store.events import Actual, EventStore, LabelEvent, OrderEvent


@pytest.fixture
def store(tmp_path):
    skipped: list[tuple[str, int]] = []
    db = Database(f"sqlite:///{tmp_path / 'events.db'}")
    events = EventStore(db, on_skip=lambda table, n: skipped.append((table, n)))
    events.skipped = skipped
    yield events
    db.dispose()


def _order(order_id="o1", created_at=datetime(2011, 7, 1, 10), quantity=2.0, price=1.5):
    return OrderEvent(order_id, created_at, "c1", (("sku-a", quantity, price),), "UK")


@pytest.mark.parametrize(
    ("order", "message"),
    [
        (_order(created_at=datetime(16, 11, 14, 8, 29, 36)), "created_at: 0016-11-14T08:29:36 is outside"),
        (_order(order_id="o\x00"), "order_id 'o\\x00' contains the control character U+0000"),
        (_order(quantity=5e-324), "lines[0].quantity: 5e-324 is outside [0.001, 1e+06]"),
        (_order(price=float("nan")), "lines[0].unit_price: nan is not finite"),
    ],
)
def test_an_order_out_of_bounds_is_refused_before_anything_is_stored(store, order, message):
    with pytest.raises(ValueError, match="refusing to store the order") as info:
        store.add_orders([order, _order("o2")])
    assert message in str(info.value)
    assert store.high_water_mark() == (0, 0)


def test_labels_and_actuals_out_of_bounds_are_refused(store):
    with pytest.raises(ValueError, match="labeled_at: 2201-01-01T00:00:00 is outside"):
        store.add_labels([LabelEvent("o1", 1, datetime(2201, 1, 1))])
    with pytest.raises(ValueError, match=r"y: 10000000000000.0 is outside \[0, 1e\+12\]"):
        store.upsert_actuals([Actual("s1", datetime(2015, 1, 1), 1e13)])
    assert store.count_actuals() == 0


def test_stored_rows_out_of_bounds_are_skipped_on_read_and_reported(store):
    store.add_orders([_order("good")])
    with store.database.connection() as conn:
        conn.execute(
            text(
                "INSERT INTO order_events (order_id, customer_id, created_at, n_lines, content_hash, received_at) "
                "VALUES ('bad', 'c1', '0016-11-14 08:29:36', 2, 'x', '2026-01-01 00:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO order_event_lines (order_id, line_no, sku, quantity, unit_price) VALUES "
                "('bad', 0, 's', 1, 1), ('bad', 1, 's', 1, 1)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO label_events (order_id, label, labeled_at, received_at) "
                "VALUES ('bad', 1, '9999-12-31 00:00:00', '2026-01-01 00:00:00')"
            )
        )
    lines = store.order_lines()
    assert lines["order_id"].tolist() == ["good"]
    assert store.label_table().empty
    assert store.skipped == [("order_events", 2), ("label_events", 1)]
