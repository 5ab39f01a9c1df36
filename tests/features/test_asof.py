"""features/asof.py: strictly-before look-ups per group."""

from __future__ import annotations

import numpy as np
import pytest

from features.asof import AsOfIndex, DecayedSums, prefix_sum, sorted_unique


def test_before_counts_only_the_groups_events_strictly_earlier_than_the_query():
    index = AsOfIndex(groups=np.array([0, 0, 0, 1]), times=np.array([10, 20, 20, 5]), n_groups=2)
    lo, hi = index.before(np.array([0, 0, 0, 1, 1]), np.array([10, 20, 21, 5, 6]))
    assert (hi - lo).tolist() == [0, 1, 3, 0, 1]


def test_unknown_group_gets_an_empty_slice():
    index = AsOfIndex(groups=np.array([0]), times=np.array([1]), n_groups=1)
    lo, hi = index.before(np.array([-1]), np.array([100]))
    assert (hi - lo).tolist() == [0]


def test_order_aligns_event_values_with_the_slices():
    index = AsOfIndex(groups=np.array([1, 0, 1]), times=np.array([3, 2, 1]), n_groups=2)
    values = np.array([30, 20, 10])[index.order]
    lo, hi = index.before(np.array([1]), np.array([4]))
    assert values[lo[0] : hi[0]].tolist() == [10, 30]  # group 1 in time order


def test_many_queries_give_the_same_answer_as_few():
    rng = np.random.default_rng(0)
    index = AsOfIndex(rng.integers(0, 50, 20_000), rng.integers(0, 1000, 20_000), n_groups=50)
    groups, times = rng.integers(-1, 50, 10_000), rng.integers(0, 1000, 10_000)
    lo, hi = index.before(groups, times)
    lo_small, hi_small = zip(
        *(index.before(groups[i : i + 1], times[i : i + 1]) for i in range(0, 10_000, 97)), strict=True
    )
    assert np.concatenate(hi_small).tolist() == hi[::97].tolist()
    assert np.concatenate(lo_small).tolist() == lo[::97].tolist()


def test_event_group_outside_the_declared_range_is_refused():
    with pytest.raises(ValueError, match=r"group codes must lie in \[0, 1\)\. Got values from 0 to 3"):
        AsOfIndex(np.array([0, 3]), np.array([1, 2]), n_groups=1)


def test_prefix_sum_makes_slice_sums():
    out = prefix_sum(np.array([1, 0, 1, 1]))
    assert out.tolist() == [0, 1, 1, 2, 3]
    assert out[4] - out[1] == 2


def test_sorted_unique_equals_numpy_unique():
    values = np.array([5, 1, 5, 3, 1])
    assert sorted_unique(values).tolist() == [1, 3, 5]
    assert sorted_unique(np.array([], dtype="int64")).tolist() == []


def test_decayed_sums_halve_an_events_weight_every_half_life_and_see_only_earlier_events():
    groups, times, values = np.array([0, 0, 1]), np.array([0, 10, 5]), np.array([1.0, 2.0, 4.0])
    index = AsOfIndex(groups, times, n_groups=3)
    sums = DecayedSums(index, groups, times, values, half_life=10)
    query_groups, query_times = np.array([0, 0, 0, 1, 2]), np.array([20, 10, 0, 25, 99])
    lo, hi = index.before(query_groups, query_times)
    # t=20: 1 * 0.5**2 + 2 * 0.5; t=10: the event at 10 is not before; t=0: nothing; group 2 has no event
    np.testing.assert_allclose(sums.sums(lo, hi, query_times), [1.25, 0.5, 0.0, 4 * 0.5**2, 0.0])


def test_decayed_sums_refuse_a_non_positive_half_life():
    index = AsOfIndex(np.array([0]), np.array([1]), n_groups=1)
    with pytest.raises(ValueError, match="half_life must be > 0"):
        DecayedSums(index, np.array([0]), np.array([1]), np.array([1.0]), half_life=0)
