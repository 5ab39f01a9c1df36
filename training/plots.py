"""Forecast plots for MLflow artifacts, reports and the planner notebooks.

Every function returns a matplotlib ``Figure`` with a title, axis labels with units and a legend, so a
non-engineer can read it. Nothing here computes a model output: the frames come from ``predict``/``backtest``.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # headless: CI, servers, nbconvert
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = [
    "forecast_vs_actual",
    "residual_histogram",
    "feature_importance",
    "family_contributions",
    "pick_series",
]


def pick_series(predictions: pd.DataFrame, k: int = 6) -> list[str]:
    """``k`` series spread over the range of volumes (smallest to largest), deterministic."""
    totals = predictions.groupby("series_id", observed=True)["y"].sum().sort_values()
    if totals.empty:
        return []
    idx = np.unique(np.linspace(0, len(totals) - 1, min(k, len(totals))).round().astype(int))
    return [str(s) for s in totals.index[idx]]


def forecast_vs_actual(
    predictions: pd.DataFrame,
    history: pd.DataFrame | None = None,
    series: Sequence[str] | None = None,
    level: int = 80,
    history_steps: int = 56,
    unit: str = "units",
    title: str = "Forecast vs actual",
) -> Figure:
    """Small multiples: actuals (line), forecast (line) and its ``level``% interval (band) per series.

    ``predictions`` needs ``series_id, ds, yhat`` (+ ``y`` to draw actuals, + ``yhat_lo_<L>/yhat_hi_<L>``);
    ``history`` (optional, ``series_id, ds, y``) adds the last ``history_steps`` actuals before the forecast.
    Several backtest windows are drawn side by side on the same axis.
    """
    ids = list(series) if series is not None else pick_series(predictions if "y" in predictions else
                                                               predictions.assign(y=predictions["yhat"]))
    n = max(len(ids), 1)
    cols = 2 if n > 1 else 1
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 2.6 * rows), squeeze=False, sharex=False)
    lo, hi = f"yhat_lo_{level}", f"yhat_hi_{level}"
    for ax, sid in zip(axes.flat, ids, strict=False):
        p = predictions.loc[predictions["series_id"].astype(str) == sid].sort_values("ds")
        if history is not None:
            h = history.loc[history["series_id"].astype(str) == sid].sort_values("ds")
            h = h.loc[h["ds"] < p["ds"].min()].tail(history_steps)
            ax.plot(h["ds"], h["y"], color="black", linewidth=1, label="actual (history)")
        groups = p.groupby("window") if "window" in p.columns else [(None, p)]
        for i, (_, g) in enumerate(groups):
            if lo in g.columns and hi in g.columns:
                ax.fill_between(g["ds"], g[lo], g[hi], color="tab:blue", alpha=0.2,
                                label=f"{level}% interval" if i == 0 else None)
            ax.plot(g["ds"], g["yhat"], color="tab:blue", linewidth=1.5, label="forecast" if i == 0 else None)
            if "y" in g.columns:
                ax.plot(g["ds"], g["y"], color="black", linewidth=1, linestyle="--",
                        label="actual" if i == 0 else None)
        ax.set_title(f"series {sid}", fontsize=10)
        ax.set_ylabel(unit)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    for ax in list(axes.flat)[len(ids):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper right", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def residual_histogram(predictions: pd.DataFrame, unit: str = "units") -> Figure:
    """Histogram of forecast errors (forecast minus actual) on open periods, with the bias marked."""
    ok = predictions["y"].notna()
    if "open" in predictions.columns:
        ok &= predictions["open"] == 1
    err = (predictions.loc[ok, "yhat"] - predictions.loc[ok, "y"]).to_numpy()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(err, bins=60, color="tab:blue", alpha=0.8, label="forecast - actual")
    ax.axvline(float(np.mean(err)) if err.size else 0.0, color="red", linestyle="--", label="mean error (bias)")
    ax.set(xlabel=f"error ({unit})", ylabel="number of forecasts", title="Forecast errors on open periods")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def feature_importance(names: Sequence[str], gains: Sequence[float], top: int = 25,
                       title: str = "Feature importance (total gain)") -> Figure:
    """Horizontal bar chart of the ``top`` features by LightGBM total gain (share of the total)."""
    s = pd.Series(np.asarray(gains, dtype=float), index=list(names))
    s = (s / s.sum() if s.sum() > 0 else s).sort_values().tail(top)
    fig, ax = plt.subplots(figsize=(7, max(3.0, 0.28 * len(s))))
    ax.barh(s.index, s.to_numpy() * 100, color="tab:blue")
    ax.set(xlabel="share of total gain (%)", ylabel="feature", title=title)
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    return fig


def family_contributions(explained: pd.DataFrame, title: str = "What drives the forecast") -> Figure:
    """Mean effect of each feature family (``effect_<family>`` columns, multiplicative) over time.

    One line per family of the average effect in percent over the forecast rows of each date: "+18%" means
    that family lifts the forecast by 18% relative to the model's base level.
    """
    cols = [c for c in explained.columns if c.startswith("effect_")]
    rows = explained.loc[explained["yhat"] > 0] if "yhat" in explained.columns else explained
    daily = rows.groupby("ds")[cols].mean() * 100
    fig, ax = plt.subplots(figsize=(8, 4))
    for c in cols:
        ax.plot(daily.index, daily[c], label=c.removeprefix("effect_"), linewidth=1.5)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set(xlabel="date", ylabel="effect on the forecast (%)", title=title)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
    ax.tick_params(axis="x", labelrotation=30)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig
