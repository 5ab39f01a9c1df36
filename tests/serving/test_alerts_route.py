"""POST /v1/actuals with volume detection on: a verdict per point; GET /v1/alerts; /metrics counts."""

from __future__ import annotations

import numpy as np
import pandas as pd

AUTH = {"X-API-Key": "test-key"}


def _rows(n=320, spike_at=300):
    ds = pd.date_range("2024-01-01", periods=n, freq="5min")
    y = np.random.default_rng(0).poisson(100, n)
    y[spike_at : spike_at + 3] = 700  # 15 minutes: a run on the detector's one-hour short time scale
    return [{"series_id": "web", "ds": d.isoformat(), "y": int(v)} for d, v in zip(ds, y, strict=True)]


def test_posted_points_get_verdicts_and_the_alert_is_listed_and_counted(make_client, fakes):
    # a day of warm-up: the detector has learned the series' scale (288 points of 5 minutes) before it judges
    client = make_client(source=fakes.FakeSource({}), volume_freq="5min", volume_warmup="1d")
    rows = _rows()
    out = client.post("/v1/actuals", json={"actuals": rows[:290]}, headers=AUTH)
    assert out.status_code == 200, out.text
    first = out.json()
    assert (
        first["inserted"] == 0 and [v["status"] for v in first["volume"]] == ["warmup"] * 288 + ["judged"] * 2
    )
    out = client.post("/v1/actuals", json={"actuals": rows[290:]}, headers=AUTH).json()
    alerts = [v for v in out["volume"] if v["alert"]]
    assert len(alerts) == 1 and alerts[0]["ds"] in ("2024-01-02T01:00:00", "2024-01-02T01:05:00")
    assert alerts[0]["direction"] == "surge" and alerts[0]["reason"].startswith(
        "700 orders in 5 min, expected "
    )
    listed = client.get("/v1/alerts", params={"since": "2000-01-01T00:00:00"}, headers=AUTH)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert [a["ds"] for a in body["alerts"]] == [alerts[0]["ds"]]
    assert body["alerts"][0]["delivery"] == "none"
    later = client.get("/v1/alerts", params={"since": body["next_since"]}, headers=AUTH).json()
    assert later == {"alerts": [], "next_since": None}
    metrics = client.get("/metrics").text
    assert 'orderpulse_volume_alerts_total{direction="surge"} 1.0' in metrics
    assert 'orderpulse_volume_verdicts_total{status="warmup"} 288.0' in metrics


def test_alerts_are_404_with_the_fix_when_volume_detection_is_off(make_client, fakes):
    client = make_client(source=fakes.FakeSource({}))
    response = client.get("/v1/alerts", params={"since": "2024-01-01"}, headers=AUTH)
    assert response.status_code == 404
    assert "ORDERPULSE_VOLUME_FREQ" in response.json()["error"]["message"]


def test_a_bad_since_or_volume_setting_is_refused_clearly(make_client, fakes, make_settings):
    import pytest

    client = make_client(source=fakes.FakeSource({}), volume_freq="5min")
    assert client.get("/v1/alerts", params={"since": "yesterday"}, headers=AUTH).status_code == 422
    with pytest.raises(ValueError, match="Unsupported frequency '7min'"):
        make_settings(volume_freq="7min")
    with pytest.raises(ValueError, match="ORDERPULSE_ALERT_WEBHOOK_URL must be an http"):
        make_settings(alert_webhook_url="ftp://x")


def _order(i: int, minute: float, channel: str = "web") -> dict:
    created = pd.Timestamp("2024-01-01") + pd.Timedelta(minutes=minute)
    return {
        "order_id": f"o{i}",
        "customer_id": "c1",
        "created_at": created.isoformat() + "Z",
        "channel": channel,
        "lines": [{"sku": "A", "quantity": 1, "unit_price": 2.0}],
    }


