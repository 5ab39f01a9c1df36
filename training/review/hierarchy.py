"""Forecast review of the aggregates (a region, the total) for the forecast notebook: what a planner reads for
staffing and stock of a whole region or the company.

Everything comes from what ``orderpulse train forecast --levels ...`` stored with the model
(``model.hierarchy_``, a ``training.forecast.hierarchy.HierarchicalReconciler``): each reconciliation method's
backtest of the aggregates (so the accuracy tables here are the numbers the method was chosen by), the per-level
interval quantiles, and the aggregate model for the coming weeks (``forecast_hierarchy``, the code the CLI and the
API use). Aggregates are named by their key (``total``, ``region=Bayern``) so they can be plotted with
``training.review.forecast_plots.forecast_vs_actual`` next to the series.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from features.calendar import step_length
from features.hierarchy import SERIES_LEVEL, TOTAL, aggregate_key, aggregate_tables
from training.forecast.hierarchy import HierarchicalReconciler, forecast_hierarchy, level_order
from training.metrics import bias, mape, wape
from training.review.forecast import ForecastModel, next_forecast

__all__ = [
    "reconciler",
    "level_accuracy",
    "aggregate_backtest",
    "aggregate_history",
    "pick_aggregates",
    "next_aggregates",
]


def reconciler(fm: ForecastModel) -> HierarchicalReconciler | None:
    """The model's fitted reconciler, or ``None`` when it was trained without ``--levels``."""
    return getattr(fm.model, "hierarchy_", None)


def level_accuracy(rec: HierarchicalReconciler) -> pd.DataFrame:
    """Per reconciliation method and level, on the training run's backtest windows: ``wape``, ``bias`` and
    (the total) ``daily_mape``, with ``chosen`` marking the method the model serves and the chosen method's
    ``coverage_<L>`` per level (each window scored by intervals learned on the other windows)."""
    rows = []
    for method, bt in rec.backtest_.items():
        for lv in level_order(rec.hierarchy_.levels):
            if lv == SERIES_LEVEL:
                continue
            part = bt.loc[bt["level"] == lv]
            rows.append(
                {
                    "method": method,
                    "level": lv,
                    "chosen": method == rec.method_,
                    "wape": wape(part["y"], part["yhat"], part["open"]),
                    "bias": bias(part["y"], part["yhat"], part["open"]),
                    "daily_mape": mape(part["y"], part["yhat"], part["open"]) if lv == TOTAL else np.nan,
                }
            )
    out = pd.DataFrame(rows)
    for lv, cov in rec.coverage_.items():
        for k, v in cov.items():
            out.loc[(out["method"] == rec.method_) & (out["level"] == lv), k] = v
    return out.sort_values(["level", "chosen"], ascending=[True, False], kind="stable").reset_index(drop=True)


def aggregate_backtest(
    rec: HierarchicalReconciler, level: int = 80, method: str | None = None
) -> pd.DataFrame:
    """The aggregates' reconciled backtest (``method``, default the chosen one) with the level's own
    ``level``% interval: ``series_id`` (the key), ``level``, ``window``, ``ds``, ``step``, ``y``, ``yhat``,
    ``yhat_lo_<L>``, ``yhat_hi_<L>``. Intervals use the quantiles calibrated on all windows (in-sample for the
    plot; ``level_accuracy`` has the out-of-window coverage)."""
    name = method or rec.method_
    if name not in rec.backtest_:
        raise ValueError(f"Method {name!r} was not compared at training; use one of {sorted(rec.backtest_)}.")
    bt = rec.backtest_[name]
    out = bt.assign(series_id=_keys(bt))
    return _with_interval(out, rec.quantiles_by_method_[name], level)


def aggregate_history(fm: ForecastModel, rec: HierarchicalReconciler) -> pd.DataFrame:
    """The aggregates' actuals over the model's history: ``series_id`` (the key), ``ds``, ``y``, ``open``."""
    agg, _, _, _ = aggregate_tables(rec.hierarchy_, fm.series)
    return agg[["series_id", "ds", "y", "open"]].assign(series_id=agg["series_id"].astype(str))


def pick_aggregates(rec: HierarchicalReconciler, history: pd.DataFrame, k: int = 3) -> list[str]:
    """``total`` (when trained) and the ``k`` largest aggregates of the first static level by volume."""
    keys = rec.hierarchy_.keys()
    out = [TOTAL] if TOTAL in rec.hierarchy_.levels else []
    if rec.hierarchy_.static_levels:
        first = keys.loc[keys["level"] == rec.hierarchy_.static_levels[0], "key"]
        volume = history.loc[history["series_id"].isin(first)].groupby("series_id")["y"].sum()
        out += volume.sort_values(ascending=False).head(k).index.astype(str).tolist()
    return out


def next_aggregates(
    fm: ForecastModel, level: int = 80, covariates: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """The coherent forecast of the coming weeks for every level (the one ``orderpulse forecast --levels``
    writes), aggregates keyed like ``aggregate_backtest``, with ``y`` where already known; plus notes (as
    ``review.forecast.next_forecast``: the same origin and plan checks). Empty when the plan covers no step."""
    rec = reconciler(fm)
    if rec is None:
        raise ValueError(
            "This model was trained without hierarchy levels: retrain it with `orderpulse train forecast ... "
            "--levels region,total` to review regions and the total."
        )
    series_pred, notes = next_forecast(fm, level=level, covariates=covariates, explain=False)
    columns = ["level", "series_id", "ds", "step", "yhat", f"yhat_lo_{level}", f"yhat_hi_{level}", "y"]
    if series_pred.empty:
        return pd.DataFrame(columns=columns), notes
    tables: dict[str, Any] = {k: fm.tables.get(k) for k in ("covariates", "weather", "static")}
    if covariates is not None:
        tables["covariates"] = covariates
    out = forecast_hierarchy(
        rec,
        series_pred,
        fm.series,
        tables,
        horizon=int(series_pred["step"].max()),
        origin=series_pred["ds"].min() - step_length(fm.model.freq),
        levels=(level,),
    )
    out = out.loc[out["level"] != SERIES_LEVEL]
    out = out.assign(series_id=_keys(out))
    actual = aggregate_history(fm, rec)
    out = out.merge(actual[["series_id", "ds", "y"]], on=["series_id", "ds"], how="left")
    return out[columns].reset_index(drop=True), notes


def _keys(frame: pd.DataFrame) -> list[str]:
    return [
        str(sid) if lv == SERIES_LEVEL else aggregate_key(str(lv), str(sid))
        for lv, sid in zip(frame["level"], frame["series_id"], strict=True)
    ]


def _with_interval(frame: pd.DataFrame, quantiles: dict[str, dict[str, float]], level: int) -> pd.DataFrame:
    log_yhat = np.log1p(frame["yhat"].clip(lower=0).to_numpy())
    closed = frame["yhat"].to_numpy() <= 0
    lo = frame["level"].map(lambda lv: quantiles.get(lv, {}).get(f"lo_{level}", np.nan)).to_numpy(float)
    hi = frame["level"].map(lambda lv: quantiles.get(lv, {}).get(f"hi_{level}", np.nan)).to_numpy(float)
    if np.isnan(lo).all():
        raise ValueError(f"Interval level {level} was not calibrated; available: {sorted(quantiles)}.")
    return frame.assign(
        **{
            f"yhat_lo_{level}": np.where(closed, 0.0, np.clip(np.expm1(log_yhat + lo), 0.0, None)),
            f"yhat_hi_{level}": np.where(closed, 0.0, np.expm1(log_yhat + hi)),
        }
    )
