"""training/review/order_plots.py: the flagged-orders figures are labelled for a non-engineer and draw their inputs."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from training.anomaly.models import ExceptionClassifier
from training.review import order_plots


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _labelled(ax) -> None:
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    assert ax.get_legend() is not None


def test_score_distribution_stacks_known_outcomes_and_marks_the_threshold():
    fig = order_plots.score_distribution(np.array([0.1, 0.2, 0.9]), 0.5, labels=np.array([0, np.nan, 1]))
    ax = fig.axes[0]
    _labelled(ax)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["no exception", "exception", "outcome not known yet", "flag threshold 0.50"]
    assert sum(p.get_height() for p in ax.patches) == 3  # every order counted once


def test_threshold_curve_draws_precision_recall_and_flag_rate_in_percent():
    curve = pd.DataFrame(
        {
            "threshold": [0.0, 0.5, 1.0],
            "n_flagged": [4, 2, 0],
            "flag_rate": [1.0, 0.5, 0.0],
            "precision": [0.5, 0.75, np.nan],
            "recall": [1.0, 0.6, 0.0],
        }
    )
    fig = order_plots.threshold_curve(curve, threshold=0.5)
    ax = fig.axes[0]
    _labelled(ax)
    assert list(ax.get_lines()[0].get_ydata()[:2]) == [50.0, 75.0]
    assert list(ax.get_lines()[1].get_ydata()) == [100.0, 60.0, 0.0]


def test_calibration_draws_one_curve_per_slice_and_the_diagonal():
    table = pd.DataFrame(
        {"bin": [0, 9], "n": [3, 1], "mean_score": [0.05, 0.95], "observed_rate": [0.0, 1.0]}
    )
    fig = order_plots.calibration({"valid slice": table, "calib slice": table})
    ax = fig.axes[0]
    _labelled(ax)
    assert [line.get_label() for line in ax.get_lines()] == [
        "valid slice (4 orders)",
        "calib slice (4 orders)",
        "perfect calibration",
    ]


def test_reason_frequency_draws_the_most_frequent_reason_on_top():
    table = pd.DataFrame({"feature": ["order_value", "order_n_lines"], "share_of_orders": [0.8, 0.2]})
    fig = order_plots.reason_frequency(table)
    ax = fig.axes[0]
    _labelled(ax)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["order_n_lines", "order_value"]
    assert [p.get_width() for p in ax.patches] == pytest.approx([20.0, 80.0])


@pytest.fixture(scope="module")
def fitted(make_synthetic_orders):
    import warnings

    orders, labels = make_synthetic_orders(n_orders=800, n_customers=80, days=120)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the small sample misses the precision target
        model = ExceptionClassifier(n_estimators=30, early_stopping_rounds=10).fit(orders, labels)
    return model, model.prepare(orders, labels).features


def test_waterfall_names_the_order_and_its_score(fitted):
    model, features = fitted
    fig = order_plots.waterfall(model, features.tail(1), score=0.42)
    assert fig._suptitle.get_text().startswith(
        f"Order {features['order_id'].iloc[-1]}: why its score is 0.42"
    )
    assert "log-odds" in fig._suptitle.get_text()


def test_waterfall_explains_one_order_at_a_time(fitted):
    model, features = fitted
    with pytest.raises(ValueError, match="one-row feature frame. Got 2 rows"):
        order_plots.waterfall(model, features.tail(2))


def test_shap_summary_labels_the_contribution_units(fitted):
    model, features = fitted
    fig = order_plots.shap_summary(model, features.tail(50), max_display=5)
    assert fig.axes[0].get_xlabel() == "contribution to the score (log-odds)"
    assert fig._suptitle.get_text().startswith("SHAP summary")