def test_orders_posted_as_events_are_counted_and_judged_per_channel(make_client, fakes):
    client = make_client(
        source=fakes.FakeSource({}), volume_freq="5min", volume_warmup="1d", volume_event_keys="channel"
    )
    day = 24 * 60
    orders = [_order(i, i * 2.5) for i in range(int(day / 2.5) + 40)]  # two per 5 minutes for a day + 100 min
    burst = [_order(5000 + i, day + 100 + i * 0.05) for i in range(300)]  # then 15 minutes at 20 a minute
    burst += [_order(9000, day + 120)]  # a later order closes the burst's steps
    out = client.post("/v1/events", json={"orders": orders}, headers=AUTH)
    assert out.status_code == 200, out.text
    verdicts = out.json()["volume"]
    out = client.post("/v1/events", json={"orders": burst}, headers=AUTH)
    assert out.status_code == 200, out.text
    verdicts += out.json()["volume"]
    assert {v["series_id"] for v in verdicts} == {"channel=web"}
    assert [v["status"] for v in verdicts[:12]] == ["warmup"] * 12
    alerts = [v for v in verdicts if v["alert"]]
    assert [a["direction"] for a in alerts] == ["surge"]
    assert alerts[0]["ds"] in ("2024-01-02T01:40:00", "2024-01-02T01:45:00")
    assert alerts[0]["reason"].startswith("100 orders in 5 min, expected 2")
    again = client.post("/v1/events", json={"orders": orders[:5]}, headers=AUTH).json()
    assert again["orders"]["duplicate"] == 5 and again["volume"] == []


def test_a_planned_promo_posted_with_the_actuals_is_not_an_alert_but_the_same_surge_unplanned_is(
    make_client, fakes
):
    client = make_client(source=fakes.FakeSource({}), volume_freq="5min", volume_warmup="1d")
    rows = _rows(n=288 + 72, spike_at=0)[3:]  # a day of warm-up and six hours, no spike yet
    rows = [
        dict(r, y=int(v)) for r, v in zip(rows, np.random.default_rng(1).poisson(100, len(rows)), strict=True)
    ]
    promo = range(288, 300)  # an hour at 3x, planned
    unplanned = range(330, 342)  # the same hour-long surge later, not planned
    for i in [*promo, *unplanned]:
        rows[i]["y"] *= 3
    for i in promo:
        rows[i]["promo"] = 1
    out = client.post("/v1/actuals", json={"actuals": rows}, headers=AUTH)
    assert out.status_code == 200, out.text
    verdicts = out.json()["volume"]
    assert not any(verdicts[i]["flagged"] for i in promo)
    assert all("promo planned" in verdicts[i].get("reason") for i in promo if verdicts[i].get("reason"))
    assert any(verdicts[i].get("reason") for i in promo)
    alerts = [i for i, v in enumerate(verdicts) if v["alert"]]
    assert len(alerts) == 1 and alerts[0] in unplanned
    assert verdicts[alerts[0]]["direction"] == "surge"
    assert verdicts[alerts[0]].get("reason", "").endswith("no promo planned; first surge seen") or (
        "no known driver" in verdicts[alerts[0]].get("reason", "")
        or "no promo" in verdicts[alerts[0]].get("reason", "")
    )


def test_two_app_instances_on_one_database_file_count_orders_together(make_client, fakes):
    """Two workers (apps) on one audit database: orders of one step posted half to each are judged once, as
    one count; a third app started later (a restart) continues the open steps."""
    settings = {"volume_freq": "5min", "volume_warmup": "1d", "volume_event_keys": "channel"}
    a = make_client(source=fakes.FakeSource({}), **settings)
    b = make_client(source=fakes.FakeSource({}), **settings)
    assert (
        a.post("/v1/events", json={"orders": [_order(1, 0.5), _order(2, 1)]}, headers=AUTH).json()["volume"]
        == []
    )
    assert (
        b.post("/v1/events", json={"orders": [_order(3, 2), _order(4, 3)]}, headers=AUTH).json()["volume"]
        == []
    )
    restarted = make_client(source=fakes.FakeSource({}), **settings)
    assert restarted.post("/v1/events", json={"orders": [_order(5, 4)]}, headers=AUTH).json()["volume"] == []
    closed = b.post("/v1/events", json={"orders": [_order(6, 10.5)]}, headers=AUTH).json()["volume"]
    assert [(v["ds"], v["y"], v["status"]) for v in closed] == [("2024-01-01T00:00:00", 5.0, "warmup")]
    assert a.post("/v1/events", json={"orders": [_order(7, 11)]}, headers=AUTH).json()["volume"] == []
    late = a.post("/v1/events", json={"orders": [_order(8, 4.5)]}, headers=AUTH).json()
    assert late["orders"]["accepted"] == 1 and late["volume"] == []  # stored, not judged again
    assert late["volume_late"] == 1


