"""The service's routers, listed in one place: ``create_app`` includes every router in ``ROUTERS``.

To add routes, write ``serving/routes/<concept>.py`` with a module-level ``router = APIRouter(...)`` and add
it here. Every route needs an API key unless its path is in ``Settings.auth_exempt``.
"""

from fastapi import APIRouter

from serving.routes import alerts, decisions, events, forecast, health, models, monitoring, orders

__all__ = ["ROUTERS"]

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    models.router,
    decisions.router,
    orders.router,
    events.router,
    forecast.router,
    alerts.router,
    monitoring.router,
)
