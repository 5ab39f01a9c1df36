"""Tests of training/anomaly/calibration.py: calibrators on hand-built margins, threshold policies on hand-built scores."""

from __future__ import annotations

import numpy as np
import pytest

from training.anomaly.calibration import (
    CenteredIsotonicCalibrator,
    PlattCalibrator,
    ThresholdPolicy,
    choose_threshold,
    days_covered,
    fit_calibrator,
)


def test_centered_isotonic_interpolates_between_block_centres():
    # isotonic fit: [0] -> 0, [1, 2] pooled -> 0.5, [3] -> 1; block centres 0, 1.5, 3
    cal = CenteredIsotonicCalibrator().fit(np.array([0.0, 1.0, 2.0, 3.0]), np.array([0, 1, 0, 1]))
    assert cal.centers_.tolist() == [0.0, 1.5, 3.0]
    assert cal.levels_.tolist() == [0.0, 0.5, 1.0]
    np.testing.assert_allclose(
        cal.predict(np.array([-5.0, 0.75, 1.5, 2.25, 9.0])), [0.0, 0.25, 0.5, 0.75, 1.0]
    )


def test_centered_isotonic_is_strictly_increasing_inside_its_range():
    rng = np.random.default_rng(0)
    margin = rng.normal(size=2000)
    y = (rng.random(2000) < 1 / (1 + np.exp(-2 * margin))).astype(int)
    cal = CenteredIsotonicCalibrator().fit(margin, y)
    grid = np.linspace(cal.centers_[0], cal.centers_[-1], 500)
    assert np.all(np.diff(cal.predict(grid)) > 0)


def test_platt_recovers_a_logistic_link():
    rng = np.random.default_rng(1)
    margin = rng.normal(size=20000)
    y = (rng.random(20000) < 1 / (1 + np.exp(-(0.5 * margin - 1.0)))).astype(int)
    cal = PlattCalibrator().fit(margin, y)
    assert cal.a_ == pytest.approx(0.5, abs=0.05)
    assert cal.b_ == pytest.approx(-1.0, abs=0.05)


def test_auto_calibration_uses_platt_on_small_slices_and_isotonic_on_large_ones():
    rng = np.random.default_rng(2)
    small_m, small_y = rng.normal(size=300), rng.integers(0, 2, 300)
    large_m, large_y = rng.normal(size=3000), rng.integers(0, 2, 3000)
    assert fit_calibrator(small_m, small_y).method == "platt"
    assert fit_calibrator(large_m, large_y).method == "isotonic"
    assert fit_calibrator(small_m, small_y, "isotonic").method == "isotonic"


def test_calibration_refuses_a_single_class():
    with pytest.raises(ValueError, match="needs both classes"):
        fit_calibrator(np.array([0.1, 0.2]), np.array([0, 0]))
    with pytest.raises(ValueError, match="calibration must be"):
        fit_calibrator(np.array([0.1, 0.2]), np.array([0, 1]), "beta")


SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
Y = np.array([1, 1, 0, 1, 0])  # precision when flagging the top 1..5: 1, 1, 2/3, 3/4, 3/5


def test_target_precision_takes_the_lowest_threshold_that_reaches_it():
    choice = choose_threshold(SCORES, Y, ThresholdPolicy(target_precision=0.7, min_flagged=1))
    assert choice.threshold == 0.6
    assert choice.precision == 0.75 and choice.recall == 1.0 and choice.n_flagged == 4
    assert choice.fallback is None
    assert choose_threshold(SCORES, Y, ThresholdPolicy(target_precision=0.6, min_flagged=1)).threshold == 0.5


def test_target_precision_needs_min_flagged_orders():
    choice = choose_threshold(SCORES, Y, ThresholdPolicy(target_precision=0.9, min_flagged=3))
    assert choice.fallback is not None and "unreachable" in choice.fallback
    assert "0.750" in choice.fallback  # best precision with >= 3 flagged: 3/4


def test_unreachable_precision_falls_back_to_best_f1():
    # F1 by cut: 0.5, 0.8, 0.67, 0.857, 0.75 -> flag the top 4
    choice = choose_threshold(SCORES, Y, ThresholdPolicy(target_precision=0.99, min_flagged=3))
    assert choice.threshold == 0.6
    assert choice.fallback.startswith("target precision 0.99 is unreachable")


def test_flag_budget_flags_the_requested_share():
    scores = np.arange(100) / 100.0
    choice = choose_threshold(scores, None, ThresholdPolicy(flag_budget=0.05))
    assert choice.n_flagged == 5 and choice.threshold == 0.95
    assert np.isnan(choice.precision)


def test_tied_scores_are_flagged_together():
    choice = choose_threshold(
        np.array([0.5, 0.5, 0.5, 0.1]),
        np.array([1, 0, 1, 0]),
        ThresholdPolicy(target_precision=0.6, min_flagged=1),
    )
    assert choice.threshold == 0.5 and choice.n_flagged == 3


def test_target_precision_without_labels_is_refused():
    with pytest.raises(ValueError, match="needs labels"):
        choose_threshold(SCORES, None, ThresholdPolicy(target_precision=0.6))


def test_policy_parse_and_validation():
    assert ThresholdPolicy.parse("precision:0.7") == ThresholdPolicy(target_precision=0.7)
    assert ThresholdPolicy.parse("budget:0.05").flag_budget == 0.05
    assert ThresholdPolicy.parse(None) == ThresholdPolicy()
    assert str(ThresholdPolicy.parse("budget:0.05")) == "budget:0.05"
    with pytest.raises(ValueError, match="'precision:0.6'"):
        ThresholdPolicy.parse("top5")
    with pytest.raises(ValueError, match=r"fraction in \(0, 1\). Got 60"):
        ThresholdPolicy(target_precision=60)
    with pytest.raises(ValueError, match="needs a target_precision or a flag_budget"):
        ThresholdPolicy(target_precision=None)


