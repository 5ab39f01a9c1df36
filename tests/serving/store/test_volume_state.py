"""serving/store/volume_state.py: the volume detector's state shared by workers and kept across restarts, on
SQLite and (when reachable) PostgreSQL: compare-and-swap, several workers agreeing, a restart resuming."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from serving.services.volume import VolumeService
from serving.store.alerts import AlertStore
from serving.store.volume_state import SeriesState, StateConflict, VolumeStateStore
from training.volume.detector import VolumeDetector
from training.volume.reasons import AlertMemory


@pytest.fixture
def stores(database):
    db, schema = database
    return AlertStore(db, schema=schema), VolumeStateStore(db, schema=schema)


def _points(n=340, surge=range(300, 306), seed=0):
    """A day and some hours of flat 5-minute Poisson counts, with a 30-minute 4x surge on the second day."""
    ds = pd.date_range("2024-01-01", periods=n, freq="5min")
    y = np.random.default_rng(seed).poisson(100, n).astype(float)
    y[list(surge)] *= 4
    return [
        SimpleNamespace(series_id="web", ds=d.to_pydatetime(), y=v, open=1)
        for d, v in zip(ds, y, strict=True)
    ]


def _worker(stores):
    alerts, states = stores
    return VolumeService(VolumeDetector(freq="5min", warmup="1d"), alerts, None, None, None, states)


def _alone(points):
    det = VolumeDetector(freq="5min", warmup="1d")
    return [det.update(p.series_id, p.ds, p.y) for p in points]


def test_a_state_round_trips_and_a_stale_write_is_refused(stores):
    alerts, states = stores
    memory = AlertMemory()
    memory.alerts.append((pd.Timestamp("2024-01-02 01:00"), "surge", 1.25))
    new = SeriesState(0, np.arange(5.0), memory, 1)
    with states.database.connection() as conn:
        assert states.save(conn, "web", 0, new) == 1
    got = states.load("web")
    assert got.version == 1 and got.alerts == 1
    np.testing.assert_array_equal(got.state, np.arange(5.0))
    assert list(got.memory.alerts) == [(pd.Timestamp("2024-01-02 01:00"), "surge", 1.25)]
    for stale in (0, 2):  # a second first write, and a version nobody wrote
        with pytest.raises(StateConflict), states.database.connection() as conn:
            states.save(conn, "web", stale, new)
    assert states.version("web") == 1 and states.version("other") == 0


def test_two_workers_taking_turns_judge_like_one_detector(stores):
    points = _points()
    want = _alone(points)
    a, b = _worker(stores), _worker(stores)
    got = []
    for i in range(0, len(points), 7):  # requests of 7 points, alternating between the workers
        got += (a if (i // 7) % 2 == 0 else b).observe(points[i : i + 7])
    np.testing.assert_allclose([v["expected"] for v in got], [w["expected"] for w in want])
    assert [v["alert"] for v in got] == [w["alert"] for w in want]
    n_alerts = sum(w["alert"] for w in want)
    assert n_alerts >= 1 and len(stores[0].since(datetime(2000, 1, 1, tzinfo=UTC))) == n_alerts
    assert stores[1].version("web") == (len(points) + 6) // 7


def test_a_restarted_worker_resumes_without_a_second_warmup(stores):
    points = _points()
    _worker(stores).observe(points[:290])
    restarted = _worker(stores)  # a new process: fresh detector, same database
    got = restarted.observe(points[290:])
    assert [v["status"] for v in got] == ["judged"] * 50
    want = _alone(points)[290:]
    assert [v["alert"] for v in got] == [w["alert"] for w in want] and any(v["alert"] for v in got)
    assert restarted.observe(points[295:296])[0]["status"] == "already_seen"


def test_concurrent_workers_judge_every_point_once(stores):
    """Two workers sent the same requests at the same time: compare-and-swap makes one judge each point,
    the other finds it already seen; the alert is stored once."""
    points = _points()
    a, b = _worker(stores), _worker(stores)
    a.observe(points[:288])  # warm-up through one worker
    results: dict[str, list] = {"a": [], "b": []}

    def run(name, worker):
        for i in range(288, len(points), 4):
            results[name] += worker.observe(points[i : i + 4])

    threads = [threading.Thread(target=run, args=(n, w)) for n, w in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    judged = [v["ds"] for r in results.values() for v in r if v["status"] == "judged"]
    assert sorted(judged) == [pd.Timestamp(p.ds) for p in points[288:]]  # each point judged exactly once
    n_alerts = sum(w["alert"] for w in _alone(points))
    assert n_alerts >= 1 and sum(v.get("alert", False) for r in results.values() for v in r) == n_alerts
    assert len(stores[0].since(datetime(2000, 1, 1, tzinfo=UTC))) == n_alerts


def test_a_stored_state_of_another_grid_is_refused_with_the_fix(stores):
    _worker(stores).observe(_points(n=5, surge=()))
    alerts, states = stores
    hourly = VolumeService(VolumeDetector(freq="h", warmup="1d"), alerts, None, None, None, states)
    later = [SimpleNamespace(series_id="web", ds=datetime(2024, 1, 2), y=10.0, open=1)]
    with pytest.raises(ValueError, match=r"does not fit this detector .*Fix: serve the detector"):
        hourly.observe(later)
