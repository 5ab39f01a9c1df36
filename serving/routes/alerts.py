"""``GET /v1/alerts?since=...``: volume alerts raised by ``POST /v1/actuals`` verdicts, oldest first.

Alerts live in the audit database (``serving.store.alerts``), with their webhook delivery state. Poll with the
returned ``next_since`` to continue after the last alert. 404 ``volume_disabled`` when the service runs without
``ORDERPULSE_VOLUME_FREQ``.
"""

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query

from serving.deps import VolumeDep
from serving.errors import NotFoundError, error_responses
from serving.schemas.alerts import AlertsOut
from serving.schemas.common import UtcDatetime

__all__ = ["router"]

router = APIRouter(tags=["alerts"])


@router.get("/v1/alerts", response_model=AlertsOut, responses=error_responses(404, 422))
def get_alerts(
    volume: VolumeDep,
    since: Annotated[
        UtcDatetime,
        Query(description="alerts created at or after this time (ISO 8601, 1900..2200; naive = UTC)"),
    ],
    limit: Annotated[int, Query(ge=1, le=1000, description="most alerts returned")] = 100,
) -> dict[str, Any]:
    """Alerts created at or after ``since``."""
    if volume is None:
        raise NotFoundError(
            "volume detection is off: set ORDERPULSE_VOLUME_FREQ (e.g. 5min) to get verdicts and alerts",
            code="volume_disabled",
        )
    rows = volume.store.since(since, limit=limit)
    next_since = rows[-1]["created_at"] + timedelta(microseconds=1) if rows else None
    return {"alerts": rows, "next_since": next_since}
