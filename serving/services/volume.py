"""Volume verdicts for points posted to ``POST /v1/actuals``, alerts stored and sent to a webhook.

Enabled by ``ORDERPULSE_VOLUME_FREQ`` (e.g. ``5min``): every posted actual then gets a verdict of the
service's ``VolumeDetector`` (``training.volume``), which learns each series online from the points it is
sent (``ORDERPULSE_VOLUME_WARMUP`` from a series' first point before anything is flagged), or continues from
a detector logged by ``orderpulse detect volume --log-mlflow`` (``ORDERPULSE_VOLUME_DETECTOR_URI``). A point
that opens an alert is stored in the audit database (``serving.store.alerts``) before the response, counted in
``/metrics``, and, with ``ORDERPULSE_ALERT_WEBHOOK_URL``, POSTed to that URL as JSON with an
``Idempotency-Key`` header (the alert id): right after the request, then by a background thread with
exponential backoff until the receiver answers 2xx. A receiver that is down loses nothing: the alert stays in
the outbox (``/metrics``: failed posts and the alerts pending delivery).

The detector's state per series is kept in the audit database (``serving.store.volume_state``): every
worker reads a series' latest state before judging its points and writes it back with compare-and-swap, in
one transaction with the alerts, so several workers agree on one verdict stream per series and a restart
resumes without a second warm-up. A planned promotion posted with a point (``"promo": 1``) is the detector's
``promo_flag`` driver: a surge it explains is not an alert.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from features.calendar import step_length
from serving.periodic import PeriodicThread
from serving.prometheus import Metrics
from serving.services.order_volume import FUTURE_TOLERANCE, Counted, OrderVolume
from serving.store.alerts import AlertStore, VolumeAlert
from serving.store.volume_state import SeriesState, StateConflict, VolumeStateStore
from training.volume.detector import VolumeDetector

__all__ = ["VolumeService", "WebhookSender", "PROMO_DRIVER"]

PROMO_DRIVER = "promo_flag"  # the driver a point's ``promo`` sets (the name covariates' promo columns get)

_log = logging.getLogger("orderpulse.serving.volume")
_CAS_ATTEMPTS = 8


class VolumeService:
    """The service's detector, its alert store, metrics and (optional) webhook sender."""

    def __init__(
        self,
        detector: VolumeDetector,
        store: AlertStore,
        metrics: Metrics | None = None,
        sender: WebhookSender | None = None,
        orders: OrderVolume | None = None,
        states: VolumeStateStore | None = None,
    ) -> None:
        self.detector = detector
        self.store = store
        self.metrics = metrics
        self.sender = sender
        self.orders = orders
        self.states = states
        if states is not None and states.database is not store.database:
            raise ValueError(
                "the volume state and the alerts must live in the same database (one transaction)"
            )
        if orders is not None and (states is None or orders.store.database is not store.database):
            raise ValueError(
                "order volume needs the volume state store, and its counts in the alerts' database (one "
                "transaction closes a step, writes its verdict's state and its alerts)"
            )
        self._versions: dict[str, int] = {}  # series -> stored version our detector's copy is at
        self._lock = threading.Lock()

    @property
    def step(self) -> pd.Timedelta:
        """The detector's grid step (``ORDERPULSE_VOLUME_FREQ``, or the logged detector's)."""
        return step_length(self.detector.freq)

    def count_orders_in(self, conn: Any, accepted: Sequence[Any]) -> Counted:
        """Count accepted orders inside the transaction ``conn`` that stores them
        (``serving.services.order_volume``; a hook of ``EventStore.add_orders``); those late (their step was
        judged already) or from the future (created after the wall clock) are stored, not counted; logged."""
        if self.orders is None or not accepted:
            return Counted()
        counted = self.orders.count_in(conn, accepted)
        if counted.late:
            _log.warning("%d accepted orders fall in volume steps already judged: not counted", counted.late)
        if counted.future:
            _log.warning(
                "%d accepted orders are created after the server's clock (+%s): not counted for volume",
                counted.future,
                FUTURE_TOLERANCE,
            )
        return counted

    def close_order_steps(self) -> list[dict[str, Any]]:
        """Judge the order-volume steps that are due (by any worker's orders), each exactly once across workers:
        the steps are claimed in the transaction that writes the verdicts' detector state and alerts."""
        if self.orders is None:
            return []
        verdicts: list[dict[str, Any]] = []
        alerts: list[VolumeAlert] = []
        with self._lock:
            for sid in self.orders.due():
                judged, raised = self._commit_series(sid, lambda sid=sid: self._due_steps(sid))
                verdicts += judged
                alerts += raised
        self._after(verdicts, alerts)
        return verdicts

    def _due_steps(self, sid: str) -> tuple[list[Any], Any]:
        pending = self.orders.pending(sid)
        if pending is None:
            return [], None
        claim, points = pending
        return points, lambda conn: self.orders.claim(conn, claim)

    def observe(self, points: Sequence[Any]) -> list[dict[str, Any]]:
        """A verdict for each point (``series_id, ds, y, open[, promo]``), in request order. Points of a series
        are judged in time order; a point at or before the last one seen of its series is not judged again
        (``status`` ``already_seen``). With a state store, each series' state is read from and written back to
        the database with its alerts (compare-and-swap; see ``serving.store.volume_state``)."""
        by_series = self._by_series(points)
        verdicts: list[dict[str, Any]] = [{}] * len(points)
        alerts: list[VolumeAlert] = []
        with self._lock:
            self._check(points, by_series)
            for sid, index in by_series.items():
                chosen = [points[i] for i in index]
                judged, raised = self._commit_series(sid, lambda chosen=chosen: (chosen, None))
                for i, v in zip(index, judged, strict=True):
                    verdicts[i] = v
                alerts += raised
        self._after(verdicts, alerts)
        return verdicts

    def check(self, points: Sequence[Any]) -> None:
        """Raise the ``ValueError`` that ``observe`` would raise for ``points`` (a ``promo`` the detector has
        no driver for, a point off its series' grid), judging nothing: a refused request changes nothing."""
        with self._lock:
            self._check(points, self._by_series(points))

    def _check(self, points: Sequence[Any], by_series: dict[str, list[int]]) -> None:
        _check_promo(self.detector, points)
        for sid, index in by_series.items():
            if self.states is not None:
                self._sync(sid)
            last = self.detector.last_seen(sid)
            new = sorted({_naive(points[i].ds) for i in index})
            self.detector.check_points(sid, [t for t in new if last is None or pd.Timestamp(t) > last])

    @staticmethod
    def _by_series(points: Sequence[Any]) -> dict[str, list[int]]:
        """Indexes of ``points`` per series, each series' in time order."""
        order = sorted(range(len(points)), key=lambda i: (points[i].series_id, _naive(points[i].ds)))
        by_series: dict[str, list[int]] = {}
        for i in order:
            by_series.setdefault(points[i].series_id, []).append(i)
        return by_series

    def _after(self, verdicts: list[dict[str, Any]], alerts: list[VolumeAlert]) -> None:
        if self.metrics is not None:
            self.metrics.on_volume_verdicts(verdicts, alerts)
        if alerts and self.sender is not None:
            self.sender.kick()

    def _commit_series(
        self, sid: str, read_points: Callable[[], tuple[list[Any], Callable[[Any], None] | None]]
    ) -> tuple[list[dict[str, Any]], list[VolumeAlert]]:
        """Judge the points ``read_points()`` gives (read again on every attempt) and commit the verdicts'
        state and alerts, with the points' ``claim(conn)`` if any, in one transaction (compare-and-swap)."""
        deliver = self.sender is not None
        if self.states is None:
            points, _ = read_points()
            verdicts, alerts = self._judge(points)
            self.store.add(alerts, deliver=deliver)  # committed before the response
            return verdicts, alerts
        for _ in range(_CAS_ATTEMPTS):
            read = self._sync(sid)
            points, claim = read_points()
            try:
                verdicts, alerts = self._judge(points)
            except Exception:
                self._versions.pop(sid, None)  # our copy may hold verdicts never committed: re-read next time
                self.detector.forget_series(sid)
                raise
            if claim is None and all(v["status"] == "already_seen" for v in verdicts):
                return verdicts, alerts
            state, memory, count = self.detector.series_state(sid) or (None, None, 0)
            try:
                with self.store.database.connection() as conn:  # alerts, state and claim in one transaction
                    self.store.add_in(conn, alerts, deliver=deliver)
                    if state is not None:
                        self._versions[sid] = self.states.save(
                            conn, sid, read, SeriesState(read, state, memory, count)
                        )
                    if claim is not None:
                        claim(conn)
                return verdicts, alerts
            except StateConflict:
                self._versions.pop(sid, None)  # another worker wrote first: re-read its state, judge again
                self.detector.forget_series(sid)  # our copy holds the rolled-back verdicts
                _log.info("volume state of %r changed under us; judging again from the stored state", sid)
        raise RuntimeError(
            f"the volume state of series {sid!r} kept changing under {_CAS_ATTEMPTS} attempts; retry the request"
        )

    def _sync(self, sid: str) -> int:
        """Bring the detector's copy of ``sid`` up to the stored version; returns that version (0: none)."""
        stored = self.states.version(sid)
        if stored == 0 or stored == self._versions.get(sid):
            return stored
        row = self.states.load(sid)
        if row is None:  # deleted meanwhile
            return 0
        self.detector.restore_series_state(sid, row.state, row.memory, row.alerts)
        self._versions[sid] = row.version
        return row.version

    def _judge(self, points: list[Any]) -> tuple[list[dict[str, Any]], list[VolumeAlert]]:
        verdicts, alerts = [], []
        for p in points:
            ds = pd.Timestamp(_naive(p.ds))
            last = self.detector.last_seen(p.series_id)
            if last is not None and ds <= last:
                verdicts.append({"series_id": p.series_id, "ds": ds, "status": "already_seen"})
                continue
            promo = getattr(p, "promo", None)
            drivers = None if promo is None else {PROMO_DRIVER: promo}
            v = self.detector.update(p.series_id, ds, float(p.y), drivers, open=int(p.open))
            verdicts.append(_verdict(v))
            if v["alert"]:
                alerts.append(_alert(v))
        return verdicts, alerts


