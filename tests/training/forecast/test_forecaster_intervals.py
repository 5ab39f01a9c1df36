"""training/forecast/forecaster.py intervals: split-conformal quantiles per forecast-volume bin (Mondrian), so a
sparse series among dense ones gets an interval that covers its own days."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.forecast.forecaster import LGBMForecaster

SMALL = {"n_estimators": 60, "num_leaves": 15, "min_child_samples": 5, "learning_rate": 0.1}


@pytest.fixture(scope="module")
def sparse_among_dense():
    """Ten dense Poisson series (about 45 a day) and two sparse ones (about 1 a day), weekday +30%."""
    rng = np.random.default_rng(0)
    days = pd.date_range("2024-01-01", periods=260, freq="D")
    rows = []
    for i in range(12):
        base = 40.0 if i < 10 else 1.0
        mu = base * (1 + 0.3 * (days.dayofweek < 5))
        sid = f"{'dense' if i < 10 else 'sparse'}{i}"
        rows.append(pd.DataFrame({"series_id": sid, "ds": days, "y": rng.poisson(mu).astype(float)}))
    frame = pd.concat(rows, ignore_index=True).astype({"series_id": "string"})
    cut = days[-29]
    model = LGBMForecaster(freq="D", horizon=28, params=SMALL, n_jobs=1).fit(frame.loc[frame["ds"] <= cut])
    return model, frame.loc[frame["ds"] > cut]


def _coverage(model, held) -> pd.Series:
    pred = model.predict(28, levels=(80,)).merge(held, on=["series_id", "ds"])
    inside = (pred["y"] >= pred["yhat_lo_80"]) & (pred["y"] <= pred["yhat_hi_80"])
    return inside.groupby(pred["series_id"].str.startswith("sparse")).mean()


def test_quantiles_are_kept_per_bin_of_the_forecast_volume_with_at_least_50_residuals(sparse_among_dense):
    model, _ = sparse_among_dense
    edges, per_bin = model.residual_bins_[28]
    # 12 series x 28 holdout days = 336 residuals: 6 bins of 56 (at most 8, at least 50 residuals each)
    assert len(per_bin) == len(edges) + 1 == 6 and np.all(np.diff(edges) > 0)
    # the lowest-volume quartile (the sparse series' forecasts) has the widest relative interval
    widths = [b["hi_80"] - b["lo_80"] for b in per_bin]
    assert widths[0] == max(widths) and widths[0] > 2 * widths[-1]


def test_a_sparse_series_gets_an_interval_that_covers_its_days_where_pooled_quantiles_did_not(
    sparse_among_dense,
):
    model, held = sparse_among_dense
    binned = _coverage(model, held)
    assert binned[True] >= 0.6 and 0.7 <= binned[False] <= 0.95, binned
    pooled_model = LGBMForecaster(freq="D", horizon=28)
    pooled_model.__dict__.update(model.__dict__)
    pooled_model.residual_bins_ = {}  # what the forecaster did before, and models pickled before still do
    pooled = _coverage(pooled_model, held)
    assert pooled[True] < 0.45 and binned[True] > pooled[True] + 0.25, (pooled, binned)
