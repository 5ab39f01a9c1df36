"""``create_app(settings)``: the FastAPI app factory. Importing this module loads no model and opens nothing.

The lifespan handler opens the audit store, loads the models (registry, else local cache) and starts the
periodic reload when ``reload_interval_s`` > 0; a model that cannot be loaded leaves the app running but
``/ready`` at 503 until a reload succeeds.

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

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI
from starlette.middleware import Middleware

from serving.audit import AuditStore
from serving.auth import require_api_key
from serving.errors import install_error_handlers
from serving.metrics import Metrics, MetricsMiddleware
from serving.metrics import router as metrics_router
from serving.middleware import BodySizeLimitMiddleware, RequestIdMiddleware
from serving.models import ModelHolder
from serving.routes import ROUTERS
from serving.settings import Settings

__all__ = ["create_app", "create_app_from_env", "default_model_holder"]

_log = logging.getLogger("orderpulse.serving")


def default_model_holder(settings: Settings) -> ModelHolder:
    """The holder the service uses: registry by alias + local cache.

    The model routes plug their smoke checks (``{"forecast": check, "anomaly": check}``, each taking a
    ``LoadedModel`` and raising on failure) and, if needed, a ``loader`` (local model dir -> object) in here.
    """
    return ModelHolder.from_settings(settings, smoke_checks={})


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
        holder.add_listener(metrics.on_reload)
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
        holder.start_periodic_reload(settings.reload_interval_s)
        try:
            yield
        finally:
            holder.stop()
            audit, app.state.audit = app.state.audit, None
            if own_audit and audit is not None:
                audit.close()

    app = FastAPI(
        title="OrderPulse",
        summary="Demand forecasts and exception-order scores, explained with SHAP.",
        version=_version(),
        lifespan=lifespan,
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
    install_error_handlers(app)
    for router in (*ROUTERS, metrics_router, *extra_routers):
        app.include_router(router)
    if settings.generated_api_key:
        _log.warning("profile dev without ORDERPULSE_API_KEYS: an API key was generated for this run")
    return app


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory serving.app:create_app_from_env`` (each worker reads ORDERPULSE_*)."""
    return create_app(Settings())


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("orderpulse")
    except Exception:  # pragma: no cover - not installed as a package
        return "0+unknown"
