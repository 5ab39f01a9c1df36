"""Forecasts from the served model: history = snapshot + actuals, the stored or a requested plan, what-ifs.

``forecast`` calls ``LGBMForecaster.predict`` exactly as ``training.forecast.job.forecast_frame`` does (the
CLI): the ``series`` history, the ``origin``, and the covariates / weather / static tables, which default to
the snapshot the model was trained with. Only the requested series' rows are passed (the model builds each
series' features from its own rows; the snapshot is indexed once per model version), so the API and the CLI
give the same numbers for the same inputs.

History: the snapshot's rows of the series plus the values appended through ``POST /v1/actuals`` (an actual
replaces the snapshot's value of the same step). The default origin is the latest observed step.

Plan: request ``covariates`` / ``weather`` rows are laid over the stored tables (``overlay_plan``, using
``training.forecast.whatif.overlay`` like the planner notebook, so both show the same numbers); a request with a plan
is a what-if, answered with the forecast under the stored plan next to it
(``yhat_baseline``, ``delta``; ``training.forecast.whatif.baseline_yhat``). Known closures of forecast steps (``closures``) are laid over the history
(``serving.services.closures``) and hold for the baseline too. Covariates are required through the horizon: when neither the stored plan nor
the request covers it, the answer is 400 with the problem and how to send a plan.
"""

from __future__ import annotations

import dataclasses
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.calendar import step_length
from features.errors import DataValidationError, Problem
from serving.errors import ApiError, NotFoundError
from serving.models import LoadedModel
from serving.schemas.forecast import ForecastIn
from serving.services.closures import with_closures
from serving.services.scoring import model_ref
from serving.store.audit import AuditRecord
from training.forecast.whatif import baseline_yhat, overlay

__all__ = [
    "ForecastContext",
    "ForecastResult",
    "context_for",
    "forecast",
    "overlay_plan",
    "forecast_smoke_check",
]


class ForecastContext:
    """The served forecaster and its snapshot tables, indexed by series (built once per model version)."""

    def __init__(self, loaded: LoadedModel) -> None:
        wrapper = loaded.model
        tables = getattr(wrapper, "tables", None)
        if not isinstance(tables, dict) or not isinstance(tables.get("series"), pd.DataFrame):
            raise TypeError(
                f"the forecast model {loaded.name} v{loaded.version} has no series snapshot (got "
                f"{type(wrapper).__name__}): serve a model logged by `orderpulse train forecast`"
            )
        self.loaded = loaded
        self.model = wrapper.model
        self.step = step_length(self.model.freq)
        self.series = _with_string_ids(tables["series"], "series_id")
        self._rows = _group_rows(self.series["series_id"])
        self.anchor = pd.Timestamp(self.series["ds"].min())
        observed = self.series.loc[self.series["y"].notna()]
        self.last_observed = observed.groupby("series_id", observed=True)["ds"].max()
        self.covariates = _optional(tables.get("covariates"), "series_id")
        self._cov_rows: dict[str, np.ndarray] = {}
        self._cov_global = np.array([], dtype="int64")
        if self.covariates is not None and "series_id" in self.covariates.columns:
            self._cov_rows = _group_rows(self.covariates["series_id"])
            self._cov_global = np.flatnonzero(self.covariates["series_id"].isna().to_numpy())
        self.static = _optional(tables.get("static"), "series_id")
        self.weather = _optional(tables.get("weather"), "region")
        self._weather_rows = _group_rows(self.weather["region"]) if self.weather is not None else {}
        self._region: dict[str, str] = {}
        if self.static is not None and "region" in self.static.columns:
            known = self.static.loc[self.static["region"].notna()]
            self._region = dict(zip(known["series_id"], known["region"], strict=True))

    def unknown(self, ids: Sequence[str]) -> list[str]:
        return [i for i in ids if i not in self._rows]

    def history(self, ids: Sequence[str], actuals: pd.DataFrame | None = None) -> pd.DataFrame:
        """The series rows of ``ids``; ``actuals`` replace the snapshot's value of the same (series, ds)."""
        rows = self.series.iloc[np.concatenate([self._rows[i] for i in ids])]
        if actuals is None or actuals.empty:
            return rows.reset_index(drop=True)
        both = pd.concat([rows, actuals[list(rows.columns)]], ignore_index=True)
        both = both.drop_duplicates(["series_id", "ds"], keep="last")
        return both.sort_values(["series_id", "ds"], kind="stable").reset_index(drop=True)

    def covariates_for(self, ids: Sequence[str]) -> pd.DataFrame | None:
        if self.covariates is None or not self._cov_rows:
            return self.covariates
        parts = [self._cov_global] + [self._cov_rows[i] for i in ids if i in self._cov_rows]
        return self.covariates.iloc[np.sort(np.concatenate(parts))].reset_index(drop=True)

    def regions(self, ids: Sequence[str]) -> list[str]:
        return list(dict.fromkeys(self._region[i] for i in ids if i in self._region))

    def weather_for(self, ids: Sequence[str]) -> pd.DataFrame | None:
        if self.weather is None:
            return None
        parts = [self._weather_rows[r] for r in self.regions(ids) if r in self._weather_rows]
        if not parts:  # no region known for these series: the table as the CLI would pass it
            return self.weather
        return self.weather.iloc[np.sort(np.concatenate(parts))].reset_index(drop=True)

    def static_for(self, ids: Sequence[str]) -> pd.DataFrame | None:
        if self.static is None:
            return None
        return self.static.loc[self.static["series_id"].isin(ids)].reset_index(drop=True)

    def off_grid(self, ds: pd.Series) -> np.ndarray:
        """True where a timestamp is not on the model's grid (steps of ``freq`` from the snapshot's first)."""
        return ((ds - self.anchor) % self.step).to_numpy() != np.timedelta64(0, "ns")


