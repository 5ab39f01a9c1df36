"""``create_app(settings)``: the FastAPI app factory. Importing this module loads no model and opens nothing.

The lifespan handler opens the audit store and, in the same database, the event store; loads the models
(registry, else local cache; each must pass its smoke check) and starts the periodic reload when
``reload_interval_s`` > 0; a model that cannot be loaded leaves the app running but ``/ready`` at 503 until a
reload succeeds. It then builds the order history scoring uses (anomaly snapshot + events,
``serving.history``) and starts its refresh thread (``events_refresh_interval_s``).

Seams for the model routes:
- routers: add them to ``serving.routes.ROUTERS`` (or pass ``extra_routers=``); every route needs an API key
  unless exempt;
- smoke checks / loader of the real models: ``default_model_holder`` below (or pass ``model_holder=``);
- in routes: ``ModelsDep``, ``AuditDep``, ``SettingsDep``, ``MetricsDep``, ``RequestIdDep`` from
  ``serving.deps``; ``check_batch_size`` and the ``ApiError`` family from ``serving.errors``.

Middleware, outermost first: request id, metrics, body size limit (inside them FastAPI's own exception
middleware renders errors through ``serving.errors``).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI
from starlette.middleware import Middleware

from serving.auth import require_api_key
from serving.docs import install_offline_docs
from serving.errors import install_error_handlers
from serving.history import LiveOrderHistory
from serving.middleware import BodySizeLimitMiddleware, RequestIdMiddleware
from serving.model_source import RegistryModelSource
from serving.models import ModelHolder, ModelSnapshot, ReloadReport
from serving.openapi import docs_urls, install_openapi
from serving.process import die_with_supervisor
from serving.prometheus import Metrics, MetricsMiddleware
from serving.prometheus import router as metrics_router
from serving.routes import ROUTERS
from serving.services.monitoring_job import reference_recorder
from serving.settings import Settings
from serving.store.audit import AuditStore
from serving.store.events import EventStore

__all__ = ["create_app", "create_app_from_env", "default_model_holder"]

_log = logging.getLogger("orderpulse.serving")


def default_model_holder(settings: Settings) -> ModelHolder:
    """The holder the service uses: registry by alias + local cache, OrderPulse snapshot models only.

    The loader unwraps the MLflow pyfunc into the OrderPulse wrapper (``.model`` estimator, ``.tables``
    snapshot); a new version is served only after its smoke check passed: a 1-step forecast of one snapshot
    series, and the score and reasons of one snapshot order.
    """
    from serving.services.forecast_context import forecast_smoke_check
    from serving.services.scoring import anomaly_smoke_check

    return ModelHolder(
        RegistryModelSource.from_settings(settings, loader=load_snapshot_wrapper),
        smoke_checks={"forecast": forecast_smoke_check, "anomaly": anomaly_smoke_check},
    )


def load_snapshot_wrapper(path: str) -> object:
    """The logged model at ``path`` (``training.pyfunc.load_snapshot_model``: refuses models that are not
    OrderPulse's with a ``ModelKindError``, a ``TypeError``)."""
    from training.pyfunc import load_snapshot_model

    return load_snapshot_model(path)


def create_app(
    settings: Settings | None = None,
    *,
    model_holder: ModelHolder | None = None,
    audit_store: AuditStore | None = None,
    extra_routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """Build the app. ``settings`` default to the environment; the holder and audit store can be injected
    (tests); an injected audit store is not closed by the app."""
    settings = settings or Settings()
    metrics = Metrics()
    holder = model_holder if model_holder is not None else default_model_holder(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_audit = audit_store is None
        app.state.audit = (
            await anyio.to_thread.run_sync(
                lambda: AuditStore(settings.audit_url, sqlite_synchronous=settings.audit_sqlite_synchronous)
            )
            if own_audit
            else audit_store
        )
        app.state.events = await anyio.to_thread.run_sync(
            lambda: EventStore(app.state.audit.database, on_skip=metrics.on_skipped_rows)
        )
        live = LiveOrderHistory(app.state.events, lambda: holder.snapshot().models.get("anomaly"))
        app.state.order_history = live
        holder.add_listener(metrics.on_reload)
        holder.add_listener(reference_recorder(app.state.audit.database, app.state.audit.predictions))
        holder.add_listener(_history_refresher(live))
        report = await anyio.to_thread.run_sync(holder.reload)
        for kind, outcome in report.outcomes.items():
            level = logging.INFO if outcome.status in ("loaded", "unchanged") else logging.WARNING
            _log.log(
                level,
                "model %s: %s%s%s",
                kind,
                outcome.status,
                f" v{outcome.version}" if outcome.version else "",
                f" ({outcome.error})" if outcome.error else "",
            )
        if settings.gc_freeze_at_startup:
            await anyio.to_thread.run_sync(_freeze_startup_objects)
        holder.start_periodic_reload(settings.reload_interval_s)
        live.start(settings.events_refresh_interval_s)
        app.state.volume = await anyio.to_thread.run_sync(
            lambda: _volume_service(settings, app.state.audit, metrics)
        )
        app.state.monitoring = _monitoring_refresher(settings, app.state.audit, metrics, app.state.volume)
        app.state.monitoring.start(settings.monitoring_interval_s)
        try:
            yield
        finally:
            app.state.monitoring.stop()
            if app.state.volume is not None and app.state.volume.sender is not None:
                app.state.volume.sender.stop()
            app.state.volume = None
            holder.stop()
            live.stop()
            app.state.order_history = app.state.events = None
            audit, app.state.audit = app.state.audit, None
            if own_audit and audit is not None:
                audit.close()

    docs = docs_urls(settings)
    app = FastAPI(
        title="OrderPulse",
        summary="Demand forecasts and exception-order scores, explained with SHAP.",
        version=_version(),
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc come from bundled assets, not a CDN (serving.docs)
        redoc_url=None,
        openapi_url=docs["openapi_url"],
        dependencies=[Depends(require_api_key)],
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(MetricsMiddleware, metrics=metrics),
            Middleware(BodySizeLimitMiddleware, max_body_bytes=settings.max_body_bytes),
        ],
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.models = holder
    app.state.audit = None
    app.state.events = None
    app.state.order_history = None
    app.state.volume = None
    app.state.monitoring = None
    install_error_handlers(app)
    if docs["docs_url"] is not None:
        install_offline_docs(app, docs["docs_url"], docs["redoc_url"])
    for router in (*ROUTERS, metrics_router, *extra_routers):
        app.include_router(router)
    install_openapi(app, settings)
    if settings.generated_api_key:
        _log.warning("profile dev without ORDERPULSE_API_KEYS: an API key was generated for this run")
    return app


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory serving.app:create_app_from_env`` (each worker reads ORDERPULSE_*).

    A worker of ``orderpulse serve --workers N`` also arms its parent-death signal (``serving.process``).
    """
    die_with_supervisor()
    return create_app(Settings())


def _volume_service(settings: Settings, audit: AuditStore, metrics: Metrics):
    """The volume verdict service (``serving.services.volume``) when ``volume_freq`` is set, else None."""
    if not settings.volume_freq:
        return None
    from serving.services.order_volume import OrderVolume, parse_event_keys
    from serving.services.volume import PROMO_DRIVER, VolumeService, WebhookSender
    from serving.store.alerts import AlertStore
    from serving.store.volume_counts import VolumeCountStore
    from serving.store.volume_state import VolumeStateStore
    from training.volume.detector import VolumeDetector

    store = AlertStore(audit.database)
    if settings.volume_detector_uri:
        import joblib
        import mlflow

        mlflow.set_tracking_uri(settings.tracking_uri)
        detector = joblib.load(mlflow.artifacts.download_artifacts(settings.volume_detector_uri))
    else:
        detector = VolumeDetector(
            freq=settings.volume_freq, warmup=settings.volume_warmup, drivers=(PROMO_DRIVER,)
        )
    sender = None
    if settings.alert_webhook_url:
        sender = WebhookSender(
            settings.alert_webhook_url,
            store,
            timeout_s=settings.alert_webhook_timeout_s,
            retry_s=settings.alert_webhook_retry_s,
            metrics=metrics,
        )
        sender.start()
    keys = parse_event_keys(settings.volume_event_keys)
    counts = VolumeCountStore(audit.database) if keys is not None else None  # shared by the workers
    orders = OrderVolume(keys, settings.volume_freq, counts) if counts is not None else None
    states = VolumeStateStore(audit.database)  # shared by the workers, kept across restarts
    return VolumeService(detector, store, metrics, sender, orders, states)


def _monitoring_refresher(settings: Settings, audit: AuditStore, metrics: Metrics, volume: object):
    """The periodic monitoring refresh (gauges + alerts through the volume alerts' store and webhook)."""
    from serving.services.monitoring_job import MonitoringRefresher

    alerts, sender, own_sender = getattr(volume, "store", None), getattr(volume, "sender", None), False
    if alerts is None:
        from serving.services.volume import WebhookSender
        from serving.store.alerts import AlertStore

        alerts = AlertStore(audit.database)
        if settings.alert_webhook_url and settings.monitoring_interval_s > 0:
            sender, own_sender = (
                WebhookSender(
                    settings.alert_webhook_url,
                    alerts,
                    timeout_s=settings.alert_webhook_timeout_s,
                    retry_s=settings.alert_webhook_retry_s,
                ),
                True,
            )
    return MonitoringRefresher(
        audit.database,
        metrics,
        schema=audit.schema,
        window_days=settings.monitoring_window_days,
        label_maturity_days=settings.monitoring_label_maturity_days,
        late_actual_days=settings.monitoring_late_actual_days,
        alerts=alerts,
        sender=sender,
        own_sender=own_sender,
    )


def _freeze_startup_objects() -> None:
    """Collect startup garbage, then exclude everything alive (modules, models, snapshots) from future GC passes.

    A loaded service tracks ~375k objects; a full collection walks all of them (~0.3 s on 2 cores), and
    request allocations trigger one every so often: a p99 spike in the middle of a request. ``gc.freeze``
    moves them to the permanent generation, so later collections walk only what requests allocate. (Objects
    of a model replaced later stay frozen until freed by reference counting.)
    """
    gc.collect()
    gc.freeze()


def _history_refresher(live: LiveOrderHistory):
    """Holder listener: rebuild the order history when a new anomaly model was swapped in."""

    def refresh(report: ReloadReport, snapshot: ModelSnapshot) -> None:
        outcome = report.outcomes.get("anomaly")
        if outcome is None or outcome.status != "loaded" or "anomaly" not in snapshot:
            return
        try:
            live.refresh(snapshot.get("anomaly"))
        except (
            Exception
        ) as exc:  # a model without a snapshot (tests, fakes) or a failing build: scoring says so
            _log.warning("could not build the order history for the new anomaly model: %s", exc)

    return refresh


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("orderpulse")
    except Exception:  # pragma: no cover - not installed as a package
        return "0+unknown"
