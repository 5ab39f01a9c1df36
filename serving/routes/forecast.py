"""``POST /v1/forecast`` (forecasts and what-ifs) and ``POST /v1/actuals`` (observed values to forecast from).

See ``serving.services.forecasting`` for what a forecast reads (snapshot + actuals, stored or requested
plan) and ``serving.services.actuals`` for how actuals are checked and stored. A series id sent as a whole
float (``"7.0"``) is answered for the id the model knows (``"7"``; ``ids_read_as``). Unknown series are 404 with
the list of unknown ids; covariates missing for the horizon are 400 (``data_validation``) saying how to send
a plan. Every forecast is recorded in the audit trail, one decision per series, before the response.
"""

from typing import Any

from fastapi import APIRouter

from serving.deps import AuditDep, EventsDep, MetricsDep, ModelsDep, RequestIdDep, SettingsDep, VolumeDep
from serving.errors import PayloadTooLargeError, error_responses
from serving.schemas.forecast import ActualsIn, ActualsOut, ForecastIn, ForecastOut
from serving.services import forecast_context, forecasting, hierarchy
from serving.services.actuals import record_actuals

__all__ = ["router"]

router = APIRouter(tags=["forecast"])


@router.post("/v1/forecast", response_model=ForecastOut, responses=error_responses(400, 404, 413, 422, 503))
def post_forecast(
    body: ForecastIn,
    models: ModelsDep,
    events: EventsDep,
    audit: AuditDep,
    metrics: MetricsDep,
    settings: SettingsDep,
    request_id: RequestIdDep,
) -> dict[str, Any]:
    """Forecast ``horizon`` steps for each series; with ``covariates`` / ``weather`` also the delta to the stored plan."""
    ids = body.ids
    if len(ids) > settings.max_forecast_series:
        raise PayloadTooLargeError(
            f"the request names {len(ids)} series, more than the limit of {settings.max_forecast_series}: split "
            "it (or raise ORDERPULSE_MAX_FORECAST_SERIES)",
            details={"n_series": len(ids), "max_forecast_series": settings.max_forecast_series},
            code="too_many_series",
        )
    ctx = forecast_context.context_for(models.get("forecast"))
    body, read_as = forecasting.request_as_known(ctx, body)
    metrics.on_ids_repaired("forecast", len(read_as))
    if hierarchy.wants_aggregates(body):
        result = hierarchy.forecast_aggregates(ctx, body, events.actuals_for, request_id=request_id)
    else:
        known = [i for i in body.ids if i not in ctx.unknown(body.ids)]
        result = forecasting.forecast(ctx, body, events.actuals_for(known), request_id=request_id)
    audit.write_many(result.records)
    return {**result.response, "ids_read_as": read_as or None}


@router.post(
    "/v1/actuals",
    response_model=ActualsOut,
    response_model_exclude_none=True,
    responses=error_responses(400, 404, 413, 422, 503),
)
def post_actuals(
    body: ActualsIn, models: ModelsDep, events: EventsDep, metrics: MetricsDep, volume: VolumeDep
) -> dict[str, Any]:
    """Append observed ``{series_id, ds, y, open?}``; a repeated value is a duplicate, a changed one ``updated``.

    With volume detection on (``ORDERPULSE_VOLUME_FREQ``), every point also gets a volume verdict
    (``volume``); only points of series the forecast model knows are then stored for forecasting (others are
    volume series, not an error). Points of the forecast model's series are judged for volume only when its grid
    is the detector's (``ORDERPULSE_VOLUME_FREQ``): daily store sales are not 5-minute order counts
    (``forecast_only``)."""
    if volume is None:
        ctx = forecast_context.context_for(models.get("forecast"))
        result = record_actuals(ctx, events, body.actuals)
        metrics.on_ids_repaired("actuals", len(result["ids_read_as"] or {}))
        return result
    result: dict[str, Any] = {"inserted": 0, "updated": 0, "duplicate": 0, "results": [], "latest": {}}
    known, judge = [], [True] * len(body.actuals)
    if "forecast" in models:
        ctx = forecast_context.context_for(models.get("forecast"))
        ids = list(dict.fromkeys(a.series_id for a in body.actuals))
        as_read = dict(zip(ids, ctx.as_known(ids)[0], strict=True))
        unknown = set(ctx.unknown(list(as_read.values())))
        forecast = [as_read[a.series_id] not in unknown for a in body.actuals]
        known = [a for a, f in zip(body.actuals, forecast, strict=True) if f]
        if ctx.step != volume.step:
            judge = [not f for f in forecast]
    points = [a for a, j in zip(body.actuals, judge, strict=True) if j]
    volume.check(points)  # refuse before anything is stored or judged
    if known:
        result = record_actuals(ctx, events, known)
        metrics.on_ids_repaired("actuals", len(result["ids_read_as"] or {}))
    # after the actuals (idempotent), so an actual refused for the forecast model leaves no verdict behind
    judged = iter(volume.observe(points))
    verdicts = [
        next(judged) if j else {"series_id": a.series_id, "ds": a.ds, "status": "forecast_only"}
        for a, j in zip(body.actuals, judge, strict=True)
    ]
    return {**result, "volume": verdicts}
