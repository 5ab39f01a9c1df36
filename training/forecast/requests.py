"""Forecasts of requested rows: what the MLflow pyfunc (``training.pyfunc.ForecastPyfunc``) answers.

A request is a table of the rows to forecast, ``series_id, ds`` plus optional ``open`` and covariate columns.
Each series is forecast from its *origin*, the step before its first requested ``ds``, with the model's
snapshot tables (history, covariates, weather, static); request values override the stored ones for their
(``series_id``, ``ds``) (``training.forecast.whatif.overlay``), and keys past the stored calendar are added. The
result is what ``LGBMForecaster.predict(origin=...)`` (and so ``orderpulse forecast --origin``) gives for those
rows.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from features.calendar import step_length
from training.forecast.forecaster import LGBMForecaster
from training.forecast.whatif import overlay

__all__ = ["forecast_rows", "REQUEST_KEYS"]

REQUEST_KEYS = ("series_id", "ds")
_OPTIONAL = ("open", "horizon")


def forecast_rows(
    model: LGBMForecaster, tables: Mapping[str, pd.DataFrame | None], rows: pd.DataFrame
) -> pd.DataFrame:
    """Forecast the requested ``rows`` (see the module docstring); one output row per request row, in request
    order: ``series_id, ds, step, yhat`` and the ``yhat_lo_<L>``/``yhat_hi_<L>`` of the model's levels."""
    history = tables["series"]
    if history is None or history.empty:
        raise ValueError("the model's series snapshot is empty: retrain it on a non-empty series table")
    req = _request(rows)
    history = history.assign(series_id=history["series_id"].astype(str))
    last = history.groupby("series_id")["ds"].max()
    unknown = sorted(set(req["series_id"]) - set(last.index))
    if unknown:
        raise ValueError(
            f"series {unknown[:5]} ({len(unknown)} in all) are not in the model's snapshot; it knows "
            f"{len(last)} series such as {list(last.index[:5])}. Forecast known series or retrain with them."
        )
    step = step_length(model.freq)
    origin = req.groupby("series_id")["ds"].transform("min") - step
    late = origin > req["series_id"].map(last)
    if late.any():
        first = req.loc[late].iloc[0]
        raise ValueError(
            f"series {first['series_id']!r}: the first requested ds {first['ds']} starts after the snapshot's "
            f"history, which ends {last[first['series_id']]}; request dates from "
            f"{last[first['series_id']] + step} on, or log a model with newer history."
        )
    covariates = _with_overrides(tables.get("covariates"), req)
    if "open" in req.columns:
        opens = req[["series_id", "ds", "open"]].dropna(subset=["open"])
        history = overlay(history, opens.assign(open=opens["open"].astype("float64")), REQUEST_KEYS)
    steps = ((req["ds"] - origin) / step).to_numpy()
    parts = []
    for when, group in req.assign(origin=origin, steps=steps).groupby("origin", sort=True):
        ids = group["series_id"].unique()
        # only the steps asked for: covariates are needed up to the last requested date, not the model's horizon
        horizon = int(min(model.horizon, np.ceil(group["steps"].max())))
        parts.append(
            model.predict(
                horizon,
                group[list(REQUEST_KEYS)],
                series=history.loc[history["series_id"].isin(ids)],
                covariates=covariates,
                weather=tables.get("weather"),
                static=tables.get("static"),
                origin=when,
            )
        )
    pred = pd.concat(parts, ignore_index=True)
    pred["series_id"] = pred["series_id"].astype(str)
    out = req[list(REQUEST_KEYS)].merge(pred, on=list(REQUEST_KEYS), how="left")
    missing = out["yhat"].isna().to_numpy()
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise ValueError(
            f"{int(missing.sum())} requested rows could not be forecast, e.g. series {out['series_id'].iloc[i]!r} "
            f"ds {out['ds'].iloc[i]} ({steps[i]:g} steps after its origin): the model forecasts up to "
            f"{model.horizon} steps of {model.freq} after the step before each series' first requested ds."
        )
    out["series_id"] = out["series_id"].astype("string")
    keep = ["series_id", "ds", "step", "yhat"] + [
        c for c in pred.columns if c.startswith(("yhat_lo_", "yhat_hi_"))
    ]
    return out[keep]


def _request(rows: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in REQUEST_KEYS if c not in rows.columns]
    if missing:
        raise ValueError(
            f"the rows to forecast need columns {list(REQUEST_KEYS)}; {missing} missing "
            f"(got {list(rows.columns)})."
        )
    req = rows.drop(columns=[c for c in ("horizon",) if c in rows.columns]).reset_index(drop=True)
    if req["series_id"].isna().any():
        raise ValueError(f"{int(req['series_id'].isna().sum())} rows have no series_id; give every row one.")
    req["series_id"] = req["series_id"].astype(str)
    ds = pd.to_datetime(req["ds"], errors="coerce")
    bad = ds.isna()
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} rows have a missing or unparseable ds, e.g. {req.loc[bad, 'ds'].iloc[0]!r}; "
            "give dates such as 2015-08-01."
        )
    req["ds"] = ds.dt.tz_localize(None) if ds.dt.tz is not None else ds
    dup = req.duplicated(list(REQUEST_KEYS))
    if dup.any():
        first = req.loc[dup].iloc[0]
        raise ValueError(
            f"{int(dup.sum())} rows repeat a (series_id, ds), e.g. ({first['series_id']!r}, {first['ds']}); "
            "request each date of a series once."
        )
    return req


def _with_overrides(covariates: pd.DataFrame | None, req: pd.DataFrame) -> pd.DataFrame | None:
    """The stored covariates with the request's covariate columns written over them."""
    columns = [c for c in req.columns if c not in (*REQUEST_KEYS, *_OPTIONAL)]
    if not columns:
        return covariates
    known = [] if covariates is None else [c for c in covariates.columns if c not in REQUEST_KEYS]
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise ValueError(
            f"columns {unknown} are neither series_id, ds, open nor covariates the model was trained with "
            f"({known or 'none'}); drop them or retrain with them."
        )
    changes = req[[*REQUEST_KEYS, *columns]].copy()
    assert covariates is not None
    for col in columns:
        if pd.api.types.is_numeric_dtype(covariates[col]):
            numbers = pd.to_numeric(changes[col], errors="coerce")
            bad = numbers.isna() & changes[col].notna()
            if bad.any():
                raise ValueError(
                    f"covariate {col!r} is numeric in the model's covariates; got {changes.loc[bad, col].iloc[0]!r} "
                    f"in {int(bad.sum())} rows."
                )
            changes[col] = numbers.astype("float64")
        else:
            changes[col] = changes[col].astype(object).where(changes[col].notna(), None)
    return overlay(covariates.assign(series_id=covariates["series_id"].astype(str)), changes, REQUEST_KEYS)
