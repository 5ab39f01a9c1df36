"""serving/store/volume_counts.py: order counts of open volume steps shared by workers and kept across restarts,
on SQLite and (when reachable) PostgreSQL: two workers count together, a restart keeps the open counts, a step
is judged exactly once, a late order is counted as late, and counts roll back with the orders' transaction."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest

from serving.services.order_volume import OrderVolume
from serving.services.volume import VolumeService
from serving.store.alerts import AlertStore
from serving.store.db import Database
from serving.store.volume_counts import VolumeCountStore
from serving.store.volume_state import VolumeStateStore
from training.volume.detector import VolumeDetector

T0 = datetime(2024, 1, 1, 10, 0)


def _order(minute: float, channel: str = "web") -> SimpleNamespace:
    return SimpleNamespace(created_at=T0 + timedelta(minutes=minute), channel=channel, region=None)


def _worker(db: Database, schema: str | None) -> VolumeService:
    """One worker (process) of the service: its own detector, stores on the shared database."""
    alerts, states = AlertStore(db, schema=schema), VolumeStateStore(db, schema=schema)
    orders = OrderVolume(("channel",), "5min", VolumeCountStore(db, schema=schema))
    return VolumeService(VolumeDetector(freq="5min", warmup="1d"), alerts, None, None, orders, states)


def _post(worker: VolumeService, orders: list) -> list[dict]:
    """What ``POST /v1/events`` does: count inside the orders' transaction, then close what is due."""
    with worker.store.database.connection() as conn:
        worker.count_orders_in(conn, orders)
    return worker.close_order_steps()


@pytest.fixture
def two_workers(database):
    """Two workers on one database, each through its own engine (as two uvicorn processes are)."""
    db, schema = database
    other = Database(db.url)
    yield _worker(db, schema), _worker(other, schema), (db, schema)
    other.dispose()


def _counts(verdicts: list[dict]) -> list[tuple[str, int, float]]:
    return [(v["series_id"], v["ds"].minute, v["y"]) for v in verdicts]


def test_two_workers_count_the_same_step_together(two_workers):
    a, b, _ = two_workers
    assert _post(a, [_order(0), _order(1)]) == []
    assert _post(b, [_order(3), _order(4.5)]) == []  # same step, other worker
    closed = _post(a, [_order(10)])  # 10:10 closes 10:00-10:05 (a whole step of grace)
    assert [(v["series_id"], v["ds"], v["status"]) for v in closed] == [("channel=web", T0, "warmup")]
    assert a.detector.series_state("channel=web")[0][1] == 1.0  # one point seen, with y = 4
    assert a.orders.store.open_counts("channel=web", T0, T0 + timedelta(hours=1)) == {
        T0 + timedelta(minutes=10): 1
    }
    assert _post(b, []) == []  # nothing left to judge for the other worker


def test_the_judged_counts_are_what_both_workers_counted(two_workers):
    a, b, _ = two_workers
    _post(a, [_order(0), _order(6), _order(7)])
    _post(b, [_order(1), _order(2), _order(8)])
    closed = _post(b, [_order(15)])
    assert [(v["ds"].minute, v["status"]) for v in closed] == [(0, "warmup"), (5, "warmup")]
    store = a.orders.store  # the counts of the judged steps are gone, the open one stays
    assert store.open_counts("channel=web", T0, T0 + timedelta(hours=1)) == {T0 + timedelta(minutes=15): 1}
    alone = VolumeDetector(freq="5min", warmup="1d")
    for minute in (0, 5):
        alone.update("channel=web", T0 + timedelta(minutes=minute), 3.0)  # 3 orders each, from both workers
    assert b.detector.series_state("channel=web")[0].tolist() == alone.series_state("channel=web")[0].tolist()


def test_a_restart_keeps_the_open_counts(database):
    db, schema = database
    _post(_worker(db, schema), [_order(0), _order(1), _order(2)])
    restarted = Database(db.url)  # a new process: nothing in memory, the same database
    try:
        worker = _worker(restarted, schema)
        _post(worker, [_order(4)])
        closed = _post(worker, [_order(11)])
        assert [(v["ds"], v["status"]) for v in closed] == [(T0, "warmup")]
        state = worker.detector.series_state("channel=web")[0]
        fresh = VolumeDetector(freq="5min", warmup="1d")
        fresh.update("channel=web", T0, 4.0)
        assert state.tolist() == fresh.series_state("channel=web")[0].tolist()  # judged with y = 4
    finally:
        restarted.dispose()


def test_concurrent_workers_judge_every_step_once(two_workers):
    """Both workers keep posting orders of two channels at once: every step of each channel is judged by exactly
    one of them, and every order is judged once, counted late (its step was closed by the other worker's newer
    orders) or still open: none lost, none counted twice."""
    a, b, _ = two_workers
    results: dict[str, list] = {"a": [], "b": []}
    plan = {"a": [], "b": []}
    for minute in range(0, 120):
        for channel, name in (("web", "a"), ("app", "b"), ("web", "b")):
            plan[name].append(_order(minute + 0.5, channel))

    errors: list[BaseException] = []

    def run(name, worker):
        orders = plan[name]
        try:
            for i in range(0, len(orders), 6):
                results[name] += _post(worker, orders[i : i + 6])
        except BaseException as exc:  # a worker that dies must fail the test, not lose its orders quietly
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n, w)) for n, w in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    verdicts = [v for r in results.values() for v in r if v["status"] != "already_seen"]
    judged = sorted((v["series_id"], v["ds"]) for v in verdicts)
    assert len(judged) == len(set(judged))  # no step twice
    assert judged == sorted(
        (f"channel={c}", T0 + timedelta(minutes=m)) for c in ("web", "app") for m in range(0, 110, 5)
    )  # every step up to two steps before the newest order
    store = a.orders.store
    still_open = sum(
        sum(store.open_counts(f"channel={c}", T0, T0 + timedelta(days=1)).values()) for c in ("web", "app")
    )
    assert sum(v["y"] for v in verdicts) + store.late() + still_open == 3 * 120
    for channel in ("web", "app"):  # the stored state is the one of a detector judging exactly those counts
        fresh = VolumeDetector(freq="5min", warmup="1d")
        for v in sorted(
            (v for v in verdicts if v["series_id"] == f"channel={channel}"), key=lambda v: v["ds"]
        ):
            fresh.update(v["series_id"], v["ds"], v["y"])
        stored = a.states.load(f"channel={channel}").state
        assert stored.tolist() == fresh.series_state(f"channel={channel}")[0].tolist()


def test_an_order_for_a_judged_step_is_late_and_not_judged_again(two_workers):
    a, b, _ = two_workers
    _post(a, [_order(0), _order(11)])
    assert _post(b, [_order(2)]) == [] and b.orders.late == 1 and a.orders.late == 1


def test_counts_roll_back_with_the_orders_transaction(database):
    db, schema = database
    worker = _worker(db, schema)
    with pytest.raises(RuntimeError, match="storing the orders failed"), db.connection() as conn:
        worker.count_orders_in(conn, [_order(0), _order(1)])
        raise RuntimeError("storing the orders failed")
    assert worker.orders.watermark() is None and worker.orders.store.cursor("channel=web") is None