@dataclass(frozen=True)
class ForecastResult:
    """The response body (``ForecastOut`` fields) and one audit record per series."""

    response: dict[str, Any]
    records: list[AuditRecord]


_contexts: weakref.WeakKeyDictionary[Any, ForecastContext] = weakref.WeakKeyDictionary()
_contexts_lock = threading.Lock()


def context_for(loaded: LoadedModel) -> ForecastContext:
    """The (cached) context of a loaded forecast model."""
    with _contexts_lock:
        ctx = _contexts.get(loaded.model)
        if ctx is None or ctx.loaded.version != loaded.version:
            ctx = ForecastContext(loaded)
            _contexts[loaded.model] = ctx
        return ctx


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
            "a new series needs a model retrained with its history",
            details={"unknown_series": unknown},
            code="unknown_series",
        )
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
    origin = pd.Timestamp(request.origin) if request.origin is not None else _default_origin(history)
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
        raise _plan_problem(exc, ctx, stored["covariates"], bool(request.covariates)) from None
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


def overlay_plan(
    stored: pd.DataFrame | None,
    rows: list[dict[str, Any]],
    table: str,
    key_column: str,
    targets: Sequence[str],
) -> pd.DataFrame:
    """Lay request rows over the stored table, column by column, on (``key_column``, ``ds``).

    ``table`` is "covariates" (key ``series_id``: a row without one applies to every series in ``targets``)
    or "weather" (key ``region``). Request columns must be columns of the stored table; a request value
    (not null) replaces the stored value of its row, other columns keep theirs, new keys are added. The
    overlay itself is ``training.forecast.whatif.overlay`` (the planner notebook's), after the request rows were
    checked and typed here: ``DataValidationError`` for unknown columns, rows outside ``targets``, duplicate
    rows and non-numbers in numeric columns. Rows without ``series_id`` are spread over ``targets`` first: a
    global row would lose to the stored per-series rows of the same date.
    """
    req = pd.DataFrame(rows)
    if stored is None:
        raise DataValidationError(
            [
                Problem(
                    table,
                    None,
                    f"the model was trained without a {table} table",
                    f"remove '{table}' from the request (the model has no such features)",
                    len(req),
                )
            ]
        )
    if key_column in req.columns and req[key_column].isna().all() and key_column not in stored.columns:
        req = req.drop(columns=[key_column])
    problems: list[Problem] = []
    values = [c for c in req.columns if c not in (key_column, "ds")]
    unknown = [c for c in values if c not in stored.columns]
    if unknown:
        problems.append(
            Problem(
                table,
                ",".join(unknown),
                "columns the model was not trained with",
                f"use the model's {table} columns: {[c for c in stored.columns if c not in (key_column, 'ds')]}",
                len(req),
            )
        )
    if key_column in req.columns:
        given = req[key_column].notna()
        if table == "covariates" and key_column in stored.columns:
            spread = req.loc[~given].drop(columns=[key_column])
            req = pd.concat(
                [req.loc[given], spread.merge(pd.DataFrame({key_column: list(targets)}), how="cross")],
                ignore_index=True,
            )
        outside = req.loc[req[key_column].notna() & ~req[key_column].isin(list(targets)), key_column]
        if len(outside):
            problems.append(
                Problem(
                    table,
                    key_column,
                    f"rows for {key_column} outside this request",
                    f"send plan rows only for {list(targets)[:10]}",
                    len(outside),
                    [{key_column: v} for v in outside.unique()[:3]],
                )
            )
    key = [c for c in (key_column, "ds") if c in req.columns]
    if key_column in req.columns and key_column not in stored.columns:
        stored = stored.assign(**{key_column: pd.Series(pd.NA, index=stored.index, dtype="string")})
    dup = req.duplicated(key, keep=False)
    if dup.any():
        problems.append(
            Problem(
                table,
                ",".join(key),
                "several rows for the same key",
                "send one row per key",
                int(dup.sum()),
                req.loc[dup, key].head(3).astype(str).to_dict("records"),
            )
        )
    for col in [c for c in values if c in stored.columns]:
        if pd.api.types.is_numeric_dtype(stored[col]):
            numbers = pd.to_numeric(req[col], errors="coerce")
            bad = numbers.isna() & req[col].notna()
            if bad.any():
                problems.append(
                    Problem(
                        table,
                        col,
                        "not a number",
                        f"{col} is numeric in the model's {table}",
                        int(bad.sum()),
                        [{col: v} for v in req.loc[bad, col].head(3)],
                    )
                )
            req[col] = numbers.astype("float64")
        else:
            req[col] = req[col].map(_label, na_action="ignore").astype("string")
    if problems:
        raise DataValidationError(problems)
    if key_column in req.columns:
        req[key_column] = req[key_column].astype("string")
    merged = overlay(stored, req, (key_column, "ds"))
    for col in stored.columns:  # keep the stored dtypes (the overlay's union of rows may widen them)
        if isinstance(stored[col].dtype, pd.StringDtype):
            merged[col] = merged[col].astype("string")
    return merged.sort_values(key, kind="stable").reset_index(drop=True)


