"""Exception-order plots for the flagged-orders notebook and ``orderpulse report anomalies``.

Like ``training.review.forecast_plots``: every function returns a matplotlib ``Figure`` with a title, axis labels with units
and a legend; the numbers come from ``training.review.orders`` tables or from the model's own contributions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: CI, servers, nbconvert
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = [
    "score_distribution",
    "threshold_curve",
    "calibration",
    "reason_frequency",
    "shap_summary",
    "waterfall",
]


def score_distribution(
    scores: np.ndarray,
    threshold: float,
    labels: np.ndarray | None = None,
    title: str = "Exception scores of the period",
) -> Figure:
    """Histogram of scores, stacked by known outcome (exception / no exception / not known yet), with the
    flag threshold marked. ``labels``: 1, 0 or -1/NaN for unknown, one per score."""
    s = np.asarray(scores, dtype="float64")
    bins = np.linspace(0.0, 1.0, 41)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    if labels is None:
        ax.hist(s, bins=bins, color="tab:blue", alpha=0.85, label="orders")
    else:
        lab = np.asarray(labels, dtype="float64")
        groups = [
            (s[lab == 0], "no exception", "tab:blue"),
            (s[lab == 1], "exception", "tab:red"),
            (s[~np.isin(lab, (0, 1))], "outcome not known yet", "tab:gray"),
        ]
        groups = [g for g in groups if len(g[0])]
        ax.hist(
            [g[0] for g in groups],
            bins=bins,
            stacked=True,
            color=[g[2] for g in groups],
            label=[g[1] for g in groups],
            alpha=0.85,
        )
    ax.axvline(
        threshold, color="black", linestyle="--", linewidth=1.2, label=f"flag threshold {threshold:.2f}"
    )
    ax.set(
        xlabel="exception score (0 = surely fine, 1 = surely an exception)",
        ylabel="number of orders",
        title=title,
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def threshold_curve(
    curve: pd.DataFrame,
    threshold: float | None = None,
    title: str = "Precision and recall vs flag threshold (labelled history)",
) -> Figure:
    """Precision, recall and share of orders flagged against the threshold (``order_review.threshold_curve``)."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.plot(
        curve["threshold"],
        curve["precision"] * 100,
        color="tab:blue",
        label="precision: flags that were exceptions",
    )
    ax.plot(
        curve["threshold"],
        curve["recall"] * 100,
        color="tab:red",
        label="recall: exceptions that were flagged",
    )
    ax.plot(
        curve["threshold"], curve["flag_rate"] * 100, color="tab:gray", linestyle=":", label="orders flagged"
    )
    if threshold is not None:
        ax.axvline(
            threshold,
            color="black",
            linestyle="--",
            linewidth=1.2,
            label=f"current threshold {threshold:.2f}",
        )
    ax.set(xlabel="flag threshold (exception score)", ylabel="%", title=title, ylim=(0, 102), xlim=(0, 1))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def calibration(
    tables: Mapping[str, pd.DataFrame], title: str = "Calibration: predicted score vs observed exception rate"
) -> Figure:
    """Reliability curves (``order_review.reliability`` tables, one per named slice) against the diagonal."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, t in tables.items():
        ax.plot(
            t["mean_score"] * 100,
            t["observed_rate"] * 100,
            marker="o",
            label=f"{name} ({int(t['n'].sum())} orders)",
        )
    ax.plot([0, 100], [0, 100], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    ax.set(
        xlabel="mean predicted score in the bin (%)",
        ylabel="observed exception rate (%)",
        title=title,
        xlim=(0, 100),
        ylim=(0, 100),
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def reason_frequency(table: pd.DataFrame, title: str = "Reasons that recur among flagged orders") -> Figure:
    """Horizontal bars: share of flagged orders for which each feature is among the top reasons."""
    rows = table.iloc[::-1]
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.35 * len(rows) + 1)))
    ax.barh(
        rows["feature"].astype(str),
        rows["share_of_orders"] * 100,
        color="tab:red",
        alpha=0.8,
        label="flagged orders with this reason",
    )
    ax.set(xlabel="flagged orders with this reason (%)", ylabel="feature", title=title)
    ax.tick_params(axis="y", labelsize=8)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def shap_summary(
    model: Any,
    features: pd.DataFrame,
    max_display: int = 15,
    title: str = "SHAP summary: how each feature pushes the score",
) -> Figure:
    """shap's beeswarm summary of the model's exact TreeSHAP contributions over ``features`` rows (colour:
    the feature's encoded value, as the model sees it)."""
    from training.explain import import_shap

    shap = import_shap()
    contrib = model.contributions(features)
    plt.figure()
    shap.summary_plot(
        contrib.values,
        model.encoder_.transform(features),
        feature_names=list(contrib.feature_names),
        show=False,
        max_display=max_display,
        plot_size=(8, 0.35 * max_display + 1.5),
    )
    fig = plt.gcf()
    fig.axes[0].set_xlabel(f"contribution to the score ({contrib.output})")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def waterfall(
    model: Any, features: pd.DataFrame, score: float | None = None, max_display: int = 10
) -> Figure:
    """shap's waterfall of one order (the one row of ``features``): from the model's base value to the order's raw
    output, feature by feature, with the order's feature values as a person reads them."""
    from training.explain import import_shap
    from training.review.orders import shap_explanation

    if len(features) != 1:
        raise ValueError(
            f"waterfall explains one order: pass a one-row feature frame. Got {len(features)} rows."
        )
    shap = import_shap()
    explanation, output = shap_explanation(model, features)
    plt.figure(figsize=(8, 0.45 * max_display + 1.5))
    shap.plots.waterfall(explanation[0], max_display=max_display, show=False)
    fig = plt.gcf()
    order_id = str(features["order_id"].iloc[0]) if "order_id" in features.columns else str(features.index[0])
    score_text = f": why its score is {score:.2f}" if score is not None else ""
    fig.suptitle(
        f"Order {order_id}{score_text}\n(model output in {output}, from the average order E[f(X)] to "
        f"this order f(x); red pushes towards an exception)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
