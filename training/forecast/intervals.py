"""Split-conformal interval quantiles: pooled per level, and per forecast-volume bin (Mondrian conformal).

Residuals are out-of-sample errors in the forecaster's log space (``log1p(y) - log1p(yhat)``). Pooled quantiles
give every forecast the same relative interval; a sparse series' small forecasts have far larger relative
residuals than a dense series' large ones, so ``volume_binned_quantiles`` also splits them by the octile of the
forecast's ``log1p`` volume and ``binned_bounds`` gives each forecast row the quantiles of its own bin.

The ensemble's residuals are in the target's units divided by each series' scale (``scaled_bounds``): the same
volume bins keep a country that orders a few times a month from borrowing the quantiles of the busiest series.
"""

from __future__ import annotations

import numpy as np

__all__ = ["conformal_quantiles", "volume_binned_quantiles", "binned_bounds", "scaled_bounds", "VolumeBins"]

VolumeBins = tuple[np.ndarray, list[dict[str, float]]]  # (bin edges in log1p volume, quantiles per bin)

_VOLUME_BINS = 8  # interval quantiles per octile of the forecast's log1p volume (Mondrian conformal)
_MIN_BIN_ROWS = 50  # ... with at least this many holdout residuals per bin, else pooled
_MIN_PART_ROWS = 20  # a bin with fewer residuals borrows the pooled ones


def conformal_quantiles(residuals: np.ndarray, levels: tuple[int, ...]) -> dict[str, float]:
    """``{"lo_80": q, "hi_80": q, ...}``: split-conformal quantiles of out-of-sample residuals per level, with the
    finite-sample correction ``ceil((n+1)(1-alpha/2))/n`` (empty when there are no residuals)."""
    r = np.asarray(residuals, dtype="float64")
    q: dict[str, float] = {}
    for lv in levels:
        if r.size == 0:
            continue
        alpha = 1 - lv / 100
        n = r.size
        hi_p = min(1.0, np.ceil((n + 1) * (1 - alpha / 2)) / n)
        lo_p = max(0.0, np.floor((n + 1) * (alpha / 2)) / n)
        q[f"lo_{lv}"] = float(np.quantile(r, lo_p))
        q[f"hi_{lv}"] = float(np.quantile(r, hi_p))
    return q


def volume_binned_quantiles(
    residuals: np.ndarray, log_volume: np.ndarray, levels: tuple[int, ...]
) -> VolumeBins | None:
    """Quantiles per octile of ``log_volume`` (bins ``(e[k-1], e[k]]``; many equal volumes, e.g. 0, make fewer,
    larger bins), or ``None`` when there are too few residuals for two bins of ``_MIN_BIN_ROWS``."""
    r, v = np.asarray(residuals, dtype="float64"), np.asarray(log_volume, dtype="float64")
    n_bins = min(_VOLUME_BINS, r.size // _MIN_BIN_ROWS)
    if n_bins < 2:
        return None
    edges = np.unique(np.quantile(v, np.arange(1, n_bins) / n_bins, method="lower"))
    edges = edges[edges < v.max()]
    which = np.searchsorted(edges, v, side="left")
    parts = [r[which == b] for b in range(edges.size + 1)]
    return edges, [conformal_quantiles(p if p.size >= _MIN_PART_ROWS else r, levels) for p in parts]


def binned_bounds(bins: VolumeBins, log_volume: np.ndarray, level: int) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)`` log-space quantiles of ``level`` for each forecast row, from the bin of its volume."""
    edges, per_bin = bins
    which = np.searchsorted(edges, log_volume, "left")
    lo = np.array([b[f"lo_{level}"] for b in per_bin])[which]
    hi = np.array([b[f"hi_{level}"] for b in per_bin])[which]
    return lo, hi


def scaled_bounds(
    yhat: np.ndarray, scale: np.ndarray, pooled: dict[str, float], bins: VolumeBins | None, level: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)`` of ``level`` around forecasts ``yhat`` from quantiles of residuals divided by each series'
    ``scale``: ``yhat + q * scale`` with ``q`` of the forecast's ``log1p`` volume bin (``bins`` from
    ``volume_binned_quantiles``), or the ``pooled`` quantiles without bins. The lower quantile is at most 0 and
    the upper at least 0, so ``lo <= yhat <= hi``; ``lo`` is clipped at 0."""
    yhat = np.asarray(yhat, dtype="float64")
    if bins is not None:
        q_lo, q_hi = binned_bounds(bins, np.log1p(np.clip(yhat, 0.0, None)), level)
    else:
        q_lo, q_hi = np.full(yhat.shape, pooled[f"lo_{level}"]), np.full(yhat.shape, pooled[f"hi_{level}"])
    scale = np.asarray(scale, dtype="float64")
    lo = yhat + np.minimum(q_lo, 0.0) * scale
    return np.clip(lo, 0.0, None), yhat + np.maximum(q_hi, 0.0) * scale
