"""The service side of monitoring: model references recorded at load, and the periodic refresh.

- ``reference_recorder(database, schema)``: a ``ModelHolder`` listener that records, for every model version
  the service loads, the training figures monitoring compares with (its run's metrics: ``backtest_wape``,
  ``backtest_coverage_<level>``, ``valid_auprc``, ``data.label_maturity_days``) and its training profile (the
  snapshot table ``profile`` logged by the training jobs, ``training.profile``), in ``model_references``.
- ``MonitoringRefresher``: every ``monitoring_interval_s`` a ``serving.periodic.PeriodicThread`` computes the
  summary of the last ``monitoring_window_days``, sets the Prometheus gauges (``Metrics.set_monitoring``; a
  scrape never runs the query) and turns each ``alert`` reason into an alert of the volume alerts' store and
  webhook (``serving.store.alerts``); then it brings the per-day rollups up to date (``warm_rollups``), so a
  query over any longer window reads them too. The alert id is derived from (rule, model version, feature) and
  the UTC day, so a rule that stays in alert raises one alert per day, however often the refresh runs and however
  many replicas run it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from serving.models import ModelSnapshot, ReloadReport
from serving.periodic import PeriodicThread
from serving.prometheus import Metrics
from serving.services.monitoring import monitoring_summary, warm_rollups
from serving.store.alerts import AlertStore, VolumeAlert
from serving.store.db import Database
from serving.store.predictions import PredictionTables, record_reference
from training.profile import profile_from_table

__all__ = ["reference_recorder", "MonitoringRefresher", "monitoring_alerts"]

_log = logging.getLogger("orderpulse.serving.monitoring")


def reference_recorder(database: Database, tables: PredictionTables):
    """Holder listener: record the reference of each newly loaded model version (see the module docstring)."""

    def record(report: ReloadReport, snapshot: ModelSnapshot) -> None:
        for kind, outcome in report.outcomes.items():
            loaded = snapshot.models.get(kind)
            if outcome.status != "loaded" or loaded is None:
                continue
            try:
                record_reference(
                    database,
                    tables,
                    kind=kind,
                    name=loaded.name,
                    version=str(loaded.version),
                    metrics=dict(loaded.metrics),
                    profile=_profile_of(loaded.model),
                )
            except Exception as exc:  # monitoring metadata only: serving goes on
                _log.warning(
                    "could not record the monitoring reference of %s v%s: %s",
                    loaded.name,
                    loaded.version,
                    exc,
                )

    return record


class MonitoringRefresher:
    """Refreshes the monitoring gauges and raises monitoring alerts periodically (see the module docstring)."""

    def __init__(
        self,
        database: Database,
        metrics: Metrics,
        *,
        schema: str | None = None,
        window_days: float = 7.0,
        label_maturity_days: float = 14.0,
        late_actual_days: float = 2.0,
        alerts: AlertStore | None = None,
        sender: Any = None,
        own_sender: bool = False,
    ) -> None:
        self.database = database
        self.metrics = metrics
        self.schema = schema
        self.window_days = window_days
        self.label_maturity_days = label_maturity_days
        self.late_actual_days = late_actual_days
        self.alerts = alerts
        self.sender = sender
        self._own_sender = (
            own_sender  # a webhook sender of its own (no volume service): started and stopped here
        )
        self._thread = PeriodicThread(
            "orderpulse-monitoring", self.refresh, "monitoring refresh failed", _log
        )

    def start(self, interval_s: float) -> None:
        if interval_s <= 0:
            return
        if self._own_sender and self.sender is not None:
            self.sender.start()
        self._thread.start(interval_s)

    def stop(self) -> None:
        self._thread.stop()
        if self._own_sender and self.sender is not None:
            self.sender.stop()

    def refresh(self, now: datetime | None = None) -> dict[str, Any]:
        """Compute the summary of the window ending ``now``, set the gauges, raise alerts; returns the summary."""
        now = now or datetime.now(UTC)
        summary = monitoring_summary(
            self.database,
            since=now - timedelta(days=self.window_days),
            until=now,
            model=None,
            schema=self.schema,
            now=now,
            default_label_maturity_days=self.label_maturity_days,
            late_actual_days=self.late_actual_days,
        )
        self.metrics.set_monitoring(summary)
        if self.alerts is not None:
            new = self.alerts.add(monitoring_alerts(summary, now), deliver=self.sender is not None)
            if new:
                _log.warning(
                    "monitoring: %d new alert(s): %s",
                    new,
                    "; ".join(r["message"] for r in summary["reasons"] if r["severity"] == "alert"),
                )
                if self.sender is not None:
                    self.sender.kick()
        try:  # after the summary: a long first roll-up never delays the gauges and alerts
            warm_rollups(self.database, schema=self.schema)
        except Exception as exc:  # rollups only speed up queries: a failure leaves them to the next refresh
            _log.warning("monitoring: could not bring the per-day rollups up to date: %s", exc)
        return summary


def monitoring_alerts(summary: dict[str, Any], now: datetime) -> list[VolumeAlert]:
    """One alert per ``alert`` reason of ``summary``, keyed by (rule, model version, feature) and UTC day."""
    day = pd.Timestamp(now).tz_convert("UTC").tz_localize(None).normalize().to_pydatetime()
    out = []
    for r in summary["reasons"]:
        if r["severity"] != "alert":
            continue
        key = f"monitoring:{r['rule']}:{r['model_name']}/{r['model_version']}"
        if r.get("feature"):
            key += f":{r['feature']}"
        value = float(r["value"])
        reference = float(r["reference"]) if r.get("reference") is not None else value
        out.append(
            VolumeAlert(
                series_id=key[:200],
                ds=day,
                y=value,
                expected=reference,
                lo=min(value, reference),
                hi=max(value, reference),
                score=1.0,
                direction="up" if value >= reference else "down",
                reason=r["message"],
                created_at=now,
            )
        )
    return out


def _profile_of(wrapper: Any) -> dict[str, Any] | None:
    tables = getattr(wrapper, "tables", None)
    table = tables.get("profile") if isinstance(tables, dict) else None
    return profile_from_table(table) if isinstance(table, pd.DataFrame) and len(table) else None
