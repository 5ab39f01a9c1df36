"""LightGBM defaults of the forecaster: parameters, threads and horizon buckets (``training.forecast.forecaster``
re-exports them)."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["DEFAULT_LGBM_PARAMS", "default_buckets", "default_n_jobs", "dense_buckets"]

Freq = str

DEFAULT_LGBM_PARAMS: dict[str, Any] = {
    "objective": "regression",
    "learning_rate": 0.08,
    "n_estimators": 400,
    "num_leaves": 127,
    # depth cap: TreeSHAP costs trees x leaves x depth^2 per row; unbounded trees here average depth ~20, so
    # capping at 10 makes explanations ~4x cheaper and fits faster, with no accuracy loss measured on the sample
    "max_depth": 10,
    "min_child_samples": 40,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "max_bin": 127,
    "cat_smooth": 10.0,
    "max_cat_to_onehot": 8,
    "verbose": -1,
}


def default_n_jobs() -> int:
    """Threads for LightGBM: ``ORDERPULSE_N_JOBS`` or the CPU count.

    Oversubscribing OpenMP threads (several processes each using every core, e.g. parallel test workers) makes
    LightGBM many times slower, so tests and multi-process servers set ``ORDERPULSE_N_JOBS=1``.
    """
    value = os.environ.get("ORDERPULSE_N_JOBS")
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"ORDERPULSE_N_JOBS must be a positive integer. Got {value!r} instead.")
        return int(value)
    return os.cpu_count() or 1


def default_buckets(horizon: int, freq: Freq) -> tuple[int, ...]:
    """One bucket covering the whole horizon: a single direct model whose lags all start at ``horizon``.

    Measured on full Rossmann (42 days held out, same LightGBM budget): one bucket gave WAPE 0.073 in 135 s,
    four buckets (7/14/28/42) with the budget cut to fit the same time gave 0.077 in 5x the time, two (14/42)
    0.079: for promo- and calendar-driven demand, model capacity is worth more than short lags. Pass e.g.
    ``buckets=dense_buckets(horizon, freq)`` when recent values carry much
    information (hourly data, fast-moving series).
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1. Got {horizon}.")
    return (int(horizon),)


def dense_buckets(horizon: int, freq: Freq) -> tuple[int, ...]:
    """Buckets dense near the origin and coarse further out: 1 season, 2, 4, 8, ... up to ``horizon``."""
    season = {"H": 24, "D": 7}.get(freq.upper()[:1], 4)
    cuts = [season, 2 * season, 4 * season, 8 * season, 16 * season, 32 * season, 52 * season]
    return tuple(sorted({c for c in cuts if c < horizon} | {horizon}))
