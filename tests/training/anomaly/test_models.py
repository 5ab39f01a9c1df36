"""Tests of training/anomaly/models.py on synthetic orders whose exception signal we control (make_synthetic_orders in conftest.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from features.errors import NotFittedError
from features.order_features import OrderHistory, order_features
from training.anomaly.models import ExceptionClassifier, UnsupervisedDetector

UNTIL = "2020-09-30"


@pytest.fixture(scope="module")
def data(make_synthetic_orders) -> tuple[pd.DataFrame, pd.DataFrame]:
    return make_synthetic_orders()


@pytest.fixture(scope="module")
def features(data) -> pd.DataFrame:
    orders, labels = data
    return order_features(orders, labels)[0]


@pytest.fixture(scope="module")
def model(data) -> ExceptionClassifier:
    orders, labels = data
    return ExceptionClassifier().fit(orders, labels, until=UNTIL)


@pytest.fixture(scope="module")
def detector(data) -> UnsupervisedDetector:
    orders, labels = data
    return UnsupervisedDetector(n_estimators=25).fit(orders, labels, until=UNTIL)


def test_classifier_finds_the_planted_signal(model):
    m = model.metrics_
    assert m["valid_auprc"] > 1.5 * m["valid_base_rate"]
    assert m["valid_auroc"] > 0.65


def test_contributions_plus_base_equal_the_raw_margin(model, features):
    rows = features.tail(200)
    contrib = model.contributions(rows)
    np.testing.assert_allclose(
        contrib.base + contrib.values.sum(axis=1), model.decision_function(rows), atol=1e-9
    )
    assert contrib.output == "log-odds"


def test_explain_reports_calibrated_score_next_to_log_odds(model, features):
    rows = features.tail(20)
    explained = model.explain(rows)
    np.testing.assert_allclose(explained["score"], model.score(rows))
    np.testing.assert_allclose(explained["raw"], model.decision_function(rows), atol=1e-9)
    assert explained["flagged"].tolist() == (model.score(rows) >= model.threshold_).tolist()
    assert explained["order_id"].tolist() == rows["order_id"].tolist()


def test_reasons_are_sorted_by_contribution_and_positive(model, features):
    for reasons in model.explain(features.tail(50), k=4)["reasons"]:
        contributions = [r["contribution"] for r in reasons]
        assert contributions == sorted(contributions, reverse=True)
        assert all(c > 0 for c in contributions) and len(reasons) <= 4
        assert all(r["text"].endswith(")") for r in reasons)


def test_score_is_a_probability_and_predict_proba_has_sklearn_shape(model, features):
    proba = model.predict_proba(features.tail(30))
    assert proba.shape == (30, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert ((proba >= 0) & (proba <= 1)).all()
    assert set(np.unique(model.predict(features))) <= {0, 1}


def test_label_known_after_an_order_was_created_does_not_change_its_score(data, model):
    orders, labels = data
    before, _ = order_features(orders, labels)
    target = before.iloc[-300]
    changed = labels.copy()
    later = changed["labeled_at"] >= target["created_at"]  # includes the order's own label
    changed.loc[later, "label"] = (1 - changed.loc[later, "label"]).astype("int8")
    assert later.sum() > 100
    after, _ = order_features(orders, changed)
    row_before = before.loc[before["order_id"] == target["order_id"]]
    row_after = after.loc[after["order_id"] == target["order_id"]]
    assert model.score(row_after)[0] == model.score(row_before)[0]
    assert model.explain(row_after)["reasons"][0] == model.explain(row_before)["reasons"][0]


def test_training_ignores_labels_known_after_the_cutoff(data, model):
    orders, labels = data
    changed = labels.copy()
    cutoff = pd.Timestamp(UNTIL) + pd.Timedelta(days=1)
    later = changed["labeled_at"] >= cutoff
    changed.loc[later, "label"] = (1 - changed.loc[later, "label"]).astype("int8")
    other = ExceptionClassifier().fit(orders, changed, until=UNTIL)
    assert other.booster_.model_to_string() == model.booster_.model_to_string()
    assert other.threshold_ == model.threshold_


def test_excluded_orders_are_counted(model):
    r = model.data_report_
    assert r["orders_label_unknown_at_cutoff"] > 0
    assert r["orders_without_label"] > 0  # guests
    assert r["label_maturity_days"] == pytest.approx(30.0)
    assert r["orders_immature_excluded"] > 0
    assert r["training_rows"] == r["rows_train"] + r["rows_valid"] + r["rows_calib"]


def test_calibration_undoes_class_weighting(data):
    orders, labels = data
    weighted = ExceptionClassifier(scale_pos_weight="balanced").fit(orders, labels, until=UNTIL)
    m = weighted.metrics_
    assert m["valid_brier"] < m["valid_brier_uncalibrated"]
    assert m["valid_ece"] < m["valid_ece_uncalibrated"]


def test_default_threshold_is_the_best_f1_cut_of_validation_flagging_at_most_15_percent(model, data):
    report = model.threshold_report_
    assert report.policy == "f1:0.15" and report.fallback is None
    assert report.flag_rate <= 0.15
    precision, recall = model.metrics_["valid_precision"], model.metrics_["valid_recall"]
    assert report.precision == pytest.approx(precision) and report.recall == pytest.approx(recall)
    assert model.threshold_metadata()["threshold.policy"] == "f1:0.15"
    orders, labels = data
    uncapped = ExceptionClassifier(threshold_policy="f1").fit(orders, labels, until=UNTIL)
    f1 = lambda r: 2 * r.precision * r.recall / (r.precision + r.recall)  # noqa: E731
    best = uncapped.threshold_report_
    base = model.metrics_["valid_base_rate"]
    assert f1(best) >= 2 * base / (1 + base)  # plain best F1: at least as good as flagging everything
    assert f1(best) >= f1(report)
    if best.flag_rate > 0.15:  # the cap bound: the choice says so
        assert report.note is not None and "capped at 15.0%" in report.note
    else:
        assert report.threshold == best.threshold


def test_threshold_reaches_the_target_precision_on_validation(data):
    orders, labels = data
    model = ExceptionClassifier(threshold_policy="precision:0.6").fit(orders, labels, until=UNTIL)
    assert model.threshold_report_.fallback is None
    assert model.metrics_["valid_precision"] >= 0.6
    assert model.metrics_["valid_n_flagged"] >= 10


def test_flag_budget_flags_the_requested_share_of_validation_orders(data):
    orders, labels = data
    budget = ExceptionClassifier(threshold_policy="budget:0.1").fit(orders, labels, until=UNTIL)
    assert budget.metrics_["valid_n_flagged"] / budget.metrics_["valid_n"] == pytest.approx(0.1, abs=0.01)


def test_unreachable_precision_falls_back_to_best_f1_and_warns(data):
    orders, labels = data
    with pytest.warns(UserWarning, match="target precision 0.99 is unreachable"):
        fallback = ExceptionClassifier(threshold_policy="precision:0.99").fit(orders, labels, until=UNTIL)
    assert "best-F1" in fallback.threshold_report_.fallback


def test_refit_retrains_on_train_and_valid_with_scaled_rounds(data, model):
    orders, labels = data
    refit = ExceptionClassifier(refit=True).fit(orders, labels, until=UNTIL)
    r = refit.data_report_
    rounds = round(refit.best_iteration_ * (r["rows_train"] + r["rows_valid"]) / r["rows_train"])
    assert refit.booster_.num_trees() == rounds


def test_classifier_is_a_sklearn_estimator(model):
    params = model.get_params()
    assert params["threshold_policy"] is None and params["calibration"] == "auto"
    fresh = clone(model)
    assert not hasattr(fresh, "booster_")


def test_unfitted_models_raise_not_fitted(features):
    with pytest.raises(NotFittedError, match="call fit"):
        ExceptionClassifier().score(features)
    with pytest.raises(NotFittedError, match="call fit"):
        UnsupervisedDetector().explain(features)


def test_classifier_needs_labels(data):
    with pytest.raises(ValueError, match="needs labels"):
        ExceptionClassifier().fit(data[0], None)


def test_detector_score_lies_in_unit_interval(detector, features):
    score = detector.score(features)
    assert score.min() >= 0.0 and score.max() <= 1.0
    odd = features.tail(1).copy()
    odd[["order_total_quantity", "order_value", "order_max_line_quantity", "order_max_unit_price"]] = 1e7
    odd["customer_value_ratio"] = 1e7 / odd["customer_prior_value_median"]  # as the features would have it
    assert detector.score(odd)[0] > 0.99  # more anomalous than 99% of the training orders


def test_detector_flags_about_its_budget_of_training_orders(detector, features):
    train = features.loc[features["created_at"] < pd.Timestamp(UNTIL) + pd.Timedelta(days=1)]
    assert detector.predict(train).mean() == pytest.approx(0.05, abs=0.01)


def test_detector_explanations_add_up_to_its_raw_output(detector, features):
    rows = features.tail(30)
    contrib = detector.contributions(rows)
    np.testing.assert_allclose(
        contrib.base + contrib.values.sum(axis=1), detector.decision_function(rows), rtol=1e-5
    )
    explained = detector.explain(rows)
    np.testing.assert_allclose(explained["score"], detector.score(rows))


def test_detector_labels_are_optional(data):
    orders, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        unlabeled = UnsupervisedDetector(n_estimators=10).fit(orders, None, until=UNTIL)
    assert unlabeled.metrics_ == {}


def test_detector_needs_a_flag_budget(data):
    with pytest.raises(ValueError, match="needs a flag budget"):
        UnsupervisedDetector(threshold_policy="precision:0.6").fit(data[0], data[1], until=UNTIL)


@pytest.mark.parametrize("n_orders", [20, 400])  # a request (dict look-ups) and a batch (vectorised)
def test_models_score_and_explain_feature_columns_exactly_as_the_feature_frame(
    data, model, detector, n_orders
):
    orders, labels = data
    history = OrderHistory(orders, labels)
    recent = orders[orders["order_id"].isin(orders["order_id"].drop_duplicates().tail(n_orders))]
    frame = history.features(recent)[0]
    columns = history.feature_columns(recent)[0]
    for estimator in (model, detector):
        np.testing.assert_array_equal(estimator.score(columns), estimator.score(frame))
        assert estimator.explain_records(columns) == estimator.explain_records(frame)
