"""Tests of training/explain.py: exact TreeSHAP additivity, reason ordering, family sums."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import IsolationForest

from training.explain import (
    Contributions,
    family_sums,
    isolation_forest_contributions,
    isolation_forest_explainer,
    lgbm_contributions,
    top_contributions,
)


@pytest.fixture(scope="module")
def booster_and_data() -> tuple[lgb.Booster, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.5, size=400) > 0).astype(int)
    params = {"objective": "binary", "num_leaves": 7, "verbose": -1, "num_threads": 1, "seed": 0}
    return lgb.train(params, lgb.Dataset(X, y), num_boost_round=30), X


def test_lgbm_contributions_add_up_to_the_raw_margin(booster_and_data):
    booster, X = booster_and_data
    contrib = lgbm_contributions(booster, X[:50], ["a", "b", "c", "d"])
    margin = booster.predict(X[:50], raw_score=True)
    np.testing.assert_allclose(contrib.base + contrib.values.sum(axis=1), margin, atol=1e-9)
    np.testing.assert_allclose(contrib.raw, margin, atol=1e-9)
    assert contrib.output == "log-odds"


def test_lgbm_contributions_put_the_signal_feature_first(booster_and_data):
    booster, X = booster_and_data
    contrib = lgbm_contributions(booster, X, ["a", "b", "c", "d"])
    mean_abs = np.abs(contrib.values).mean(axis=0)
    assert mean_abs.argmax() == 0  # y was driven by column a


def test_lgbm_contributions_refuse_a_wrong_number_of_feature_names(booster_and_data):
    booster, X = booster_and_data
    with pytest.raises(ValueError, match="single-output boosters with 3 features"):
        lgbm_contributions(booster, X[:2], ["a", "b", "c"])


def test_isolation_forest_contributions_add_up_to_minus_the_path_length():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 3))
    forest = IsolationForest(n_estimators=20, random_state=0).fit(X)
    contrib = isolation_forest_contributions(isolation_forest_explainer(forest), X[:30], ["a", "b", "c"])
    n = forest.max_samples_
    c = 2.0 * (np.log(n - 1.0) + np.euler_gamma) - 2.0 * (n - 1.0) / n
    mean_path = -np.log2(-forest.score_samples(X[:30])) * c  # score_samples = -2 ** (-path / c)
    np.testing.assert_allclose(contrib.raw, -mean_path, rtol=1e-5)


def test_isolation_forest_outlier_gets_positive_contribution_on_its_odd_feature():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(500, 3))
    forest = IsolationForest(n_estimators=50, random_state=0).fit(X)
    outlier = np.array([[0.0, 8.0, 0.0]])
    contrib = isolation_forest_contributions(isolation_forest_explainer(forest), outlier, ["a", "b", "c"])
    assert contrib.values[0].argmax() == 1
    assert contrib.values[0, 1] > 0


def test_top_contributions_lists_positive_ones_first_largest_first():
    values = np.array([[0.1, -0.5, 0.3, 0.0, 0.2]])
    assert top_contributions(values, k=3, positive_only=True).tolist() == [[2, 4, 0]]


def test_top_contributions_appends_negative_ones_by_magnitude_and_pads():
    values = np.array([[0.1, -0.5, 0.3, 0.0, -0.7], [0.0, 0.0, 0.0, 0.0, 0.0]])
    top = top_contributions(values, k=5)
    assert top.tolist() == [[2, 0, 4, 1, -1], [-1, -1, -1, -1, -1]]


def test_top_contributions_positive_only_never_returns_negatives():
    values = np.array([[-0.1, -0.2, 0.05]])
    assert top_contributions(values, k=3, positive_only=True).tolist() == [[2, -1, -1]]


def test_top_contributions_pads_when_k_exceeds_the_number_of_features():
    assert top_contributions(np.array([[0.2, 0.1]]), k=4).tolist() == [[0, 1, -1, -1]]


def test_top_contributions_refuses_k_below_one():
    with pytest.raises(ValueError, match="k must be >= 1"):
        top_contributions(np.zeros((1, 2)), k=0)


def test_family_sums_add_contributions_by_family():
    contrib = Contributions(
        np.array([[0.1, 0.2, -0.3], [1.0, 0.0, 2.0]]),
        np.zeros(2),
        ("customer_a", "sku_b", "customer_c"),
        "log-odds",
    )
    sums = family_sums(contrib, lambda name: name.split("_")[0])
    expected = pd.DataFrame({"customer": [-0.2, 3.0], "sku": [0.2, 0.0]})
    pd.testing.assert_frame_equal(sums, expected)


def test_contributions_refuse_mismatched_shapes():
    with pytest.raises(ValueError, match=r"shape \(n_rows, 2\)"):
        Contributions(np.zeros((3, 3)), np.zeros(3), ("a", "b"), "log-odds")
    with pytest.raises(ValueError, match="one value per row"):
        Contributions(np.zeros((3, 2)), np.zeros(2), ("a", "b"), "log-odds")


def test_take_selects_rows():
    contrib = Contributions(np.arange(6.0).reshape(3, 2), np.array([1.0, 2.0, 3.0]), ("a", "b"), "log-odds")
    part = contrib.take([2, 0])
    assert part.values.tolist() == [[4.0, 5.0], [0.0, 1.0]]
    assert part.raw.tolist() == [12.0, 2.0]
