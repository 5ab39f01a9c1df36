"""Forecasts of aggregates in ``POST /v1/forecast``: ``"series_ids": ["region=Bayern", "total"]`` or
``"levels": ["region", "total"]``.

An aggregate is named ``<level>=<value>`` or ``total`` (``features.hierarchy``); the served model must have
been trained with those levels (``orderpulse train forecast --levels region,total``). The answer is the
training code's coherent forecast (``training.forecast.hierarchy.forecast_hierarchy``): every series of the
model is forecast from the snapshot + actuals, the aggregate model forecasts the aggregates, and the chosen
reconciliation makes them add up; series ids asked in the same request get their reconciled values, so the
numbers in one answer always add up. Each point has ``yhat`` and the level's own interval, and with
``explain`` the effect of each feature family on the aggregate (no log-space ``base``/``contributions``: an
aggregate is not one model's output). What-if plans and closures are not supported for aggregates yet (422).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from features.hierarchy import SERIES_LEVEL, TOTAL, aggregate_key
from serving.errors import ApiError, NotFoundError
from serving.schemas.forecast import ForecastIn
from serving.services.forecast_context import ForecastContext
from serving.services.forecasting import ForecastResult, default_origin, forecast_record, requested_horizon
from serving.services.scoring import model_ref
from training.forecast.hierarchy import HierarchicalReconciler, forecast_hierarchy

__all__ = ["is_aggregate_id", "wants_aggregates", "forecast_aggregates"]


def is_aggregate_id(series_id: str) -> bool:
    """``total`` or ``<level>=<value>``."""
    return series_id == TOTAL or "=" in series_id


def wants_aggregates(request: ForecastIn) -> bool:
    return bool(request.hierarchy_levels) or any(is_aggregate_id(i) for i in request.ids)


def forecast_aggregates(
    ctx: ForecastContext,
    request: ForecastIn,
    actuals_for: Callable[[list[str]], pd.DataFrame] | None = None,
    *,
    request_id: str | None = None,
) -> ForecastResult:
    """Coherent forecasts of the requested aggregates (and series), see the module docstring;
    ``actuals_for(series_ids)`` gives the actuals posted for those series (``POST /v1/actuals``)."""
    rec: HierarchicalReconciler | None = getattr(ctx.model, "hierarchy_", None)
    if rec is None:
        raise ApiError(
            f"the served forecast model {ctx.loaded.name} v{ctx.loaded.version} was trained without hierarchy "
            "levels, so it cannot forecast aggregates such as 'total': train it with "
            "`orderpulse train forecast ... --levels region,total`",
            status_code=422,
            code="no_hierarchy",
        )
    agg_ids = set(rec.hierarchy_.keys()["key"])
    if request.is_what_if or request.closures:
        raise ApiError(
            "what-if plans (covariates, weather) and closures are not supported for aggregates yet: a plan for "
            "'region=X' or 'total' would have to be split into per-series plans, which the API does not guess. "
            "Post the plan for the member series instead (their ids, with per-series or ds-only plan rows) and "
            "sum their forecasts, or use training.forecast.whatif.what_if_levels for the coherent effect on "
            "every level",
            status_code=422,
            code="invalid_request",
            details={
                "limitation": "what_if_on_aggregates",
                "aggregates": [i for i in request.ids if i in agg_ids],
            },
        )
    keys = rec.hierarchy_.keys()
    trained = list(rec.hierarchy_.levels)
    unknown_levels = [lv for lv in request.hierarchy_levels if lv not in trained]
    if unknown_levels:
        raise ApiError(
            f"levels {unknown_levels} were not trained; the served model knows {trained}",
            status_code=422,
            code="invalid_request",
            details={"unknown_levels": unknown_levels, "levels": trained},
        )
    wanted = list(request.ids) + [
        k for k in keys.loc[keys["level"].isin(request.hierarchy_levels), "key"] if k not in request.ids
    ]
    known = set(keys["key"]) | set(rec.hierarchy_.series_ids)
    unknown = [i for i in wanted if i not in known]
    if unknown:
        raise NotFoundError(
            f"unknown series or aggregate id {unknown[:10]}: aggregates are named like "
            f"{keys['key'].head(3).tolist()} (levels {trained})",
            details={"unknown_series": unknown},
            code="unknown_series",
        )
    model = ctx.model
    horizon = requested_horizon(ctx, request)
    levels = request.interval_levels
    ids = [str(i) for i in rec.hierarchy_.series_ids]
    history = ctx.history(ids, actuals_for(ids) if actuals_for is not None else None)
    tables = {"covariates": ctx.covariates, "weather": ctx.weather, "static": ctx.static}
    origin = pd.Timestamp(request.origin) if request.origin is not None else default_origin(history)
    series_pred = model.predict(
        horizon, levels=(), explain=request.explain, series=history, origin=origin, **tables
    )
    out = forecast_hierarchy(rec, series_pred, history, tables, horizon=horizon, origin=origin, levels=levels)
    out["key"] = [
        sid if lv == SERIES_LEVEL else aggregate_key(lv, sid)
        for lv, sid in zip(out["level"], out["series_id"], strict=True)
    ]
    return _result(ctx, request, out, wanted, origin, horizon, levels, rec.method_, request_id)


def _result(
    ctx: ForecastContext,
    request: ForecastIn,
    out: pd.DataFrame,
    wanted: Sequence[str],
    origin: pd.Timestamp,
    horizon: int,
    levels: tuple[int, ...],
    method: str,
    request_id: str | None,
) -> ForecastResult:
    first = levels[0]
    effects = [c for c in out.columns if c.startswith("effect_")] if request.explain else []
    ref = model_ref(ctx.loaded)
    series_out, audit = [], []
    by_key = {k: g for k, g in out.groupby("key", sort=False)}
    for key in wanted:
        g = by_key[key]
        points = []
        for r in g.to_dict("records"):
            p: dict[str, Any] = {
                "ds": r["ds"],
                "step": int(r["step"]),
                "yhat": float(r["yhat"]),
                "yhat_lo": float(r[f"yhat_lo_{first}"]),
                "yhat_hi": float(r[f"yhat_hi_{first}"]),
            }
            if len(levels) > 1:
                p["intervals"] = {
                    str(lv): [float(r[f"yhat_lo_{lv}"]), float(r[f"yhat_hi_{lv}"])] for lv in levels
                }
            if effects:
                p["effects"] = {c.removeprefix("effect_"): float(np.nan_to_num(r[c])) for c in effects}
            points.append(p)
        level = str(g["level"].iloc[0])
        record = forecast_record(
            ctx,
            request_id,
            input={
                "series_id": key,
                "level": level,
                **request.model_dump(mode="json", include={"horizon", "explain"}),
            },
            features={"origin": origin.isoformat(), "reconciliation": method},
            output={"points": points, "levels": list(levels)},
        )
        audit.append(record)
        series_out.append(
            {"series_id": key, "level": level, "decision_id": record.decision_id, "points": points}
        )
    response = {
        "model": ref,
        "origin": origin,
        "horizon": horizon,
        "levels": list(levels),
        "what_if": False,
        "note": f"coherent forecasts of every level ({method} reconciliation)",
        "series": series_out,
    }
    return ForecastResult(response, audit)
