"""``GET /v1/monitoring``: live accuracy, drift and data quality of the served models, with a status.

The figures come from ``serving.services.monitoring.monitoring_summary`` (matching rules and status rules are
documented there and in the README's "Monitoring" section). The query reads the narrow prediction tables, not
the audit JSON, so it stays fast over millions of decisions.
"""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query

from features.bounds import NO_CONTROL_CHARACTERS
from serving.deps import AuditDep, SettingsDep
from serving.errors import ApiError, error_responses
from serving.schemas.common import UtcDatetime
from serving.schemas.monitoring import MonitoringOut
from serving.services.monitoring import monitoring_summary, parse_model_filter

__all__ = ["router"]

router = APIRouter(tags=["monitoring"])


@router.get("/v1/monitoring", response_model=MonitoringOut, responses=error_responses(422, 503))
def get_monitoring(
    audit: AuditDep,
    settings: SettingsDep,
    since: Annotated[
        UtcDatetime | None,
        Query(
            description="answers given at or after this time (ISO 8601; naive = UTC); default: "
            "ORDERPULSE_MONITORING_WINDOW_DAYS (7) before until"
        ),
    ] = None,
    until: Annotated[
        UtcDatetime | None, Query(description="answers given at or before this time (default: now)")
    ] = None,
    model: Annotated[
        str | None,
        Query(
            max_length=300,
            pattern=NO_CONTROL_CHARACTERS,
            description="a registered model name, or '<name>/<version>' (default: all)",
        ),
    ] = None,
) -> dict[str, Any]:
    """Live accuracy of the answered forecasts and scores, drift of their inputs, data quality, status."""
    try:
        parse_model_filter(model)
        if since is not None and until is not None and since > until:
            raise ValueError(
                f"since ({since.isoformat()}) is after until ({until.isoformat()}): pass since <= until"
            )
    except ValueError as exc:
        raise ApiError(
            str(exc),
            status_code=422,
            code="invalid_request",
            details={"since": _iso(since), "until": _iso(until), "model": model},
        ) from None
    until = until if until is not None else datetime.now(UTC).replace(tzinfo=None)
    if since is None:
        since = until - timedelta(days=settings.monitoring_window_days)
    return monitoring_summary(
        audit.database,
        since=since,
        until=until,
        model=model,
        schema=audit.schema,
        default_label_maturity_days=settings.monitoring_label_maturity_days,
        late_actual_days=settings.monitoring_late_actual_days,
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