def test_a_request_refused_for_a_point_off_the_grid_judges_none_of_its_points(make_client, fakes):
    client = make_client(source=fakes.FakeSource({}), volume_freq="5min", volume_warmup="1d")
    rows = _rows(n=3)
    assert client.post("/v1/actuals", json={"actuals": rows[:1]}, headers=AUTH).status_code == 200
    off = {"series_id": "web", "ds": "2024-01-01T00:12:00", "y": 100}
    other = {"series_id": "app", "ds": "2024-01-01T00:00:00", "y": 100}
    out = client.post("/v1/actuals", json={"actuals": [other, rows[1], off]}, headers=AUTH)
    assert out.status_code == 400, out.text
    assert "1 timestamps are off its '5min' grid" in out.json()["error"]["message"]
    again = client.post("/v1/actuals", json={"actuals": [other, rows[1]]}, headers=AUTH).json()
    assert [v["status"] for v in again["volume"]] == ["warmup", "warmup"]  # judged now, not already_seen
    assert again["volume"][1]["y"] == rows[1]["y"]


def test_a_long_backlog_of_order_steps_is_judged_in_parts_over_the_next_requests(
    make_client, fakes, monkeypatch
):
    from serving.services import order_volume

    monkeypatch.setattr(order_volume, "MAX_STEPS_PER_CLOSE", 10)
    client = make_client(
        source=fakes.FakeSource({}), volume_freq="5min", volume_warmup="1h", volume_event_keys="total"
    )
    first = client.post("/v1/events", json={"orders": [_order(1, 0), _order(2, 100)]}, headers=AUTH).json()
    assert [v["ds"][11:16] for v in first["volume"]] == [f"00:{m:02d}" for m in range(0, 50, 5)]
    second = client.post("/v1/events", json={"orders": [_order(3, 101)]}, headers=AUTH).json()
    assert [v["ds"][11:16] for v in second["volume"]] == [
        f"{m // 60:02d}:{m % 60:02d}" for m in range(50, 95, 5)
    ]
    assert [v["y"] for v in first["volume"] + second["volume"]] == [1.0] + [
        0.0
    ] * 18  # step 01:35 waits for a later order


def test_a_mis_dated_order_is_answered_as_such_and_later_orders_are_still_judged(make_client, fakes):
    client = make_client(
        source=fakes.FakeSource({}), volume_freq="5min", volume_warmup="1h", volume_event_keys="total"
    )
    ahead = client.post("/v1/events", json={"orders": [_order(1, 60 * 24 * 60)]}, headers=AUTH).json()
    assert (ahead["volume_ahead"], ahead["volume_future"], ahead["volume"]) == (
        0,
        0,
        [],
    )  # alone: no stream yet
    future = client.post("/v1/events", json={"orders": [_order(2, 60 * 24 * 365 * 20)]}, headers=AUTH).json()
    assert (future["volume_future"], future["volume_late"]) == (1, 0)  # 2044: after the server's clock
    stream = [_order(10 + i, 2.5 * i) for i in range(6)]  # 00:00 .. 00:12:30, two months before the first
    later = client.post("/v1/events", json={"orders": stream}, headers=AUTH).json()
    assert (later["volume_late"], later["volume_ahead"]) == (0, 0)
    assert [(v["ds"][11:16], v["y"]) for v in later["volume"]] == [("00:00", 2.0)]
