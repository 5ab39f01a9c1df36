"""Forecast plots for MLflow artifacts, reports and the planner notebooks.

Every function returns a matplotlib ``Figure`` with a title, axis labels with units and a legend, so a
non-engineer can read it. Nothing here computes a model output: the frames come from ``predict``/``backtest``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

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
    "subset_note",
    "series_order",
    "daily_total",
    "accuracy_bars",
    "coverage_by_step",
    "what_if",
    "change_by_family",
]


def pick_series(predictions: pd.DataFrame, k: int = 6) -> list[str]:
    """``k`` series spread over the range of volumes, deterministic, in series order (numeric ids by number)."""
    totals = predictions.groupby("series_id", observed=True)["y"].sum().sort_values()
    if totals.empty:
        return []
    idx = np.unique(np.linspace(0, len(totals) - 1, min(k, len(totals))).round().astype(int))
    return series_order(str(s) for s in totals.index[idx])


def series_order(ids: Iterable[object]) -> list[str]:
    """Series ids as text, each once, sorted numerically when every id is a whole number (``9 < 88 < 1000``),
    else alphabetically: the order of every review table and chart."""
    text = sorted({str(i) for i in ids})
    if text and all(t.lstrip("-").isdigit() for t in text):
        return sorted(text, key=int)
    return text


def subset_note(shown: int, total: int, what: str = "series") -> str:
    """``" (4 of 8 series)"`` when a chart shows part of the data, ``""`` when it shows all of it."""
    return f" ({shown} of {total} {what})" if 0 < shown < total else ""


def forecast_vs_actual(
    predictions: pd.DataFrame,
    history: pd.DataFrame | None = None,
    series: Sequence[str] | None = None,
    level: int = 80,
    history_steps: int = 56,
    unit: str = "units",
    title: str = "Forecast vs actual",
    what: str = "series",
) -> Figure:
    """Small multiples: actuals (line), forecast (line) and its ``level``% interval (band) per series.

    ``predictions`` needs ``series_id, ds, yhat`` (+ ``y`` to draw actuals, + ``yhat_lo_<L>/yhat_hi_<L>``);
    ``history`` (optional, ``series_id, ds, y``) adds the last ``history_steps`` actuals before the forecast.
    Backtest windows that do not overlap are drawn side by side on one axis; overlapping ones get a panel each
    (titled with their origin), so no date shows two forecasts. The title says when only some series are shown
    (``what`` names them: ``"aggregates"`` titles each panel by its id alone, ``region=Bayern`` or ``total``).
    """
    ids = (
        list(series)
        if series is not None
        else pick_series(predictions if "y" in predictions else predictions.assign(y=predictions["yhat"]))
    )
    panels = []  # (series id, panel title, rows of predictions)

    def name(sid: str) -> str:
        return f"series {sid}" if what == "series" else str(sid)

    for sid in ids:
        p = predictions.loc[predictions["series_id"].astype(str) == sid].sort_values("ds")
        windows = [g for _, g in p.groupby("window")] if "window" in p.columns else [p]
        if _overlap(windows):
            for g in windows:
                origin = (
                    f", origin {pd.Timestamp(g['origin'].iloc[0]):%Y-%m-%d}" if "origin" in g.columns else ""
                )
                panels.append((sid, f"{name(sid)}, window {g['window'].iloc[0]}{origin}", [g]))
        else:
            panels.append((sid, name(sid), windows))
    n = max(len(panels), 1)
    cols = 2 if n > 1 else 1
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 2.6 * rows), squeeze=False, sharex=False)
    lo, hi = f"yhat_lo_{level}", f"yhat_hi_{level}"
    for ax, (sid, panel_title, windows) in zip(axes.flat, panels, strict=False):
        if history is not None:
            start = min(g["ds"].min() for g in windows)
            h = history.loc[history["series_id"].astype(str) == sid].sort_values("ds")
            h = h.loc[h["ds"] < start].tail(history_steps)
            ax.plot(h["ds"], h["y"], color="black", linewidth=1, label="actual (history)")
        for i, g in enumerate(windows):
            if lo in g.columns and hi in g.columns:
                ax.fill_between(
                    g["ds"],
                    g[lo],
                    g[hi],
                    color="tab:blue",
                    alpha=0.2,
                    label=f"{level}% interval" if i == 0 else None,
                )
            ax.plot(g["ds"], g["yhat"], color="tab:blue", linewidth=1.5, label="forecast" if i == 0 else None)
            if "y" in g.columns:
                ax.plot(
                    g["ds"],
                    g["y"],
                    color="black",
                    linewidth=1,
                    linestyle="--",
                    label="actual" if i == 0 else None,
                )
        ax.set_title(panel_title, fontsize=10)
        ax.set_ylabel(unit)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper right", fontsize=8)
    fig.suptitle(title + subset_note(len(ids), int(predictions["series_id"].nunique()), what))
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
    ax.axvline(
        float(np.mean(err)) if err.size else 0.0, color="red", linestyle="--", label="mean error (bias)"
    )
    ax.set(xlabel=f"error ({unit})", ylabel="number of forecasts", title="Forecast errors on open periods")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def feature_importance(
    names: Sequence[str],
    gains: Sequence[float],
    top: int = 25,
    title: str = "Feature importance (total gain)",
) -> Figure:
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


# ------------------------------------------------------------------------------------------ review plots
# Figures of the planner notebooks and ``orderpulse report``; their tables come from ``training.review.forecast``.


def daily_total(
    totals: pd.DataFrame, unit: str = "units", title: str = "Total across series per day"
) -> Figure:
    """Actual vs forecast total per day (``training.review.forecast.daily_totals``: ``ds, actual, forecast[, window]``)."""
    windows = (
        [g.sort_values("ds") for _, g in totals.groupby("window")] if "window" in totals.columns else [totals]
    )
    panels = [[g] for g in windows] if _overlap(windows) else [windows]  # overlapping windows: a panel each
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 3.5 * len(panels)), squeeze=False)
    for ax, groups in zip(axes.flat, panels, strict=True):
        for i, g in enumerate(groups):
            ax.plot(g["ds"], g["actual"], color="black", linewidth=1.2, label="actual" if i == 0 else None)
            ax.plot(
                g["ds"],
                g["forecast"],
                color="tab:blue",
                linewidth=1.5,
                linestyle="--",
                label="forecast" if i == 0 else None,
            )
        part = f" (window {groups[0]['window'].iloc[0]})" if len(panels) > 1 else ""
        ax.set(xlabel="date", ylabel=f"{unit} per day (all series)", title=title + part)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
        ax.tick_params(axis="x", labelrotation=30)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def accuracy_bars(
    table: pd.DataFrame, label: str, metric: str = "wape", title: str | None = None, top: int = 25
) -> Figure:
    """Horizontal bars of ``metric`` (a fraction, drawn in %) per row of ``table`` labelled by ``label``.

    For ``training.review.forecast`` tables: series (``label="series_id"``), segments (``label="value"``).
    """
    rows = table.dropna(subset=[metric])
    grouped = "segment" in rows.columns and label == "value"
    rows = (
        rows.sort_values(["segment", metric], ascending=[False, True])
        if grouped
        else rows.sort_values(metric)
    )
    n_rows = len(rows)
    rows = rows.tail(top)
    names = (
        rows["segment"].astype(str) + " = " + rows[label].astype(str) if grouped else rows[label].astype(str)
    )
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.32 * len(rows) + 1)))
    ax.barh(names, rows[metric].to_numpy() * 100, color="tab:orange")
    ax.set(
        xlabel=f"{metric.upper()} (%)",
        ylabel="segment" if grouped else label.replace("_", " "),
        title=(title or f"{metric.upper()} by {label.replace('_', ' ')}")
        + (f" (the {len(rows)} highest of {n_rows})" if len(rows) < n_rows else ""),
    )
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    return fig


def coverage_by_step(table: pd.DataFrame, title: str = "Interval coverage by forecast step") -> Figure:
    """Observed coverage (bars) vs nominal level (dashed line) per range of steps
    (``training.review.forecast.coverage_by_step``)."""
    levels = sorted(int(c.removeprefix("coverage_")) for c in table.columns if c.startswith("coverage_"))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    x = np.arange(len(table))
    width = 0.8 / max(len(levels), 1)
    colors = ["tab:blue", "tab:green", "tab:purple", "tab:brown"]
    for i, lv in enumerate(levels):
        color = colors[i % len(colors)]
        ax.bar(
            x + i * width - 0.4 + width / 2,
            table[f"coverage_{lv}"] * 100,
            width,
            color=color,
            alpha=0.8,
            label=f"{lv}% interval: observed",
        )
        ax.axhline(lv, color=color, linestyle="--", linewidth=1, label=f"{lv}% interval: target")
    ax.set_xticks(x, table["steps"].astype(str))
    ax.set(
        xlabel="forecast steps ahead", ylabel="actuals inside the interval (%)", title=title, ylim=(0, 105)
    )
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def what_if(
    result: pd.DataFrame,
    series: Sequence[str] | None = None,
    level: int = 80,
    unit: str = "units",
    title: str = "What-if: base plan vs scenario",
) -> Figure:
    """Per series: the forecast under the stored plan and under the scenario (with its interval), and the
    daily difference as bars (``training.forecast.whatif.what_if`` output: ``yhat``, ``yhat_base``, ``delta``)."""
    ids = list(series) if series is not None else [str(s) for s in result["series_id"].unique()[:4]]
    fig, axes = plt.subplots(
        len(ids), 2, figsize=(12, 2.8 * len(ids)), squeeze=False, gridspec_kw={"width_ratios": [2, 1]}
    )
    lo, hi = f"yhat_lo_{level}", f"yhat_hi_{level}"
    for (ax, ax_d), sid in zip(axes, ids, strict=True):
        r = result.loc[result["series_id"].astype(str) == str(sid)].sort_values("ds")
        if lo in r.columns and hi in r.columns:
            ax.fill_between(
                r["ds"], r[lo], r[hi], color="tab:orange", alpha=0.15, label=f"scenario {level}% interval"
            )
        ax.plot(r["ds"], r["yhat_base"], color="grey", linestyle="--", linewidth=1.3, label="base plan")
        ax.plot(r["ds"], r["yhat"], color="tab:orange", linewidth=1.6, label="scenario")
        ax.set(title=f"series {sid}", ylabel=f"{unit} per day")
        colors = np.where(r["delta"].to_numpy() >= 0, "tab:green", "tab:red")
        ax_d.bar(r["ds"], r["delta"], color=colors)
        ax_d.axhline(0, color="grey", linewidth=0.8)
        ax_d.set(title=f"series {sid}: scenario - base", ylabel=f"{unit} per day")
        for a in (ax, ax_d):
            a.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))
            a.tick_params(axis="x", labelrotation=30, labelsize=8)
            a.set_xlabel("date")
    axes[0, 0].legend(fontsize=8, loc="upper left")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def change_by_family(
    table: pd.DataFrame,
    unit: str = "units",
    title: str = "What makes the difference (TreeSHAP by feature family)",
) -> Figure:
    """Grouped bars: the change of the forecast attributed to each feature family, per series
    (``training.review.forecast.change_by_family``; the ``all`` row and the ``total`` column are not drawn)."""
    rows = table.loc[table["series_id"].astype(str) != "all"]
    fams = [c for c in table.columns if c not in ("series_id", "total")]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    x = np.arange(len(fams))
    width = 0.8 / max(len(rows), 1)
    for i, (_, r) in enumerate(rows.iterrows()):
        ax.bar(
            x + i * width - 0.4 + width / 2,
            r[fams].to_numpy(dtype=float),
            width,
            label=f"series {r['series_id']} (total {r['total']:+,.0f})",
        )
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xticks(x, fams)
    ax.set(
        xlabel="feature family", ylabel=f"change of the forecast ({unit}, summed over the days)", title=title
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------ helpers
def _overlap(windows: Sequence[pd.DataFrame]) -> bool:
    """True when two of the frames share a ``ds`` (overlapping backtest windows)."""
    seen: set = set()
    for g in windows:
        days = set(pd.to_datetime(g["ds"]).unique())
        if seen & days:
            return True
        seen |= days
    return False
