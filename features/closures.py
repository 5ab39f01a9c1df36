"""Store closures as calendar features: how long ago the store was last closed and how long that closure lasted.

A store that reopens after a refurbishment, or the day after a two-day holiday closure, sells far more than
its usual level. The features read ``open`` at and before ``t`` (never ``y``; ``open`` is known in advance, so
forecast rows carry it):

==============================  ========================================================================
name                            value at t
==============================  ========================================================================
``cal_closed_days_since``       steps since the last closed step (0 on a closed step)
``cal_closed_run_before``       length of the last closed run that ended before t (Sunday: 1; a
                                refurbishment: weeks); on a closed step, its own run's length
==============================  ========================================================================

The run length is 0 when no closed step is within ``cap`` steps. Both are capped at ``cap`` steps
(``ForecastFeatureConfig.event_cap``). A value is missing when it is unknown: the series starts (or a gap
interrupts it) less than ``cap`` steps before ``t`` without a closed step in between, or the closed run starts
at such an edge.

Why nothing looks ahead (days *until* the next closure, its length): a forecast's grid ends with its horizon, so
near the horizon's end the next closure is unknown, while nearly every training row knows it. Measured on 200
Rossmann stores (cut 2015-05-08), look-ahead features raised the WAPE of the horizon's last three days from
0.10 to 0.13 and the whole window's from 0.080 to 0.084; promo and holiday distances (``features.covariates``)
already look ahead where a calendar is given through the horizon.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.covariates import _runs, _since_last
from features.lags import grid_positions

__all__ = ["CLOSURE_FEATURES", "closure_features"]

CLOSURE_FEATURES = ("cal_closed_days_since", "cal_closed_run_before")


def closure_features(
    grid: pd.DataFrame, cap: int, rows: np.ndarray | None = None, known: np.ndarray | None = None
) -> pd.DataFrame:
    """The ``cal_closed_*`` columns (float32) of ``grid`` (``series_id``, ``ds``, ``open``; sorted by
    (series_id, ds) on a full regular grid), for ``rows`` (positions; default all), indexed ``0..len-1``.

    ``known`` (default all True) marks the grid rows whose ``open`` was given; elsewhere (inserted gaps,
    context rows beyond a series' ends) whether the store was open is unknown and stops every search."""
    _, _, start, end = grid_positions(grid["series_id"])
    closed = (grid["open"].to_numpy() == 0).astype("float64")
    if known is not None:
        closed[~np.asarray(known, dtype=bool)] = np.nan
    since = _since_last(closed, start, cap)
    _, _, length = _runs(closed, start, end, cap)
    before = _run_at(length, np.arange(len(closed)) - since, since, cap)
    out = {"cal_closed_days_since": since, "cal_closed_run_before": before}
    if rows is not None:
        out = {k: v[rows] for k, v in out.items()}
    return pd.DataFrame({k: np.asarray(v, dtype="float32") for k, v in out.items()})


def _run_at(length: np.ndarray, at: np.ndarray, distance: np.ndarray, cap: int) -> np.ndarray:
    """The closed-run length at position ``at`` where the distance to it is known and below ``cap``; 0 (no
    closure that near) where the distance is capped; missing where it is unknown."""
    near = np.isfinite(distance) & (distance < cap)
    pos = np.clip(np.where(near, at, 0), 0, max(len(length) - 1, 0)).astype(np.int64)
    value = np.where(near, np.minimum(length[pos], cap), np.nan) if len(length) else np.zeros(0)
    return np.where(np.isfinite(distance) & (distance >= cap), 0.0, value)
