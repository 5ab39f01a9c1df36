"""Plots behind ``orderpulse report monitoring``: live accuracy against the training reference, coverage by step,
calibration and input drift.

The inputs are what ``serving.services.monitoring`` computes (this module imports nothing from ``serving/``):
``timeline`` is ``monitoring_timeline(...)`` (one row per ``period``, ``model_name``, ``model_version``,
``kind``: ``matched``, ``wape``, ``bias``, ``coverage``, ``auprc``, ``precision``, ``recall``, ``ece``,
``base_rate``), ``summary`` is the ``GET /v1/monitoring`` body (``forecast.by_step``, ``forecast.by_version``
with each version's ``backtest_wape``, ``anomaly.by_version`` with ``validation_auprc``, ``drift.<kind>.features``
with each feature's ``psi``). Like ``training.review.forecast_plots``, every function returns a matplotlib
``Figure`` with a title, labelled axes and a legend; a panel with no data says so in the figure instead of
failing, so the report always renders.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: CI, servers
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from training.review.order_plots import calibration  # noqa: E402
from training.review.orders import reliability  # noqa: E402

__all__ = [
    "accuracy_over_time",
    "coverage_by_step",
    "live_calibration",
    "drift_by_feature",
    "PSI_WARNING",
    "PSI_ALERT",
]

PSI_WARNING = 0.25
PSI_ALERT = 0.5


def accuracy_over_time(timeline: pd.DataFrame, summary: Mapping[str, Any]) -> Figure:
    """Two panels: live forecast WAPE per period and version, each with its backtest WAPE as a dashed line of
    the same colour; live AUPRC per period and version with its validation AUPRC."""
    fig, axes = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    panels = (
        ("forecast", "wape", "backtest_wape", "WAPE (lower is better)", "Forecast: live WAPE vs backtest"),
        (
            "anomaly",
            "auprc",
            "validation_auprc",
            "AUPRC (higher is better)",
            "Exception scores: live AUPRC vs validation",
        ),
    )
    for ax, (kind, metric, ref_key, ylabel, title) in zip(axes, panels, strict=True):
        rows = (
            timeline.loc[(timeline["kind"] == kind) & timeline[metric].notna()] if len(timeline) else timeline
        )
        refs = {
            (v["model_name"], str(v["model_version"])): v.get(ref_key)
            for v in (summary.get(kind) or {}).get("by_version", [])
        }
        if rows is None or rows.empty:
            _empty(ax, f"no matched {kind} answers in the window")
        for i, ((name, version), part) in enumerate(rows.groupby(["model_name", "model_version"], sort=True)):
            colour = f"C{i % 10}"
            period = pd.to_datetime(part["period"])
            ax.plot(period, part[metric], marker="o", color=colour, label=f"{name} v{version} live")
            ref = refs.get((name, str(version)))
            if ref is not None:
                ax.axhline(
                    ref, color=colour, linestyle="--", linewidth=1, label=f"v{version} {ref_key} {ref:.3f}"
                )
        ax.set(ylabel=ylabel, title=title)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    axes[-1].set_xlabel("period (UTC)")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def coverage_by_step(summary: Mapping[str, Any]) -> Figure:
    """Share of matched forecast steps inside the interval, per horizon step, against the nominal level; the
    bar labels give the matched steps behind each share."""
    forecast = summary.get("forecast") or {}
    steps = [s for s in forecast.get("by_step", []) if s.get("coverage") is not None]
    level = forecast.get("level")
    fig, ax = plt.subplots(figsize=(11, 4))
    if not steps:
        _empty(ax, "no matched forecast steps with an interval in the window")
    else:
        x = np.array([s["step"] for s in steps])
        cov = np.array([s["coverage"] for s in steps]) * 100
        bars = ax.bar(x, cov, color="tab:blue", label="live coverage")
        ax.bar_label(bars, labels=[str(s.get("matched_steps", "")) for s in steps], fontsize=7)
    if level is not None:
        ax.axhline(level, color="grey", linestyle="--", label=f"nominal {level}%")
    ax.set(
        xlabel="horizon step (1 = first step after the origin)",
        ylabel="actuals inside the interval (%)",
        title="Forecast interval coverage by step (bar labels: matched steps)",
        ylim=(0, 105),
    )
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def live_calibration(outcomes: pd.DataFrame, n_bins: int = 10) -> Figure:
    """Reliability diagram of the scored orders whose outcome is known (``score``, ``outcome`` 1/0; pending
    orders, ``outcome`` -1, are left out), one curve per model version (``training.review.orders.reliability``
    and ``order_plots.calibration``, as in the flagged-orders review)."""
    known = outcomes.loc[outcomes["outcome"].isin([0, 1])] if len(outcomes) else outcomes
    if known is None or known.empty:
        fig, ax = plt.subplots(figsize=(5.5, 5))
        _empty(ax, "no scored order with a known outcome in the window")
        ax.set(title="Calibration: predicted score vs observed exception rate")
        return fig
    tables = {
        f"{name} v{version}": reliability(part["outcome"].to_numpy(), part["score"].to_numpy(), n_bins)
        for (name, version), part in known.groupby(["model_name", "model_version"], sort=True)
    }
    return calibration(tables, title="Live calibration: predicted score vs observed exception rate")


def drift_by_feature(summary: Mapping[str, Any], top: int = 20) -> Figure:
    """PSI of each input feature against the training profile (forecast and anomaly inputs), highest first,
    coloured by the status rule (warning above 0.25, alert above 0.5); features without a PSI are left out."""
    rows = []
    for kind, block in (summary.get("drift") or {}).items():
        if not isinstance(block, Mapping) or not block.get("available"):
            continue
        for feature, figures in (block.get("features") or {}).items():
            if isinstance(figures, Mapping) and figures.get("psi") is not None:
                rows.append((f"{kind}: {feature}", float(figures["psi"])))
    rows = sorted(rows, key=lambda r: r[1], reverse=True)[:top]
    fig, ax = plt.subplots(figsize=(11, max(3.0, 0.35 * len(rows) + 1.5)))
    if not rows:
        _empty(ax, "no drift figures: no input in the window, or models logged without a training profile")
    else:
        names = [r[0] for r in rows][::-1]
        psi = np.array([r[1] for r in rows][::-1])
        colours = np.where(psi > PSI_ALERT, "tab:red", np.where(psi > PSI_WARNING, "tab:orange", "tab:green"))
        ax.barh(names, psi, color=colours)
        ax.axvline(
            PSI_WARNING, color="tab:orange", linestyle="--", linewidth=1, label=f"warning {PSI_WARNING}"
        )
        ax.axvline(PSI_ALERT, color="tab:red", linestyle="--", linewidth=1, label=f"alert {PSI_ALERT}")
        ax.legend(fontsize=8)
    ax.set(xlabel="population stability index (PSI) vs training", title="Input drift by feature")
    fig.tight_layout()
    return fig


def _empty(ax: Any, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="grey")
