"""serving/store/alerts.py: volume alerts and their outbox, on SQLite and (when reachable) PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from serving.store.alerts import AlertStore, VolumeAlert, alert_id_for


@pytest.fixture
def store(database):
    db, schema = database
    return AlertStore(db, schema=schema)


def _alert(minute: int, created: datetime, direction: str = "surge") -> VolumeAlert:
    return VolumeAlert(
        series_id="web",
        ds=datetime(2024, 1, 9, 14, minute),
        y=412.0,
        expected=180.0,
        lo=120.0,
        hi=260.0,
        score=0.99999,
        direction=direction,
        reason="412 orders in 5 min, expected 180 (95% up to 260): +129%",
        created_at=created,
    )


def test_an_alert_sent_twice_is_stored_once_with_a_stable_id(store):
    now = datetime.now(UTC)
    assert store.add([_alert(0, now)], deliver=False) == 1
    assert store.add([_alert(0, now + timedelta(seconds=1))], deliver=False) == 0
    rows = store.since(now - timedelta(minutes=1))
    assert len(rows) == 1
    assert rows[0]["alert_id"] == alert_id_for("web", datetime(2024, 1, 9, 14, 0))
    assert (rows[0]["y"], rows[0]["direction"], rows[0]["delivery"]) == (412.0, "surge", "none")


def test_since_returns_alerts_created_at_or_after_it_oldest_first(store):
    t0 = datetime(2024, 1, 9, 15, 0, tzinfo=UTC)
    store.add([_alert(5, t0 + timedelta(minutes=2)), _alert(0, t0)], deliver=False)
    assert [r["ds"].minute for r in store.since(t0)] == [0, 5]
    assert [r["ds"].minute for r in store.since(t0 + timedelta(minutes=1))] == [5]
    assert store.since(t0 + timedelta(minutes=3)) == []


def test_the_outbox_holds_an_alert_until_it_is_delivered(store):
    now = datetime.now(UTC)
    store.add([_alert(0, now)], deliver=True)
    (row,) = store.due(now + timedelta(seconds=1))
    store.failed(row["alert_id"], "ConnectionRefusedError", now + timedelta(minutes=5))
    assert store.due(now + timedelta(minutes=1)) == []
    assert store.pending_count() == 1
    (again,) = store.due(now + timedelta(minutes=6))
    assert (again["attempts"], again["last_error"]) == (1, "ConnectionRefusedError")
    store.delivered(row["alert_id"], now + timedelta(minutes=6))
    assert store.pending_count() == 0 and store.due(now + timedelta(days=1)) == []
    (final,) = store.since(now - timedelta(minutes=1))
    assert (final["delivery"], final["attempts"], final["last_error"]) == ("delivered", 2, None)
