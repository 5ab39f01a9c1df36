"""Prometheus metrics of one app, in the app's own ``CollectorRegistry`` (tests build many apps side by side).

Exposed at ``GET /metrics`` (exempt from auth by default):

- ``orderpulse_http_requests_total{method,route,status}`` and
  ``orderpulse_http_request_duration_seconds{method,route}``: per route *template* (``/v1/decisions/{decision_id}``,
  not the raw path, so ids do not explode the label set); unmatched paths count under ``route="<unmatched>"``.
- ``orderpulse_anomaly_score{model_version}``: distribution of exception scores (0..1, 0.05 buckets).
- ``orderpulse_orders_scored_total{model_version}`` / ``orderpulse_orders_flagged_total{model_version}``.
- ``orderpulse_request_ids_whole_float_repaired_total{request}``: request id values written as whole floats
  (``"14911.0"``) read as ``"14911"``, as ``features.ids`` reads every input table: ``request="score"``
  (``POST /v1/orders/score``), ``"events"`` (``POST /v1/events``, as stored), ``"forecast"`` and ``"actuals"``
  (series ids of ``POST /v1/forecast`` / ``POST /v1/actuals`` read as the id the model knows).
- ``orderpulse_model_info{kind,name,version,alias,source}`` = 1 for each loaded model (only the current ones).
- ``orderpulse_model_reloads_total{kind,outcome}``: outcomes of registry reloads.
- ``orderpulse_volume_verdicts_total{status}`` (judged, warmup, already_seen, forecast_only) and
  ``orderpulse_volume_alerts_total{direction}``: volume verdicts given through ``POST /v1/actuals`` and the
  alerts they opened (``serving.services.volume``); ``orderpulse_alert_webhook_posts_total{outcome}`` (delivered,
  failed) and ``orderpulse_alerts_pending_delivery`` (alerts in the outbox after the last delivery pass): a dead
  webhook receiver shows as failed posts and a growing outbox.
- ``orderpulse_monitoring_forecast{model_version,figure}`` / ``orderpulse_monitoring_anomaly{model_version,figure}``:
  the figures of ``GET /v1/monitoring`` (``model_version="all"`` = pooled), ``orderpulse_monitoring_feature_psi
  {kind,feature}``, ``orderpulse_monitoring_status`` (0 ok, 1 warning, 2 alert) and
  ``orderpulse_monitoring_refreshed_timestamp_seconds``: set by the periodic monitoring refresh
  (``serving.services.monitoring_job``), never computed at scrape time.
- ``orderpulse_event_rows_skipped{table}``: stored event rows left out at the last read of ``table`` because
  they are out of bounds (``serving.store.checks``; the log names them).

With several uvicorn workers each process has its own registry, so one scrape shows one worker's numbers;
scrape each worker (or run one worker per container) until multiprocess mode is needed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from serving.models import ModelSnapshot, ReloadReport

__all__ = ["Metrics", "MetricsMiddleware", "router", "SCORE_BUCKETS", "ID_REQUESTS"]

_FORECAST_FIGURES = (
    "answered_steps",
    "matched_steps",
    "pending_steps",
    "wape",
    "bias",
    "coverage",
    "backtest_wape",
)
_ANOMALY_FIGURES = (
    "scored_orders",
    "matched_orders",
    "pending_orders",
    "auprc",
    "precision",
    "recall",
    "ece",
    "base_rate",
    "validation_auprc",
)
SCORE_BUCKETS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 21))
ID_REQUESTS = ("score", "events", "forecast", "actuals")
"""Values of the ``request`` label of ``orderpulse_request_ids_whole_float_repaired_total``."""

router = APIRouter(tags=["operations"])


class Metrics:
    """The metric objects of one app, registered in ``self.registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "orderpulse_http_requests",
            "HTTP requests by route template and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "orderpulse_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["method", "route"],
            registry=r,
        )
        self.scores = Histogram(
            "orderpulse_anomaly_score",
            "Exception scores returned",
            ["model_version"],
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        self.scored = Counter("orderpulse_orders_scored", "Orders scored", ["model_version"], registry=r)
        self.flagged = Counter(
            "orderpulse_orders_flagged", "Orders flagged as likely exceptions", ["model_version"], registry=r
        )
        self.ids_repaired = Counter(
            "orderpulse_request_ids_whole_float_repaired",
            'Request ids written as whole floats ("14911.0") read as integer text ("14911"), by request',
            ["request"],
            registry=r,
        )
        for request in ID_REQUESTS:
            self.ids_repaired.labels(request)
        self.model_info = Gauge(
            "orderpulse_model_info",
            "Loaded models (value 1)",
            ["kind", "name", "version", "alias", "source"],
            registry=r,
        )
        self.reloads = Counter(
            "orderpulse_model_reloads", "Model reload outcomes by kind", ["kind", "outcome"], registry=r
        )
        self.volume_verdicts = Counter(
            "orderpulse_volume_verdicts", "Volume verdicts given, by status", ["status"], registry=r
        )
        self.volume_alerts = Counter(
            "orderpulse_volume_alerts", "Volume alerts opened, by direction", ["direction"], registry=r
        )
        self.webhook_posts = Counter(
            "orderpulse_alert_webhook_posts", "Webhook POSTs of alerts, by outcome", ["outcome"], registry=r
        )
        self.alerts_pending = Gauge(
            "orderpulse_alerts_pending_delivery",
            "Alerts waiting for the webhook after the last delivery pass",
            registry=r,
        )
        self.skipped_rows = Gauge(
            "orderpulse_event_rows_skipped",
            "Stored event rows left out at the last read because they are out of bounds",
            ["table"],
            registry=r,
        )

        self.monitoring_forecast = Gauge(
            "orderpulse_monitoring_forecast",
            "Live forecast accuracy of the monitoring window (figure: matched_steps, wape, bias, coverage...)",
            ["model_version", "figure"],
            registry=r,
        )
        self.monitoring_anomaly = Gauge(
            "orderpulse_monitoring_anomaly",
            "Live exception-score accuracy of the monitoring window (figure: matched_orders, auprc, ...)",
            ["model_version", "figure"],
            registry=r,
        )
        self.monitoring_psi = Gauge(
            "orderpulse_monitoring_feature_psi",
            "PSI of a live input feature against the training profile",
            ["kind", "feature"],
            registry=r,
        )
        self.monitoring_status = Gauge(
            "orderpulse_monitoring_status", "Monitoring status: 0 ok, 1 warning, 2 alert", registry=r
        )
        self.monitoring_refreshed = Gauge(
            "orderpulse_monitoring_refreshed_timestamp_seconds",
            "When the monitoring gauges were last refreshed (Unix time)",
            registry=r,
        )

    def set_monitoring(self, summary: dict[str, Any]) -> None:
        """Set the monitoring gauges from a ``monitoring_summary`` body (figures that are None are left out)."""
        for gauge, block, figures in (
            (self.monitoring_forecast, summary["forecast"], _FORECAST_FIGURES),
            (self.monitoring_anomaly, summary["anomaly"], _ANOMALY_FIGURES),
        ):
            gauge.clear()
            for version, values in [("all", block), *((v["model_version"], v) for v in block["by_version"])]:
                for figure in figures:
                    if values.get(figure) is not None:
                        gauge.labels(version, figure).set(float(values[figure]))
        self.monitoring_psi.clear()
        for kind, drift in summary["drift"].items():
            for feature, f in (drift.get("features") or {}).items():
                if f.get("psi") is not None:
                    self.monitoring_psi.labels(kind, feature).set(float(f["psi"]))
        self.monitoring_status.set(("ok", "warning", "alert").index(summary["status"]))
        self.monitoring_refreshed.set(time.time())

    def on_skipped_rows(self, table: str, n_rows: int) -> None:
        """EventStore listener: rows of ``table`` left out at its last read."""
        self.skipped_rows.labels(table).set(n_rows)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def on_ids_repaired(self, request: str, n_ids: int) -> None:
        """Count ``n_ids`` ids of a ``request`` (one of ``ID_REQUESTS``) read as integer text."""
        if n_ids:
            self.ids_repaired.labels(request).inc(n_ids)

    def observe_scores(
        self, scores: Sequence[float] | np.ndarray, flags: Sequence[bool] | np.ndarray, *, model_version: str
    ) -> None:
        """Record a batch of scores and flags (one histogram update per bucket, not per order)."""
        values = np.asarray(scores, dtype="float64")
        n_flagged = int(np.count_nonzero(np.asarray(flags, dtype=bool)))
        version = str(model_version)
        self.scored.labels(version).inc(values.size)
        if n_flagged:
            self.flagged.labels(version).inc(n_flagged)
        _observe_many(self.scores.labels(version), values[np.isfinite(values)])

    def on_volume_verdicts(self, verdicts: Sequence[dict], alerts: Sequence[Any]) -> None:
        """Count a request's volume verdicts (by status) and the alerts they opened (by direction)."""
        for verdict in verdicts:
            self.volume_verdicts.labels(verdict.get("status", "judged")).inc()
        for alert in alerts:
            self.volume_alerts.labels(alert.direction).inc()

    def on_webhook_pass(self, delivered: int, failed: int, pending: int) -> None:
        """Count one delivery pass's webhook POSTs and set the alerts still waiting."""
        if delivered:
            self.webhook_posts.labels("delivered").inc(delivered)
        if failed:
            self.webhook_posts.labels("failed").inc(failed)
        self.alerts_pending.set(pending)

    def set_models(self, snapshot: ModelSnapshot) -> None:
        """Make ``orderpulse_model_info`` list exactly the models of ``snapshot``."""
        self.model_info.clear()
        for m in snapshot.models.values():
            self.model_info.labels(m.kind, m.name, m.version, m.alias or "", m.source).set(1)

    def on_reload(self, report: ReloadReport, snapshot: ModelSnapshot) -> None:
        """ModelHolder listener: count reload outcomes and refresh the model info gauge."""
        for kind, outcome in report.outcomes.items():
            self.reloads.labels(kind, outcome.status).inc()
        self.set_models(snapshot)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Count and time every HTTP request under its route template (an unhandled error counts as 500)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def send_and_capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_capture)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            self.metrics.observe_request(scope["method"], template, status, time.perf_counter() - start)


@router.get("/metrics", include_in_schema=False)
async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text exposition of this app's registry."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def _observe_many(child: Any, values: np.ndarray) -> None:
    """Histogram.observe for a whole array: bucket counts with numpy, one ``inc`` per bucket.

    Uses the histogram child's bucket counters (stable in prometheus-client for years); falls back to one
    ``observe`` per value if they are not there.
    """
    if values.size == 0:
        return
    bounds = getattr(child, "_upper_bounds", None)
    buckets = getattr(child, "_buckets", None)
    total = getattr(child, "_sum", None)
    if bounds is None or buckets is None or total is None:  # pragma: no cover - other client versions
        for v in values.tolist():
            child.observe(v)
        return
    idx = np.searchsorted(np.asarray(bounds, dtype="float64"), values, side="left")
    counts = np.bincount(idx, minlength=len(bounds))
    for i in np.flatnonzero(counts):
        buckets[i].inc(int(counts[i]))
    total.inc(float(values.sum()))
