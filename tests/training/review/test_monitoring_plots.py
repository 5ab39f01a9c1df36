"""training/review/monitoring_plots.py: the figures of `orderpulse report monitoring`, on hand-built monitoring
figures (the monitoring_timeline / GET /v1/monitoring contract), checked on the values they draw."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from training.review.monitoring_plots import (
    accuracy_over_time,
    coverage_by_step,
    drift_by_feature,
    live_calibration,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _timeline() -> pd.DataFrame:
    nan = np.nan
    rows = [
        ("2026-11-01", "op-forecast", "3", "forecast", 10, 0.20, 0.01, 0.8, nan),
        ("2026-11-02", "op-forecast", "3", "forecast", 12, 0.30, 0.02, 0.7, nan),
        ("2026-11-02", "op-forecast", "4", "forecast", 5, 0.10, 0.00, 0.9, nan),
        ("2026-11-01", "op-anomaly", "1", "anomaly", 40, nan, nan, nan, 0.55),
        ("2026-11-02", "op-anomaly", "1", "anomaly", 0, nan, nan, nan, nan),
    ]
    frame = pd.DataFrame(
        rows,
        columns=[
            "period",
            "model_name",
            "model_version",
            "kind",
            "matched",
            "wape",
            "bias",
            "coverage",
            "auprc",
        ],
    )
    frame["period"] = pd.to_datetime(frame["period"])
    for col in ("precision", "recall", "ece", "base_rate"):
        frame[col] = np.nan
    return frame


SUMMARY = {
    "forecast": {
        "level": 80,
        "by_step": [
            {"step": 1, "matched_steps": 10, "coverage": 0.9},
            {"step": 2, "matched_steps": 8, "coverage": 0.75},
            {"step": 3, "matched_steps": 0, "coverage": None},
        ],
        "by_version": [
            {"model_name": "op-forecast", "model_version": "3", "backtest_wape": 0.15},
            {"model_name": "op-forecast", "model_version": "4", "backtest_wape": None},
        ],
    },
    "anomaly": {"by_version": [{"model_name": "op-anomaly", "model_version": "1", "validation_auprc": 0.6}]},
    "drift": {
        "forecast": {"available": True, "features": {"y": {"psi": 0.1}, "promo": {"psi": 0.3}}},
        "anomaly": {
            "available": True,
            "features": {"order_value": {"psi": 0.7}, "n_lines": {"psi": None}},
        },
    },
}


def _lines(ax) -> dict[str, np.ndarray]:
    return {line.get_label(): np.asarray(line.get_ydata(), dtype=float) for line in ax.get_lines()}


def test_accuracy_over_time_draws_live_figures_per_version_and_their_reference():
    fig = accuracy_over_time(_timeline(), SUMMARY)
    forecast, anomaly = fig.axes
    lines = _lines(forecast)
    np.testing.assert_allclose(lines["op-forecast v3 live"], [0.20, 0.30])
    np.testing.assert_allclose(lines["op-forecast v4 live"], [0.10])
    np.testing.assert_allclose(lines["v3 backtest_wape 0.150"], [0.15, 0.15])
    assert not any(label.startswith("v4 backtest") for label in lines)  # no reference: no line
    lines = _lines(anomaly)
    np.testing.assert_allclose(lines["op-anomaly v1 live"], [0.55])  # the period without matches is left out
    np.testing.assert_allclose(lines["v1 validation_auprc 0.600"], [0.6, 0.6])


def test_accuracy_over_time_says_so_when_nothing_matched():
    fig = accuracy_over_time(_timeline().iloc[0:0], {})
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert texts == ["no matched forecast answers in the window", "no matched anomaly answers in the window"]


def test_coverage_by_step_bars_are_the_live_shares_against_the_nominal_level():
    ax = coverage_by_step(SUMMARY).axes[0]
    heights = [p.get_height() for p in ax.patches]
    np.testing.assert_allclose(heights, [90.0, 75.0])  # step 3 has no coverage: no bar
    assert _lines(ax)["nominal 80%"].tolist() == [80.0, 80.0]
    assert [t.get_text() for t in ax.texts] == ["10", "8"]


def test_live_calibration_bins_known_outcomes_per_version_and_leaves_pending_out():
    outcomes = pd.DataFrame(
        {
            "model_name": ["a"] * 6,
            "model_version": ["1"] * 6,
            "score": [0.05, 0.15, 0.12, 0.95, 0.91, 0.5],
            "outcome": [0, 1, 0, 1, 1, -1],
        }
    )
    ax = live_calibration(outcomes).axes[0]
    line = next(line for line in ax.get_lines() if line.get_label().startswith("a v1"))
    assert line.get_label() == "a v1 (5 orders)"
    np.testing.assert_allclose(line.get_xdata(), [5.0, 13.5, 93.0])
    np.testing.assert_allclose(line.get_ydata(), [0.0, 50.0, 100.0])


def test_drift_by_feature_sorts_by_psi_and_colours_by_rule():
    ax = drift_by_feature(SUMMARY).axes[0]
    bars = {t.get_text(): p for t, p in zip(ax.get_yticklabels(), ax.patches, strict=True)}
    assert list(bars) == ["forecast: y", "forecast: promo", "anomaly: order_value"]  # bottom to top
    assert {k: round(p.get_width(), 3) for k, p in bars.items()} == {
        "forecast: y": 0.1,
        "forecast: promo": 0.3,
        "anomaly: order_value": 0.7,
    }
    assert to_hex(bars["anomaly: order_value"].get_facecolor()) == to_hex("tab:red")
    assert to_hex(bars["forecast: promo"].get_facecolor()) == to_hex("tab:orange")
    assert to_hex(bars["forecast: y"].get_facecolor()) == to_hex("tab:green")


def test_drift_by_feature_without_profiles_says_so():
    ax = drift_by_feature({"drift": {"forecast": {"available": False, "reason": "no profile"}}}).axes[0]
    assert len(ax.patches) == 0
    assert "no drift figures" in ax.texts[0].get_text()
