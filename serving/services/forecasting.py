"""Forecasts from the served model: history = snapshot + actuals, the stored or a requested plan, what-ifs.

``forecast`` calls ``LGBMForecaster.predict`` exactly as ``training.forecast.job.forecast_frame`` does (the
CLI): the ``series`` history, the ``origin``, and the covariates / weather / static tables, which default to
the snapshot the model was trained with. Only the requested series' rows are passed (the model builds each
series' features from its own rows; the snapshot is indexed once per model version), so the API and the CLI
give the same numbers for the same inputs. The indexed snapshot is ``serving.services.forecast_context``.

Series ids are read as the model knows them (``request_as_known``): a request for ``"7.0"`` when the model
knows ``"7"`` (trained on a column exported as floats, which the id rule made ``"7"``) is answered for ``"7"``,
and the response says so in ``ids_read_as``.

History: the snapshot's rows of the series plus the values appended through ``POST /v1/actuals`` (an actual
replaces the snapshot's value of the same step). The default origin is the latest observed step.

Plan: request ``covariates`` / ``weather`` rows are laid over the stored tables
(``serving.services.forecast_plan.overlay_plan``, using ``training.forecast.whatif.overlay`` like the planner
notebook, so both show the same numbers); a request with a plan is a what-if, answered with the forecast under
the stored plan next to it (``yhat_baseline``, ``delta``; ``training.forecast.whatif.baseline_yhat``). Known
closures of forecast steps (``closures``) are laid over the history (``serving.services.closures``) and hold
for the baseline too. Covariates are required through the horizon: when neither the stored plan nor the
request covers it, the answer is 400 with the problem and how to send a plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.errors import DataValidationError
from features.hierarchy import TOTAL
from serving.errors import ApiError, NotFoundError
from serving.schemas.forecast import ForecastIn
from serving.services.closures import with_closures
from serving.services.forecast_context import ForecastContext, with_series_ids
from serving.services.forecast_plan import overlay_plan, plan_problem
from serving.services.scoring import model_ref
from serving.store.audit import AuditRecord
from training.forecast.whatif import baseline_yhat

__all__ = [
    "ForecastResult",
    "forecast",
    "request_as_known",
    "requested_horizon",
    "default_origin",
    "forecast_record",
]


@dataclass(frozen=True)
class ForecastResult:
    """The response body (``ForecastOut`` fields) and one audit record per series."""

    response: dict[str, Any]
    records: list[AuditRecord]


def forecast(
    ctx: ForecastContext,
    request: ForecastIn,
    actuals: pd.DataFrame | None = None,
    *,
    request_id: str | None = None,
) -> ForecastResult:
    """Forecast the requested series (see the module docstring); raises 404 for unknown series."""
    ids = request.ids
    unknown = ctx.unknown(ids)
    if unknown:
        raise NotFoundError(
            f"unknown series_id {unknown[:10]}{' ...' if len(unknown) > 10 else ''}: the forecast model "
            f"{ctx.loaded.name} v{ctx.loaded.version} knows {len(ctx._rows)} series (e.g. {list(ctx._rows)[:5]}); "
            f"a new series needs a model retrained with its history{_aggregate_hint(ctx, unknown)}",
            details={"unknown_series": unknown},
            code="unknown_series",
        )
    model = ctx.model
    horizon = requested_horizon(ctx, request)
    levels = request.interval_levels
    mine = actuals.loc[actuals["series_id"].isin(ids)] if actuals is not None else None
    history = ctx.history(ids, mine)
    stored = {"covariates": ctx.covariates_for(ids), "weather": ctx.weather_for(ids)}
    static = ctx.static_for(ids)
    plan = dict(stored)
    if request.covariates:
        rows = [r.model_dump() for r in request.covariates]
        plan["covariates"] = overlay_plan(stored["covariates"], rows, "covariates", "series_id", ids)
    if request.weather:
        rows = [r.model_dump() for r in request.weather]
        plan["weather"] = overlay_plan(stored["weather"], rows, "weather", "region", ctx.regions(ids))
    origin = pd.Timestamp(request.origin) if request.origin is not None else default_origin(history)
    if request.closures:
        end = origin + horizon * ctx.step
        history = with_closures(history, request.closures, ids, origin, end, ctx.off_grid)
    try:
        pred = model.predict(
            horizon,
            levels=levels,
            explain=request.explain,
            series=history,
            origin=origin,
            static=static,
            **plan,
        )
    except DataValidationError as exc:
        raise plan_problem(exc, ctx, stored["covariates"], bool(request.covariates)) from None
    baseline, note = None, None
    if request.is_what_if:
        try:
            baseline = baseline_yhat(
                model, pred, horizon=horizon, series=history, origin=origin, static=static, **stored
            )
        except DataValidationError as exc:
            note = (
                "no baseline: the stored plan does not cover the horizon, so there is no delta "
                f"({' '.join(str(exc).split())[:300]})"
            )
    return _result(
        ctx, request, pred, baseline, note, history, mine, plan, origin, horizon, levels, request_id
    )


def request_as_known(ctx: ForecastContext, request: ForecastIn) -> tuple[ForecastIn, dict[str, str]]:
    """The request with its series ids as the model knows them (``ForecastContext.as_known``: ``"7.0"`` is
    answered for ``"7"``), in ``series_ids`` and in its plan and closure rows, and ``{as sent: as read}``."""
    ids, read_as = ctx.as_known(request.ids)
    if not read_as:
        return request, {}

    update = {
        "series_ids": list(dict.fromkeys(ids)),
        "series_id": None,
        "covariates": None if request.covariates is None else with_series_ids(request.covariates, read_as),
        "closures": None if request.closures is None else with_series_ids(request.closures, read_as),
    }
    return request.model_copy(update=update), read_as


# ---------------------------------------------------------------------------------------------- helpers
def _result(
    ctx: ForecastContext,
    request: ForecastIn,
    pred: pd.DataFrame,
    baseline: pd.Series | None,
    note: str | None,
    history: pd.DataFrame,
    actuals: pd.DataFrame | None,
    plan: dict[str, pd.DataFrame | None],
    origin: pd.Timestamp,
    horizon: int,
    levels: tuple[int, ...],
    request_id: str | None,
) -> ForecastResult:
    first = levels[0]
    points = pd.DataFrame(
        {
            "ds": pred["ds"],
            "step": pred["step"].astype("int64"),
            "yhat": pred["yhat"],
            "yhat_lo": pred[f"yhat_lo_{first}"],
            "yhat_hi": pred[f"yhat_hi_{first}"],
        }
    )
    records = points.to_dict("records")
    if len(levels) > 1:
        lo = pred[[f"yhat_lo_{lv}" for lv in levels]].to_numpy(dtype="float64")
        hi = pred[[f"yhat_hi_{lv}" for lv in levels]].to_numpy(dtype="float64")
        for i, rec in enumerate(records):
            rec["intervals"] = {str(lv): [lo[i, j], hi[i, j]] for j, lv in enumerate(levels)}
    if baseline is not None:
        base = baseline.to_numpy(dtype="float64")
        delta = pred["yhat"].to_numpy(dtype="float64") - base
        for i, rec in enumerate(records):
            rec["yhat_baseline"], rec["delta"] = float(base[i]), float(delta[i])
    if request.explain:
        families = [c.removeprefix("contrib_") for c in pred.columns if c.startswith("contrib_")]
        contrib = pred[[f"contrib_{f}" for f in families]].to_numpy(dtype="float64")
        effect = pred[[f"effect_{f}" for f in families]].to_numpy(dtype="float64")
        bases = pred["base"].to_numpy(dtype="float64")
        for i, rec in enumerate(records):
            rec["base"] = float(bases[i])
            rec["contributions"] = dict(zip(families, contrib[i].tolist(), strict=True))
            rec["effects"] = dict(zip(families, effect[i].tolist(), strict=True))
    sids = pred["series_id"].astype(str).to_numpy()
    observed = history.loc[history["y"].notna()].groupby("series_id", observed=True)["ds"].max()
    n_actuals = actuals["series_id"].value_counts() if actuals is not None else pd.Series(dtype="int64")
    cov = plan["covariates"]
    end = origin + horizon * ctx.step
    series_out, audit = [], []
    ref = model_ref(ctx.loaded)
    for sid in request.ids:
        idx = np.flatnonzero(sids == sid)
        pts = [records[i] for i in idx]
        last = observed.get(sid)
        record = forecast_record(
            ctx,
            request_id,
            input=_request_for(request, sid, ctx.regions([sid])),
            features={
                "origin": origin.isoformat(),
                "history_end": None if last is None else pd.Timestamp(last).isoformat(),
                "actuals_used": int(n_actuals.get(sid, 0)),
                "plan_source": "request+stored" if request.covariates else "stored",
                "covariates": _plan_rows(cov, sid, origin, end),
            },
            output={"points": pts, "levels": list(levels)},
        )
        audit.append(record)
        series_out.append(
            {
                "series_id": sid,
                "decision_id": record.decision_id,
                "history_end": last,
                "actuals_used": int(n_actuals.get(sid, 0)),
                "points": pts,
            }
        )
    response = {
        "model": ref,
        "origin": origin,
        "horizon": horizon,
        "levels": list(levels),
        "what_if": request.is_what_if,
        "baseline_available": (baseline is not None) if request.is_what_if else None,
        "note": note,
        "series": series_out,
    }
    return ForecastResult(response, audit)


def _request_for(request: ForecastIn, sid: str, regions: list[str]) -> dict[str, Any]:
    body = request.model_dump(
        mode="json", exclude={"series_ids", "series_id", "covariates", "weather", "closures"}
    )
    body["series_id"] = sid
    if request.covariates:
        body["covariates"] = [
            r.model_dump(mode="json") for r in request.covariates if r.series_id in (None, sid)
        ]
    if request.weather:
        body["weather"] = [r.model_dump(mode="json") for r in request.weather if r.region in regions]
    if request.closures:
        body["closures"] = [r.model_dump(mode="json") for r in request.closures if r.series_id in (None, sid)]
    return body


def _plan_rows(
    cov: pd.DataFrame | None, sid: str, origin: pd.Timestamp, end: pd.Timestamp
) -> list[dict[str, Any]]:
    if cov is None:
        return []
    mine = cov["series_id"].isna() | (cov["series_id"] == sid) if "series_id" in cov.columns else True
    rows = cov.loc[mine & (cov["ds"] > origin) & (cov["ds"] <= end)]
    return rows.astype({"ds": "string"}).to_dict("records")


def requested_horizon(ctx: ForecastContext, request: ForecastIn) -> int:
    """The request's horizon (default: the model's); 422 when it is longer than the model's."""
    model = ctx.model
    horizon = int(request.horizon or model.horizon)
    if horizon > int(model.horizon):
        raise ApiError(
            f"horizon {horizon} is longer than the model's {model.horizon} steps: ask for at most "
            f"{model.horizon}, or train a model with a longer --horizon",
            status_code=422,
            code="invalid_request",
            details={"horizon": horizon, "model_horizon": int(model.horizon)},
        )
    return horizon


