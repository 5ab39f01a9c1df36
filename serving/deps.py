"""Typed dependency aliases for routes: ``def route(models: ModelsDep, audit: AuditDep, ...)``.

Everything lives on ``app.state`` (set by ``create_app`` and its lifespan handler); these read it. FastAPI
caches a dependency within one request, so every use of ``ModelsDep`` in a request sees the same snapshot.
They are ``async def`` because they only read attributes: FastAPI runs a plain ``def`` dependency in the
thread pool, a hand-off that costs more than the read (six of them per scoring request).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from serving.errors import ServiceNotReadyError
from serving.history import LiveOrderHistory
from serving.models import ModelHolder, ModelSnapshot
from serving.prometheus import Metrics
from serving.settings import Settings
from serving.store.audit import AuditStore
from serving.store.events import EventStore

__all__ = [
    "SettingsDep",
    "ModelsDep",
    "HolderDep",
    "AuditDep",
    "MetricsDep",
    "RequestIdDep",
    "EventsDep",
    "OrderHistoryDep",
    "VolumeDep",
    "get_settings",
    "get_models",
    "get_holder",
    "get_audit",
    "get_metrics",
    "get_request_id",
    "get_events",
    "get_order_history",
]


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_holder(request: Request) -> ModelHolder:
    return request.app.state.models


async def get_models(request: Request) -> ModelSnapshot:
    """The model snapshot taken at the start of this request (used unchanged until its end)."""
    return request.app.state.models.snapshot()


async def get_audit(request: Request) -> AuditStore:
    return _lifespan_state(request, "audit", "the audit store is not open")


async def get_events(request: Request) -> EventStore:
    return _lifespan_state(request, "events", "the event store is not open")


async def get_order_history(request: Request) -> LiveOrderHistory:
    return _lifespan_state(request, "order_history", "the order history is not set up")


async def get_volume(request: Request) -> Any:
    """The volume verdict service (``serving.services.volume.VolumeService``), or None when
    ``ORDERPULSE_VOLUME_FREQ`` is not set. Typed ``Any`` so importing the routes does not import the detector
    (numba): only a service with volume detection on loads it."""
    return getattr(request.app.state, "volume", None)


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def get_request_id(request: Request) -> str:
    return request.state.request_id


SettingsDep = Annotated[Settings, Depends(get_settings)]
ModelsDep = Annotated[ModelSnapshot, Depends(get_models)]
HolderDep = Annotated[ModelHolder, Depends(get_holder)]
AuditDep = Annotated[AuditStore, Depends(get_audit)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
RequestIdDep = Annotated[str, Depends(get_request_id)]
EventsDep = Annotated[EventStore, Depends(get_events)]
OrderHistoryDep = Annotated[LiveOrderHistory, Depends(get_order_history)]
VolumeDep = Annotated[Any, Depends(get_volume)]


def _lifespan_state(request: Request, name: str, missing: str) -> Any:
    """``app.state.<name>``, which the lifespan handler opens and closes; 503 while it is not there."""
    value = getattr(request.app.state, name, None)
    if value is None:
        raise ServiceNotReadyError(f"{missing} (the app is starting or stopping); retry shortly")
    return value
