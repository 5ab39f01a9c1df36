"""training/forecast/seeds.py: boosters of several seeds read as their mean."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from training.forecast.seeds import SeedAverage


def _boosters(n: int) -> tuple[list[lgb.Booster], pd.DataFrame]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    y = 2 * X["a"] - X["b"] + rng.normal(scale=0.3, size=300)
    params = {"objective": "regression", "bagging_fraction": 0.7, "bagging_freq": 1, "verbose": -1}
    data = lgb.Dataset(X, label=y)
    return [lgb.train({**params, "seed": s}, data, num_boost_round=20) for s in range(n)], X


def test_seed_average_predicts_the_mean_and_its_contributions_add_up_to_it():
    boosters, X = _boosters(3)
    avg = SeedAverage(boosters)
    expected = np.mean([b.predict(X) for b in boosters], axis=0)
    np.testing.assert_allclose(avg.predict(X), expected, rtol=1e-12)
    assert not np.allclose(boosters[0].predict(X), boosters[1].predict(X))  # the seeds differ
    contrib = avg.predict(X, pred_contrib=True)
    np.testing.assert_allclose(contrib.sum(axis=1), expected, rtol=1e-9, atol=1e-9)
    assert avg.feature_name() == ["a", "b"]
    assert avg.pandas_categorical == boosters[0].pandas_categorical
    assert avg.num_trees() == 60
    np.testing.assert_allclose(
        avg.feature_importance("gain"), np.mean([b.feature_importance("gain") for b in boosters], axis=0)
    )


def test_seed_average_refuses_no_boosters():
    with pytest.raises(ValueError, match="at least one booster"):
        SeedAverage([])
