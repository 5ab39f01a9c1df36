"""serving/store/events.py on SQLite and, when one answers at 127.0.0.1:5432 (database ``test``), PostgreSQL."""

import threading
import uuid
from datetime import datetime

import pytest

from serving.store.db import Database
from serving.store.events import Actual, EventStore, LabelEvent, OrderEvent


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request, pg_url, tmp_path):
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'events.db'}")
        yield EventStore(db)
        db.dispose()
        return
    url = pg_url
    if url is None:
        pytest.skip("no PostgreSQL server reachable")
    import psycopg

    schema = f"orderpulse_test_{uuid.uuid4().hex[:12]}"
    db = Database(url)
    try:
        yield EventStore(db, schema=schema)
    finally:
        db.dispose()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _order(order_id="o1", quantity=2.0, customer="c1"):
    return OrderEvent(
        order_id, datetime(2011, 7, 1, 10), customer, (("sku-a", quantity, 1.5), ("sku-b", 1.0, 3.0)), "UK"
    )


def test_new_orders_are_accepted_and_read_back_as_order_lines(store):
    assert store.add_orders([_order("o1"), _order("o2", customer=None)]) == ["accepted", "accepted"]
    lines = store.order_lines()
    assert lines["order_id"].tolist() == ["o1", "o1", "o2", "o2"]
    assert lines["sku"].tolist() == ["sku-a", "sku-b", "sku-a", "sku-b"]
    assert lines["quantity"].tolist() == [2.0, 1.0, 2.0, 1.0]
    assert lines["customer_id"].isna().tolist() == [False, False, True, True]
    assert str(lines["created_at"].dtype) == "datetime64[ns]" and lines["created_at"].iloc[0] == datetime(
        2011, 7, 1, 10
    )


def test_the_same_order_again_is_a_duplicate_and_a_changed_one_a_conflict(store):
    store.add_orders([_order()])
    assert store.add_orders([_order(), _order(quantity=5.0)]) == ["duplicate", "conflict"]
    assert store.high_water_mark() == (1, 0) and len(store.order_lines()) == 2


def test_a_repeat_within_one_batch_is_classified_against_the_first(store):
    assert store.add_orders([_order(), _order(), _order(quantity=9.0)]) == [
        "accepted",
        "duplicate",
        "conflict",
    ]


def test_labels_are_idempotent_on_order_id(store):
    label = LabelEvent("o1", 1, datetime(2011, 7, 5))
    assert store.add_labels([label]) == ["accepted"]
    assert store.add_labels([label, LabelEvent("o1", 0, datetime(2011, 7, 5))]) == ["duplicate", "conflict"]
    table = store.label_table()
    assert table[["order_id", "label"]].values.tolist() == [["o1", 1]] and store.high_water_mark() == (0, 1)


def test_concurrent_writers_of_the_same_order_store_it_once(store):
    statuses, barrier = [], threading.Barrier(4)

    def write():
        barrier.wait()
        statuses.extend(store.add_orders([_order("race")]))

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses).count("accepted") >= 1 and "conflict" not in statuses
    assert store.high_water_mark() == (1, 0) and len(store.order_lines()) == 2


def test_actuals_insert_update_and_duplicate(store):
    day = datetime(2015, 6, 20)
    assert store.upsert_actuals([Actual("88", day, 10.0)]) == ["inserted"]
    assert store.upsert_actuals([Actual("88", day, 10.0), Actual("88", datetime(2015, 6, 21), 0.0, 0)]) == [
        "duplicate",
        "inserted",
    ]
    assert store.upsert_actuals([Actual("88", day, 12.0)]) == ["updated"]
    table = store.actuals_for(["88", "89"])
    assert table[["series_id", "y", "open"]].values.tolist() == [["88", 12.0, 1], ["88", 0.0, 0]]
    with store.database.connection(begin=False) as conn:
        revisions = (
            conn.execute(store.actuals.select().where(store.actuals.c.ds == day))
            .mappings()
            .one()["revisions"]
        )
    assert revisions == 1


def test_a_later_row_of_one_batch_wins(store):
    day = datetime(2015, 6, 20)
    assert store.upsert_actuals([Actual("88", day, 1.0), Actual("88", day, 2.0)]) == ["inserted", "updated"]
    assert store.actuals_for(["88"])["y"].tolist() == [2.0]


def test_empty_tables_read_as_empty_typed_frames(store):
    assert store.order_lines().empty and store.label_table().empty
    assert str(store.actuals_for(["88"])["ds"].dtype) == "datetime64[ns]"
    assert store.high_water_mark() == (0, 0)