class WebhookSender:
    """Delivers pending alerts of ``store`` to ``url`` (POST JSON, ``Idempotency-Key: <alert_id>``).

    ``deliver_due()`` tries every due alert once: 2xx marks it delivered; anything else (HTTP error, refused
    connection, timeout) schedules the next attempt after ``retry_s * 2**attempts`` (at most one hour). A
    daemon thread calls it every ``retry_s``; ``kick()`` runs it at once in the background.
    """

    def __init__(
        self,
        url: str,
        store: AlertStore,
        *,
        timeout_s: float = 5.0,
        retry_s: float = 2.0,
        metrics: Metrics | None = None,
    ) -> None:
        self.url = url
        self.store = store
        self.metrics = metrics
        self.timeout_s = timeout_s
        self.retry_s = retry_s
        self._busy = threading.Lock()
        self._thread = PeriodicThread(
            "orderpulse-alert-webhook", self.deliver_due, "webhook delivery failed", _log
        )

    def start(self) -> None:
        self._thread.start(self.retry_s)

    def stop(self) -> None:
        self._thread.stop()

    def kick(self) -> None:
        threading.Thread(target=self.deliver_due, name="orderpulse-alert-kick", daemon=True).start()

    def deliver_due(self) -> int:
        """Try each due alert once; returns how many were delivered."""
        if not self._busy.acquire(blocking=False):
            return 0  # another delivery pass is running
        try:
            delivered = failed = 0
            for row in self.store.due(datetime.now(UTC)):
                error = self._post(row)
                now = datetime.now(UTC)
                if error is None:
                    self.store.delivered(row["alert_id"], now)
                    delivered += 1
                else:
                    wait = min(self.retry_s * 2 ** int(row["attempts"]), 3600.0)
                    self.store.failed(row["alert_id"], error, now + timedelta(seconds=wait))
                    failed += 1
                    _log.warning("alert %s not delivered (%s); retry in %.0f s", row["alert_id"], error, wait)
            if self.metrics is not None:
                self.metrics.on_webhook_pass(delivered, failed, self.store.pending_count())
            return delivered
        finally:
            self._busy.release()

    def _post(self, row: dict[str, Any]) -> str | None:
        body = {
            k: row[k]
            for k in ("alert_id", "series_id", "y", "expected", "lo", "hi", "score", "direction", "reason")
        }
        body["ds"] = _naive(row["ds"]).isoformat()
        request = urllib.request.Request(
            self.url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Idempotency-Key": row["alert_id"]},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return None if 200 <= response.status < 300 else f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            return f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"


def _check_promo(detector: VolumeDetector, points: Sequence[Any]) -> None:
    """Refuse ``promo`` before anything is judged when the detector has no promo driver to learn it with."""
    if PROMO_DRIVER in detector.driver_names():
        return
    given = [p for p in points if getattr(p, "promo", None) is not None]
    if given:
        raise ValueError(
            f"{len(given)} actuals carry 'promo', but the volume detector knows no promo driver "
            f"(drivers: {detector.driver_names() or 'none'}). Fix: leave 'promo' out, or serve a detector "
            "logged with a promo covariate (or unset ORDERPULSE_VOLUME_DETECTOR_URI)."
        )


def _verdict(v: dict[str, Any]) -> dict[str, Any]:
    return {
        "series_id": v["series_id"],
        "ds": v["ds"],
        "status": "warmup" if v["in_warmup"] else "judged",
        "y": _finite(v["y"]),
        "expected": _finite(v["expected"]),
        "lo": _finite(v["lo"]),
        "hi": _finite(v["hi"]),
        "score": _finite(v["score"]),
        "flagged": bool(v["flagged"]),
        "alert": bool(v["alert"]),
        "direction": v["direction"] or None,
        "reason": v["reason"] or None,
    }


def _alert(v: dict[str, Any]) -> VolumeAlert:
    return VolumeAlert(
        series_id=v["series_id"],
        ds=pd.Timestamp(v["ds"]).to_pydatetime(),
        y=float(v["y"]),
        expected=float(v["expected"]),
        lo=float(v["lo"]),
        hi=float(v["hi"]),
        score=float(v["score"]),
        direction=v["direction"],
        reason=v["reason"],
    )


def _finite(value: Any) -> float | None:
    value = float(value)
    return None if value != value else value


def _naive(value: Any) -> datetime:
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.to_pydatetime()
