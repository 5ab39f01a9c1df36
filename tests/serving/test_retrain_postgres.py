"""orderpulse/jobs/retrain.py on PostgreSQL: the advisory lock of a PostgreSQL registry, and the events a service
stored in PostgreSQL read back for a retrain (a schema of its own, dropped afterwards)."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

from orderpulse.jobs.retrain import RegistryBusyError, read_events, registry_lock
from serving.store.db import Database
from serving.store.events import Actual, EventStore, LabelEvent, OrderEvent

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_schema_url(pg_url):
    """A URL whose connections use a fresh schema (``search_path``), dropped afterwards."""
    if pg_url is None:
        pytest.skip("no PostgreSQL server reachable")
    import psycopg

    schema = f"orderpulse_retrain_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in pg_url else "?"
    try:
        yield f"{pg_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_advisory_lock_excludes_a_second_holder_and_is_released(pg_url):
    if pg_url is None:
        pytest.skip("no PostgreSQL server reachable")
    name = f"rt-pg-{uuid.uuid4().hex[:8]}-forecast"
    with registry_lock(name, timeout=0, uri=pg_url) as what:
        assert what.startswith("advisory lock ")
        with (
            pytest.raises(
                RegistryBusyError, match=f"another retrain of {name} holds the PostgreSQL advisory lock"
            ),
            registry_lock(name, timeout=0.3, uri=pg_url),
        ):
            pass
        with registry_lock(f"{name}-other", timeout=0, uri=pg_url):  # another model: its own lock
            pass
    with registry_lock(name, timeout=0, uri=pg_url):
        pass


def test_events_stored_in_postgres_are_read_back_for_a_retrain(pg_schema_url):
    database = Database(pg_schema_url)
    store = EventStore(database)
    store.upsert_actuals([Actual("a", datetime(2024, 5, 20), 3.0), Actual("b", datetime(2024, 5, 20), 4.0)])
    store.upsert_actuals([Actual("a", datetime(2024, 5, 20), 5.0)])  # a correction: the latest value is read
    store.add_orders([OrderEvent("o1", datetime(2024, 5, 20, 9), "c1", (("x", 2.0, 1.5), ("y", 1.0, 3.0)))])
    store.add_labels([LabelEvent("o1", 1, datetime(2024, 5, 22))])
    database.dispose()

    actuals = read_events(pg_schema_url, "actuals")
    assert list(zip(actuals["series_id"], actuals["y"], strict=True)) == [("a", 5.0), ("b", 4.0)]
    orders = read_events(pg_schema_url, "orders")
    assert list(zip(orders["order_id"], orders["sku"], orders["quantity"], strict=True)) == [
        ("o1", "x", 2.0),
        ("o1", "y", 1.0),
    ]
    labels = read_events(pg_schema_url, "labels")
    assert labels[["order_id", "label"]].values.tolist() == [["o1", 1]]