def forecast_smoke_check(loaded: LoadedModel) -> None:
    """Refuse a forecast model that cannot forecast: one step for one snapshot series, from its last-but-one step."""
    ctx = ForecastContext(loaded)
    for attribute in ("predict", "horizon", "freq"):
        if not hasattr(ctx.model, attribute):
            raise TypeError(f"the forecast model's estimator {type(ctx.model).__name__} has no {attribute!r}")
    if ctx.last_observed.empty:
        raise ValueError("the forecast model's series snapshot has no observed value")
    series_id = str(ctx.last_observed.index[0])
    origin = pd.Timestamp(ctx.last_observed.iloc[0]) - ctx.step
    ids = [series_id]
    pred = ctx.model.predict(
        1,
        levels=(),
        series=ctx.history(ids),
        origin=origin,
        covariates=ctx.covariates_for(ids),
        weather=ctx.weather_for(ids),
        static=ctx.static_for(ids),
    )
    yhat = pred["yhat"].to_numpy(dtype="float64")
    if yhat.shape != (1,) or not (np.isfinite(yhat).all() and yhat[0] >= 0):
        raise ValueError(
            f"a 1-step forecast of series {series_id!r} from {origin} gave {yhat!r}, not one value >= 0"
        )
    with _contexts_lock:  # the first forecast of this version reuses the indexes built here
        _contexts[loaded.model] = ctx


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
        record = AuditRecord(
            kind="forecast",
            model_name=ctx.loaded.name,
            model_version=str(ctx.loaded.version),
            model_alias=ctx.loaded.alias,
            request_id=request_id,
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


def _default_origin(history: pd.DataFrame) -> pd.Timestamp:
    observed = history.loc[history["y"].notna(), "ds"]
    if observed.empty:
        raise ValueError("the requested series have no observed value to forecast from; pass 'origin'")
    return pd.Timestamp(observed.max())


def _plan_problem(
    exc: DataValidationError, ctx: ForecastContext, stored: pd.DataFrame | None, planned: bool
) -> DataValidationError:
    """Say, in the covariates problem, where the stored plan ends and how to send one in the request."""
    end = None if stored is None or stored.empty else pd.Timestamp(stored["ds"].max()).date()
    columns = [] if stored is None else [c for c in stored.columns if c not in ("series_id", "ds")]
    hint = (
        f"; the model's stored covariates end at {end}, so a forecast past that date needs the plan for the horizon "
        f'in the request: "covariates": [{{"ds": ..., "series_id"?: ..., {", ".join(repr(c) + ": ..." for c in columns)}}}]'
        + (" (the request's covariates do not cover every forecast date either)" if planned else "")
    )
    problems = [
        dataclasses.replace(p, fix=p.fix + hint) if p.table == "covariates" else p for p in exc.problems
    ]
    return DataValidationError(problems)


def _label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _with_string_ids(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    if isinstance(frame[column].dtype, pd.StringDtype):
        return frame.reset_index(drop=True)
    return frame.assign(**{column: frame[column].astype("string")}).reset_index(drop=True)


def _optional(frame: pd.DataFrame | None, column: str) -> pd.DataFrame | None:
    if frame is None:
        return None
    return _with_string_ids(frame, column) if column in frame.columns else frame.reset_index(drop=True)


def _group_rows(ids: pd.Series) -> dict[str, np.ndarray]:
    known = ids.notna().to_numpy()
    positions = np.flatnonzero(known)
    groups = pd.Series(positions).groupby(ids.to_numpy(dtype=object)[known]).indices
    return {str(k): positions[v] for k, v in groups.items()}
