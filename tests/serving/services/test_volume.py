"""serving/services/volume.py: verdicts, stored alerts and the webhook (retries, idempotency, receiver down)."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from serving.services.volume import VolumeService, WebhookSender
from serving.store.alerts import AlertStore
from serving.store.db import Database
from training.volume.detector import VolumeDetector


class Receiver:
    """A local webhook receiver: answers ``fail_first`` requests with 500, then 200; records every request."""

    def __init__(self, port: int = 0, fail_first: int = 0) -> None:
        self.requests: list[tuple[dict, dict]] = []
        self.fail_first = fail_first
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((dict(self.headers), body))
                status = 500 if len(outer.requests) <= outer.fail_first else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/alerts"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def store(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'audit.db'}")
    yield AlertStore(database)
    database.dispose()


def _points(n=40, spike_at=30):
    ds = pd.date_range("2024-01-01", periods=n, freq="h")
    y = np.random.default_rng(0).poisson(100, n).astype(float)
    y[spike_at] = 600
    return [
        SimpleNamespace(series_id="web", ds=d.to_pydatetime(), y=v, open=1)
        for d, v in zip(ds, y, strict=True)
    ]


def _service(store, sender=None):
    return VolumeService(VolumeDetector(freq="h", warmup="1d"), store, None, sender)


def _drain(sender: WebhookSender, until, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not until() and time.monotonic() < deadline:
        sender.deliver_due()
        time.sleep(0.02)


def test_verdicts_come_back_in_request_order_and_the_alert_is_stored(store):
    points = _points()
    verdicts = _service(store).observe(points[::-1])[::-1]  # sent newest first: judged in time order anyway
    assert [v["status"] for v in verdicts[:24]] == ["warmup"] * 24
    assert [i for i, v in enumerate(verdicts) if v["alert"]] == [30]
    assert verdicts[30]["direction"] == "surge" and verdicts[30]["reason"].startswith("600 orders in 1 h")
    (row,) = store.since(datetime(2000, 1, 1, tzinfo=UTC))
    assert (row["ds"], row["delivery"]) == (datetime(2024, 1, 2, 6), "none")


def test_a_point_sent_again_is_not_judged_twice(store):
    service = _service(store)
    points = _points()
    service.observe(points)
    again = service.observe([points[30]])
    assert again[0]["status"] == "already_seen"
    assert len(store.since(datetime(2000, 1, 1, tzinfo=UTC))) == 1


def test_the_webhook_is_retried_with_the_same_idempotency_key_until_it_succeeds(store):
    receiver = Receiver(fail_first=2)
    try:
        sender = WebhookSender(receiver.url, store, retry_s=0.01)
        _service(store, sender).observe(_points())
        _drain(sender, lambda: store.pending_count() == 0)
        assert store.pending_count() == 0
        keys = {headers["Idempotency-Key"] for headers, _ in receiver.requests}
        (alert,) = store.since(datetime(2000, 1, 1, tzinfo=UTC))
        assert len(receiver.requests) == 3 and keys == {alert["alert_id"]}
        assert receiver.requests[-1][1]["reason"] == alert["reason"]
        assert (alert["delivery"], alert["attempts"]) == ("delivered", 3)
    finally:
        receiver.close()


def test_a_dead_receiver_loses_no_alert(store):
    gone = Receiver()
    port = gone.port
    gone.close()  # nothing listens on the port any more
    sender = WebhookSender(f"http://127.0.0.1:{port}/alerts", store, retry_s=0.01, timeout_s=1)
    _service(store, sender).observe(_points())
    time.sleep(0.2)
    assert sender.deliver_due() == 0
    (alert,) = store.due(datetime.now(UTC) + timedelta(hours=2))
    assert alert["attempts"] >= 1 and "Connection" in alert["last_error"]
    back = Receiver(port=port)
    try:
        _drain(sender, lambda: store.pending_count() == 0)
        assert store.pending_count() == 0
        assert [body["alert_id"] for _, body in back.requests] == [alert["alert_id"]]
    finally:
        back.close()


def test_failed_posts_and_the_alerts_waiting_for_the_webhook_are_in_the_metrics(store):
    from prometheus_client import CollectorRegistry, generate_latest

    from serving.prometheus import Metrics

    metrics = Metrics(CollectorRegistry())

    def scraped() -> str:
        return generate_latest(metrics.registry).decode()

    gone = Receiver()
    port = gone.port
    gone.close()
    sender = WebhookSender(
        f"http://127.0.0.1:{port}/alerts", store, retry_s=0.01, timeout_s=1, metrics=metrics
    )
    _service(store, sender).observe(_points())  # the alert's first POST (a background pass) fails
    deadline = time.monotonic() + 5.0
    while 'outcome="failed"' not in scraped() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert 'orderpulse_alert_webhook_posts_total{outcome="failed"} 1.0' in scraped()
    assert "orderpulse_alerts_pending_delivery 1.0" in scraped()
    back = Receiver(port=port)
    try:
        _drain(sender, lambda: store.pending_count() == 0)
    finally:
        back.close()
    assert 'orderpulse_alert_webhook_posts_total{outcome="delivered"} 1.0' in scraped()
    assert "orderpulse_alerts_pending_delivery 0.0" in scraped()


def test_promo_is_refused_with_the_fix_when_the_detector_has_no_promo_driver(store):
    point = SimpleNamespace(series_id="web", ds=datetime(2024, 1, 1), y=5.0, open=1, promo=1)
    with pytest.raises(ValueError, match=r"1 actuals carry 'promo', but the volume detector knows no promo"):
        _service(store).observe([point])
    assert _service(store).detector.last_seen("web") is None  # nothing judged
    with_promo = VolumeService(VolumeDetector(freq="h", warmup="1d", drivers=("promo_flag",)), store)
    assert with_promo.observe([point])[0]["status"] == "warmup"