def default_origin(history: pd.DataFrame) -> pd.Timestamp:
    """The last observed step of ``history`` (the default forecast origin)."""
    observed = history.loc[history["y"].notna(), "ds"]
    if observed.empty:
        raise ValueError("the requested series have no observed value to forecast from; pass 'origin'")
    return pd.Timestamp(observed.max())


def forecast_record(
    ctx: ForecastContext,
    request_id: str | None,
    *,
    input: dict[str, Any],
    features: dict[str, Any],
    output: dict[str, Any],
) -> AuditRecord:
    """The audit record of one forecast answer (one series or aggregate) of the served model."""
    return AuditRecord(
        kind="forecast",
        model_name=ctx.loaded.name,
        model_version=str(ctx.loaded.version),
        model_alias=ctx.loaded.alias,
        request_id=request_id,
        input=input,
        features=features,
        output=output,
    )


def _aggregate_hint(ctx: ForecastContext, unknown: list[str]) -> str:
    """For ids that look like aggregates asked by their value (``Bayern``, ``all``): how to name them."""
    hierarchy = getattr(getattr(ctx.model, "hierarchy_", None), "hierarchy_", None)
    totals = [i for i in unknown if i.strip().lower() in ("all", TOTAL)]
    if hierarchy is None:
        if not totals:
            return ""
        return (
            f"; {totals[0]!r} asks for an aggregate, which this model cannot forecast: train it with "
            "`orderpulse train forecast ... --levels total` (or region,total) and ask for 'total'"
        )
    keys = hierarchy.keys()
    by_value = dict(zip(keys["group"].astype(str), keys["key"], strict=True))
    meant = {i: by_value[i] for i in unknown if i in by_value and i != TOTAL}
    meant.update({i: TOTAL for i in totals if TOTAL in set(keys["key"])})
    if not meant:
        return ""
    return f"; aggregates are named '<level>=<value>' or 'total': did you mean {meant}?"
