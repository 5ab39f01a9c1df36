"""training/forecast/intervals.py: split-conformal quantiles, per volume bin, and the scaled bounds of the
ensemble (residuals divided by each series' scale, quantiles of the forecast's volume bin)."""

from __future__ import annotations

import numpy as np
import pytest

from training.forecast.intervals import conformal_quantiles, scaled_bounds, volume_binned_quantiles


def test_scaled_bounds_take_each_forecasts_own_volume_bin_times_its_series_scale():
    # two bins split at log1p volume 1.0: small forecasts (y - yhat)/scale in [-0.5, 3], large ones in [-2, 2]
    bins = (np.array([1.0]), [{"lo_80": -0.5, "hi_80": 3.0}, {"lo_80": -2.0, "hi_80": 2.0}])
    yhat = np.array([0.5, 100.0])
    scale = np.array([0.4, 10.0])
    lo, hi = scaled_bounds(yhat, scale, {"lo_80": -9.0, "hi_80": 9.0}, bins, 80)
    assert lo == pytest.approx([0.5 - 0.5 * 0.4, 100.0 - 2.0 * 10.0])
    assert hi == pytest.approx([0.5 + 3.0 * 0.4, 100.0 + 2.0 * 10.0])


def test_scaled_bounds_without_bins_use_the_pooled_quantiles_contain_yhat_and_stay_non_negative():
    yhat = np.array([0.2, 3.0])
    # quantiles on one side of 0 (a biased window) still give lo <= yhat <= hi
    lo, hi = scaled_bounds(yhat, np.array([1.0, 1.0]), {"lo_80": 0.5, "hi_80": 2.0}, None, 80)
    assert lo == pytest.approx([0.2, 3.0]) and hi == pytest.approx([2.2, 5.0])
    lo, hi = scaled_bounds(yhat, np.array([1.0, 1.0]), {"lo_80": -1.0, "hi_80": -0.5}, None, 80)
    assert lo == pytest.approx([0.0, 2.0]) and hi == pytest.approx([0.2, 3.0])


def test_volume_bins_keep_the_quantiles_of_large_forecasts_apart_from_the_many_small_ones():
    rng = np.random.default_rng(0)
    small = rng.choice([-0.5, 2.0], size=900, p=[0.8, 0.2])  # sparse: mostly no order, sometimes one
    large = rng.normal(0.0, 1.5, size=300)
    residuals = np.concatenate([small, large])
    volume = np.concatenate([np.full(900, 0.2), np.full(300, 4.0)])
    bins = volume_binned_quantiles(residuals, volume, (80,))
    pooled = conformal_quantiles(residuals, (80,))
    lo, _ = scaled_bounds(np.array([np.expm1(4.0)]), np.array([1.0]), pooled, bins, 80)
    lo_pooled, _ = scaled_bounds(np.array([np.expm1(4.0)]), np.array([1.0]), pooled, None, 80)
    # the large forecasts' lower quantile is their own (about -1.9), not the sparse series' -0.5
    assert np.expm1(4.0) - lo[0] == pytest.approx(1.28 * 1.5, abs=0.35)
    assert np.expm1(4.0) - lo_pooled[0] == pytest.approx(0.5, abs=0.01)
