"""training/review/orders.py: review tables of flagged orders on hand-built inputs, and the real model's shapes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.anomaly.data import AnomalyTrainingData
from training.anomaly.models import ExceptionClassifier
from training.metrics import precision_recall_at
from training.review import orders as order_review


def test_threshold_curve_counts_flags_precision_and_recall_by_hand():
    y = np.array([1, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.4, 0.1])
    curve = order_review.threshold_curve(y, s, thresholds=np.array([0.0, 0.5, 0.85, 0.95]))
    assert list(curve["n_flagged"]) == [4, 2, 1, 0]
    assert list(curve["flag_rate"]) == [1.0, 0.5, 0.25, 0.0]
    assert list(curve["precision"][:3]) == [0.5, 0.5, 1.0]
    assert np.isnan(curve["precision"].iloc[3])  # nothing flagged
    assert list(curve["recall"]) == [1.0, 0.5, 0.5, 0.0]


def test_threshold_curve_agrees_with_precision_recall_at_including_ties():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.random(200), 1)  # many ties
    curve = order_review.threshold_curve(y, s)
    for t in (0.0, 0.3, 0.5, 0.7, 1.0):
        row = curve.loc[np.isclose(curve["threshold"], t)].iloc[0]
        expected = precision_recall_at(y, s, t)
        assert row["recall"] == pytest.approx(expected["recall"])
        assert row["precision"] == pytest.approx(expected["precision"], nan_ok=True)
        assert row["n_flagged"] == expected["n_flagged"]


def test_threshold_curve_refuses_labels_that_are_not_0_or_1():
    with pytest.raises(ValueError, match="0/1 labels"):
        order_review.threshold_curve(np.array([0, 2]), np.array([0.1, 0.2]))


def test_reliability_bins_scores_and_leaves_out_empty_bins():
    table = order_review.reliability(np.array([0, 1, 1, 0]), np.array([0.05, 0.15, 0.95, 0.99]), n_bins=10)
    assert list(table["bin"]) == [0, 1, 9]
    assert list(table["n"]) == [1, 1, 2]
    assert list(table["observed_rate"]) == [0.0, 1.0, 0.5]
    assert table["mean_score"].iloc[2] == pytest.approx(0.97)


def _reason(feature: str, contribution: float) -> dict:
    return {"feature": feature, "value": 1, "contribution": contribution, "text": f"{feature} is high"}


@pytest.fixture
def scored() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "order_id": ["o1", "o2", "o3"],
            "created_at": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
            "customer_id": ["c1", None, "c2"],
            "score": [0.9, 0.7, 0.1],
            "flagged": [True, True, False],
            "reasons": [
                [_reason("order_value", 0.5), _reason("customer_prior_exceptions", 0.3)],
                [_reason("order_value", 0.3)],
                [_reason("order_n_lines", 0.1)],
            ],
        }
    )


def test_reason_frequency_counts_reasons_among_flagged_orders(scored):
    table = order_review.reason_frequency(scored)
    assert list(table["feature"]) == ["order_value", "customer_prior_exceptions"]  # o3 is not flagged
    first = table.iloc[0]
    assert (first["n_orders"], first["share_of_orders"]) == (2, 1.0)
    assert first["mean_contribution"] == pytest.approx(0.4)
    assert first["example"] == "order_value is high"
    assert first["family"] == "order"


def test_reason_frequency_of_a_period_without_flags_is_empty(scored):
    assert order_review.reason_frequency(scored.assign(flagged=False)).empty


def test_flagged_orders_lists_reason_sentences_in_columns(scored):
    table = order_review.flagged_orders(scored, n_reasons=2)
    assert list(table["order_id"]) == ["o1", "o2"]
    assert list(table["reason_2"]) == ["customer_prior_exceptions is high", ""]


class _StubModel:
    """Explains orders with their order_value as the score."""

    def explain(self, features, k):
        return pd.DataFrame(
            {
                "order_id": features["order_id"].to_numpy(),
                "score": features["order_value"].to_numpy(),
                "flagged": features["order_value"].to_numpy() > 0.5,
                "raw": 0.0,
                "base_value": 0.0,
                "reasons": [[] for _ in range(len(features))],
            }
        )


def _data() -> AnomalyTrainingData:
    created = pd.to_datetime(["2024-01-01 10:00", "2024-01-20 09:00", "2024-01-25 12:00", "2024-01-30 18:00"])
    features = pd.DataFrame(
        {
            "order_id": ["o1", "o2", "o3", "o4"],
            "created_at": created,
            "customer_id": ["c1", "c2", "c1", "c3"],
            "order_value": [0.9, 0.2, 0.8, 0.6],
        }
    )
    return AnomalyTrainingData(
        cutoff=pd.Timestamp("2024-02-01"),
        features=features,
        feature_names=["order_value"],
        y=np.array([1, 0, -1, 1]),
        part=np.array(["train", "valid", "", "calib"], dtype=object),
        orders=features,
        labels=None,
        maturity=pd.Timedelta(0),
    )


def test_score_period_defaults_to_the_last_days_before_the_last_order():
    period = order_review.score_period(_StubModel(), _data(), days=28)
    assert (period.start, period.end) == (pd.Timestamp("2024-01-03"), pd.Timestamp("2024-01-31"))
    assert list(period.scored["order_id"]) == ["o3", "o4", "o2"]  # highest score first; o1 is before
    assert list(period.features["order_id"]) == ["o3", "o4", "o2"]  # aligned with the scores
    assert period.scored["label"].isna().tolist() == [True, False, False]  # o3's outcome is not known
    assert period.n_flagged == 2


def test_score_period_refuses_a_period_without_orders():
    with pytest.raises(ValueError, match="No order was created in"):
        order_review.score_period(_StubModel(), _data(), start="2023-01-01", end="2023-02-01")


def test_out_of_sample_rows_are_the_valid_then_calib_rows():
    assert list(order_review.out_of_sample_rows(_data())) == [1, 3]


@pytest.mark.filterwarnings("ignore:target precision")
def test_shap_explanation_holds_the_models_exact_contributions(make_synthetic_orders):
    orders, labels = make_synthetic_orders(n_orders=800, n_customers=80, days=120)
    model = ExceptionClassifier(n_estimators=30, early_stopping_rounds=10).fit(orders, labels)
    data = model.prepare(orders, labels)
    rows = data.features.tail(5)
    explanation, output = order_review.shap_explanation(model, rows)
    assert output == "log-odds"
    assert explanation.values.shape == (5, len(model.feature_names_))
    raw = explanation.base_values + explanation.values.sum(axis=1)
    assert np.allclose(raw, model.decision_function(rows))
    assert explanation.data[0, 0] == rows[model.feature_names_[0]].iloc[0]  # values as read, not encoded
