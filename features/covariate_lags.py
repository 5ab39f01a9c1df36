"""Lags of known-in-advance covariates: last week's markdown, the promo of two weeks ago.

Weekly retail demand reacts to a markdown or promo after it ends (pull-forward, then a dip), so the forecast
frame of weekly data also carries, for each numeric covariate value ``cov_<name>`` and each covariate flag
(``promo_flag``, ``holiday_state_flag``...), its value ``k`` steps earlier: ``<column>_lag_<k>`` for ``k`` in
``ForecastFeatureConfig.covariate_lags`` (default (1, 2) for weekly data, none for daily and hourly data, whose
promo run features already say how long ago a promo ended). The name keeps the column's family (promo,
holiday, covariates) for explanations.

Covariates are known in advance, so a lag reads nothing that is unknown at the forecast origin; a lag is
missing where the covariate table has no value ``k`` steps earlier (never 0), and never reaches into another
series.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.lags import grid_positions

__all__ = ["covariate_lag_features", "lagged_columns"]


def lagged_columns(columns: list[str]) -> list[str]:
    """The covariate feature columns that get lags: numeric ``cov_*`` values and ``*_flag`` columns."""
    return [c for c in columns if c.endswith("_flag") or c.startswith("cov_")]


def covariate_lag_features(grid: pd.DataFrame, cov: pd.DataFrame, lags: tuple[int, ...]) -> pd.DataFrame:
    """``<column>_lag_<k>`` of the numeric lagged columns of ``cov`` (covariate features aligned to ``grid``,
    which is sorted by (series_id, ds) on a full regular grid); float32, indexed like ``cov``."""
    _, pos, _, _ = grid_positions(grid["series_id"])
    out: dict[str, np.ndarray] = {}
    for col in lagged_columns(list(cov.columns)):
        if not pd.api.types.is_numeric_dtype(cov[col]):
            continue  # categorical covariates: their flag (when they have one) is lagged instead
        values = cov[col].to_numpy(dtype="float64", na_value=np.nan)
        for k in lags:
            shifted = np.full(len(values), np.nan)
            shifted[k:] = values[:-k] if k < len(values) else []
            out[f"{col}_lag_{k}"] = np.where(pos >= k, shifted, np.nan).astype("float32")
    return pd.DataFrame(out, index=cov.index)