def test_policy_text_forms_round_trip_and_keep_one_kind():
    for text in ("f1", "f1:0.15", "precision:0.7", "budget:0.05", "reviews:40", "cost:5"):
        assert str(ThresholdPolicy.parse(text)) == text
    reviews = ThresholdPolicy.parse("reviews:40")
    assert reviews.kind == "reviews" and reviews.reviews_per_day == 40 and reviews.target_precision is None
    assert ThresholdPolicy(flag_budget=0.1).target_precision is None  # the unused default is cleared
    with pytest.raises(ValueError, match="'reviews:40'"):
        ThresholdPolicy.parse("reviews")
    with pytest.raises(ValueError, match=r"cost_fn must be a number > 0. Got -1"):
        ThresholdPolicy(cost_fn=-1)


def test_best_f1_policy_takes_the_cut_of_highest_f1_without_a_fallback():
    # F1 by cut: 0.5, 0.8, 0.67, 0.857, 0.75 -> flag the top 4
    choice = choose_threshold(SCORES, Y, ThresholdPolicy.parse("f1"))
    assert choice.threshold == 0.6 and choice.recall == 1.0 and choice.precision == 0.75
    assert choice.fallback is None and choice.policy == "f1"


def test_capped_best_f1_takes_the_best_cut_within_the_flag_cap_and_says_it_was_capped():
    # F1 by cut: 0.5, 0.8, 0.67, 0.857, 0.75; a 50% cap allows 2 of 5 flags -> the top 2 (F1 0.8)
    choice = choose_threshold(SCORES, Y, ThresholdPolicy.parse("f1:0.5"))
    assert choice.threshold == 0.8 and choice.n_flagged == 2 and choice.flag_rate == 0.4
    assert choice.precision == 1.0 and choice.recall == pytest.approx(2 / 3)
    assert choice.policy == "f1:0.5" and choice.fallback is None
    assert "would flag 80.0% of the orders (F1 0.857); capped at 50.0% (F1 0.800)" in choice.note
    assert choice.metadata()["threshold.note"] == choice.note


def test_capped_best_f1_equals_best_f1_when_the_cap_does_not_bind():
    capped = choose_threshold(SCORES, Y, ThresholdPolicy.parse("f1:0.8"))
    assert capped.threshold == 0.6 and capped.n_flagged == 4 and capped.note is None


def test_capped_best_f1_flags_at_least_the_top_order_under_a_tiny_cap():
    choice = choose_threshold(SCORES, Y, ThresholdPolicy.parse("f1:0.1"))
    assert choice.threshold == 0.9 and choice.n_flagged == 1


def test_flag_cap_is_validated_and_only_kept_for_best_f1():
    with pytest.raises(ValueError, match=r"max_flag_rate must be a fraction in \(0, 1\). Got 15"):
        ThresholdPolicy.parse("f1:15")
    assert ThresholdPolicy(flag_budget=0.1, max_flag_rate=0.2).max_flag_rate is None
    assert ThresholdPolicy.parse("f1:0.15") == ThresholdPolicy(
        target_precision=None, max_f1=True, max_flag_rate=0.15
    )


def test_review_budget_flags_that_many_orders_per_day_of_the_scored_period():
    scores = np.arange(100) / 100.0
    choice = choose_threshold(scores, None, ThresholdPolicy.parse("reviews:2.5"), days=10)
    assert choice.n_flagged == 25 and choice.threshold == 0.75 and choice.flags_per_day == 2.5
    everything = choose_threshold(scores, None, ThresholdPolicy.parse("reviews:50"), days=10)
    assert everything.n_flagged == 100  # capacity beyond the orders: flag them all
    with pytest.raises(ValueError, match="needs the number of days"):
        choose_threshold(scores, None, ThresholdPolicy.parse("reviews:2"))


def test_cost_policy_minimises_missed_exceptions_times_the_cost_plus_needless_flags():
    # cuts flag 1..5: misses 2, 1, 1, 0, 0; needless 0, 0, 1, 1, 2
    cost_3 = choose_threshold(SCORES, Y, ThresholdPolicy.parse("cost:3"))  # costs 6, 3, 4, 1, 2
    assert cost_3.threshold == 0.6 and cost_3.n_flagged == 4
    cost_half = choose_threshold(SCORES, Y, ThresholdPolicy.parse("cost:0.5"))  # costs 1, .5, 1.5, 1, 2
    assert cost_half.threshold == 0.8 and cost_half.fallback is None


def test_cost_policy_says_so_when_flagging_nothing_would_be_cheapest():
    choice = choose_threshold(np.array([0.9, 0.8]), np.array([0, 1]), ThresholdPolicy.parse("cost:0.1"))
    assert choice.n_flagged == 1 and "flagging no order is cheapest" in choice.fallback


def test_choice_metadata_is_flat_text_without_missing_values():
    choice = choose_threshold(np.arange(10) / 10.0, None, ThresholdPolicy(flag_budget=0.2), days=5)
    assert choice.metadata() == {
        "threshold.threshold": "0.8",
        "threshold.policy": "budget:0.2",
        "threshold.n_flagged": "2",
        "threshold.flag_rate": "0.2",
        "threshold.flags_per_day": "0.4",
    }


def test_days_covered_counts_calendar_days_inclusive():
    created = np.array(["2024-01-01T23:00", "2024-01-03T01:00"], dtype="datetime64[ns]")
    assert days_covered(created) == 3.0
    assert days_covered(created[:0]) is None
