"""training.profile: the training profile logged with a model, and PSI / missing / unknown rates against it."""

import math

import numpy as np
import pandas as pd
import pytest

from training.profile import (
    PSI_EPSILON,
    build_profile,
    compare_to_profile,
    profile_from_table,
    profile_table,
    psi,
)


def test_numeric_bins_are_the_training_deciles_and_shares_are_counted_by_hand():
    frame = pd.DataFrame({"x": [float(i) for i in range(1, 11)] + [np.nan, np.nan]})
    p = build_profile(frame, n_bins=5)["x"]
    assert p["kind"] == "numeric" and p["n"] == 12
    assert p["missing_rate"] == pytest.approx(2 / 12)
    assert p["edges"] == pytest.approx([2.8, 4.6, 6.4, 8.2])  # np.quantile of 1..10 at 0.2, 0.4, 0.6, 0.8
    assert p["shares"] == pytest.approx([0.2, 0.2, 0.2, 0.2, 0.2])


def test_categorical_shares_and_missing_rate():
    frame = pd.DataFrame({"c": ["UK", "UK", "FR", None]})
    p = build_profile(frame)["c"]
    assert p["kind"] == "categorical" and p["missing_rate"] == pytest.approx(0.25)
    assert dict(zip(p["categories"], p["shares"], strict=True)) == pytest.approx({"UK": 2 / 3, "FR": 1 / 3})


def test_psi_by_hand():
    ref, live = np.array([0.5, 0.5]), np.array([0.8, 0.2])
    expected = (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)
    assert psi(ref, live) == pytest.approx(expected)
    assert psi(ref, ref) == 0.0
    assert psi(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(
        2 * (1 - PSI_EPSILON) * math.log((1.0) / PSI_EPSILON)
    )
    with pytest.raises(ValueError, match="same bins"):
        psi(ref, np.array([1.0]))


def test_a_shifted_numeric_input_has_a_large_psi_and_the_same_one_a_small_psi():
    rng = np.random.default_rng(0)
    profile = build_profile(pd.DataFrame({"x": rng.normal(0, 1, 20_000)}))
    same = compare_to_profile(profile, pd.DataFrame({"x": rng.normal(0, 1, 5_000)}))["x"]
    shifted = compare_to_profile(profile, pd.DataFrame({"x": rng.normal(1, 1, 5_000)}))["x"]
    assert same["psi"] < 0.02
    assert shifted["psi"] > 0.5


def test_unknown_categories_count_in_their_own_bin():
    profile = build_profile(pd.DataFrame({"c": ["UK"] * 8 + ["FR"] * 2}))
    live = pd.DataFrame({"c": ["UK", "UK", "XX", "XX", None]})
    out = compare_to_profile(profile, live)["c"]
    assert out["unknown_rate"] == pytest.approx(0.5) and out["missing_rate"] == pytest.approx(0.2)
    shares = np.array([0.5, 0.0, 0.5])  # UK, FR, unknown among the 4 present values
    assert out["psi"] == pytest.approx(psi(np.array([0.8, 0.2, 0.0]), shares))


def test_a_profiled_feature_absent_from_the_input_is_reported_with_no_rows():
    profile = build_profile(pd.DataFrame({"x": [1.0, 2.0], "y": [1.0, 2.0]}))
    out = compare_to_profile(profile, pd.DataFrame({"x": [1.5]}))
    assert out["y"] == {
        "n": 0,
        "psi": None,
        "missing_rate": None,
        "reference_missing_rate": 0.0,
        "unknown_rate": None,
    }
    assert out["x"]["n"] == 1 and out["x"]["psi"] is not None


def test_the_profile_survives_its_table_form():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "x": rng.normal(0, 1, 1000),
            "c": rng.choice(["a", "b", "c"], 1000),
            "empty": [np.nan] * 1000,
            "flag": rng.integers(0, 2, 1000),
        }
    )
    profile = build_profile(frame)
    table = profile_table(profile)
    assert list(table.columns) == [
        "feature",
        "kind",
        "bin",
        "upper",
        "category",
        "share",
        "missing_rate",
        "n",
    ]
    back = profile_from_table(table)
    assert back.keys() == profile.keys()
    for name in profile:
        for key in ("kind", "n", "missing_rate"):
            assert back[name][key] == profile[name][key]
        assert back[name]["shares"] == pytest.approx(profile[name]["shares"])
    assert back["x"]["edges"] == pytest.approx(profile["x"]["edges"])
    assert back["empty"]["missing_rate"] == 1.0 and back["empty"]["shares"] == []
    assert (
        back["flag"]["edges"] == [0.0, 1.0] and back["flag"]["shares"][2] == 0.0
    )  # (-inf, 0], (0, 1], (1, inf)


def test_a_profile_table_without_its_columns_is_refused():
    with pytest.raises(ValueError, match="needs columns"):
        profile_from_table(pd.DataFrame({"feature": ["x"]}))


def test_the_profile_uses_only_the_frame_it_is_given():
    """The profile is built from the training frame alone: rows added later never change it (no leakage)."""
    train = pd.DataFrame({"x": np.arange(100.0)})
    later = pd.concat([train, pd.DataFrame({"x": np.arange(1000.0, 1100.0)})], ignore_index=True)
    assert build_profile(train) == build_profile(later.iloc[:100])
    assert build_profile(train) != build_profile(later)
