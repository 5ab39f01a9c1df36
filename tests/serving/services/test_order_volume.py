"""serving/services/order_volume.py: accepted orders counted per series and step, closed by event time."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from serving.services.order_volume import OrderVolume, parse_event_keys
from serving.store.db import Database
from serving.store.volume_counts import VolumeCountStore


def _order(minute: int, channel: str = "web", hour: int = 10, year: int = 2024) -> SimpleNamespace:
    return SimpleNamespace(created_at=datetime(year, 1, 1, hour, minute), channel=channel, region=None)


NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def volume(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'audit.db'}")
    yield OrderVolume(("channel",), "5min", VolumeCountStore(db), clock=lambda: NOW)
    db.dispose()


def _add(volume: OrderVolume, orders: list) -> list:
    """Count ``orders`` (as the events transaction does), then close and return every due step's points."""
    with volume.store.database.connection() as conn:
        volume.count_in(conn, orders)
    closed = []
    for sid in volume.due():
        pending = volume.pending(sid)
        if pending is None:  # a series none of whose steps is due yet
            continue
        claim, points = pending
        with volume.store.database.connection() as conn:
            volume.claim(conn, claim)
        closed += points
    return closed


def test_a_step_is_judged_once_the_newest_order_is_a_whole_step_past_its_end(volume):
    assert _add(volume, [_order(0), _order(1), _order(4), _order(6)]) == []  # 10:00 open until 10:10
    closed = _add(volume, [_order(10)])
    assert [(p.series_id, p.ds, p.y) for p in closed] == [("channel=web", datetime(2024, 1, 1, 10, 0), 3)]


def test_silent_series_and_empty_steps_count_zero_and_late_orders_are_not_rejudged(volume):
    _add(volume, [_order(0, "web"), _order(2, "app")])
    closed = _add(volume, [_order(21, "web")])  # the app channel goes silent; web keeps ordering
    by_series = {}
    for p in closed:
        by_series.setdefault(p.series_id, []).append((p.ds.minute, p.y))
    assert by_series == {
        "channel=web": [(0, 1), (5, 0), (10, 0)],
        "channel=app": [(0, 1), (5, 0), (10, 0)],
    }
    assert _add(volume, [_order(3, "web")]) == []
    assert volume.late == 1


def test_an_order_created_after_the_wall_clock_is_not_counted_and_leaves_detection_on(volume):
    with volume.store.database.connection() as conn:
        counted = volume.count_in(conn, [_order(0), _order(1, year=2025), _order(2)])
    assert (counted.late, counted.future, sum(counted.steps.values())) == (0, 1, 2)
    assert _add(volume, [_order(10)])[0].y == 2  # the 10:00 step: the two orders of 2024, judged
    assert volume.late == 0


def _at(when: datetime) -> SimpleNamespace:
    return SimpleNamespace(created_at=when, channel="web", region=None)


def test_a_lone_order_far_ahead_does_not_move_the_watermark_so_later_orders_are_still_judged(volume):
    _add(volume, [_order(0), _order(1)])
    far = _at(datetime(2024, 3, 1, 9, 0))  # months ahead of the stream, but before the wall clock
    with volume.store.database.connection() as conn:
        counted = volume.count_in(conn, [far])
    assert volume.watermark() == datetime(2024, 1, 1, 10, 0)
    assert volume.ahead(counted) == 1
    closed = _add(volume, [_order(7), _order(12)])  # the real stream goes on: judged, none late
    assert [(p.ds.minute, p.y) for p in closed] == [(0, 2)]  # 10:05 waits for an order at 10:15
    assert volume.late == 0


def test_a_lone_order_far_ahead_that_comes_first_does_not_make_the_earlier_stream_late(volume):
    assert _add(volume, [_at(datetime(2024, 3, 1, 9, 0))]) == []  # the first order ever, dated months ahead
    closed = _add(volume, [_order(0), _order(1), _order(7), _order(12)])
    assert [(p.ds.minute, p.y) for p in closed] == [(0, 2)]
    assert volume.late == 0 and volume.watermark() == datetime(2024, 1, 1, 10, 10)


def test_a_jump_confirmed_by_a_second_order_moves_the_watermark(volume):
    _add(volume, [_order(0)])
    assert _add(volume, [_at(datetime(2024, 1, 3, 8, 0))]) == []  # after two silent days, alone: waits
    closed = _add(volume, [_at(datetime(2024, 1, 3, 8, 11))])  # a second order confirms the jump
    assert volume.watermark() == datetime(2024, 1, 3, 8, 10)
    assert closed[0].ds == datetime(2024, 1, 1, 10, 0) and closed[-1].ds == datetime(2024, 1, 3, 8, 0)
    assert sum(p.y for p in closed) == 2 and len(closed) == 2 * 288 - 2 * 12 + 1


def test_event_keys_are_checked():
    assert parse_event_keys(None) is None and parse_event_keys("total") == ()
    assert parse_event_keys("channel, region") == ("channel", "region")
    with pytest.raises(ValueError, match=r"unknown order fields \['sku'\]"):
        parse_event_keys("channel,sku")
