"""features/order_features.py, the issue-17 signals: time-decayed outcome rates, recent activity, basket vs
the customer's usual baskets, the customer's own history with the order's SKUs, category outcome rates.

Hand-built history (prior_strength k = 1), scored at n1 = 2024-03-01 00:00:

    h1 2024-01-01 c1 SKUs a, b  UK  label 1 known 2024-01-05 (56 days before n1)
    h2 2024-01-11 c1 SKU  a     UK  label 0 known 2024-02-10 (20 days before n1)
    h3 2024-01-20 c2 SKU  c     FR  label 1 known 2024-01-25 (36 days before n1)
    h4 2024-02-20 c1 SKU  b     UK  label 1 known exactly at n1: not usable by n1
    n1 2024-03-01 c1 SKUs a, c, d  UK
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.order_features import OrderHistory, order_features
from features.order_outcomes import DECAY_HALF_LIFE_DAYS
from features.validation import validate

COLUMNS = ["order_id", "created_at", "customer_id", "sku", "quantity", "unit_price", "country"]


def _w(days: float) -> float:
    return 0.5 ** (days / DECAY_HALF_LIFE_DAYS)


@pytest.fixture
def history() -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = [
        ("h1", "2024-01-01", "c1", "a", 1, 2.0, "UK"),
        ("h1", "2024-01-01", "c1", "b", 1, 2.0, "UK"),
        ("h2", "2024-01-11", "c1", "a", 1, 2.0, "UK"),
        ("h3", "2024-01-20", "c2", "c", 1, 2.0, "FR"),
        ("h4", "2024-02-20", "c1", "b", 1, 2.0, "UK"),
        ("n1", "2024-03-01", "c1", "a", 1, 2.0, "UK"),
        ("n1", "2024-03-01", "c1", "c", 1, 2.0, "UK"),
        ("n1", "2024-03-01", "c1", "d", 1, 2.0, "UK"),
    ]
    labels = pd.DataFrame(
        [
            ("h1", 1, "2024-01-05"),
            ("h2", 0, "2024-02-10"),
            ("h3", 1, "2024-01-25"),
            ("h4", 1, "2024-03-01"),
        ],
        columns=["order_id", "label", "labeled_at"],
    )
    return (
        validate(pd.DataFrame(rows, columns=COLUMNS), "orders")[0],
        validate(labels, "labels")[0],
    )


@pytest.fixture
def n1(history) -> pd.Series:
    features = order_features(*history, prior_strength=1.0)[0]
    return features.set_index("order_id").loc["n1"]


P = 2 / 3  # labels known before n1: h1 = 1, h2 = 0, h3 = 1 (h4's arrives at n1's created_at)


def test_customer_exception_rate_decays_with_the_age_of_each_label_and_shrinks_to_the_global_rate(n1):
    expected = (_w(56) * 1 + 1.0 * P) / (_w(56) + _w(20) + 1.0)
    assert n1["customer_exception_rate_halflife_90d"] == pytest.approx(expected)
    assert n1["customer_prior_exception_rate"] == pytest.approx((1 + P) / (2 + 1))  # undecayed: h1, h2


def test_sku_exception_rates_decay_per_sku_and_take_max_and_mean_over_the_orders_skus(n1):
    rate_a = (_w(56) + P) / (_w(56) + _w(20) + 1)  # h1 (1), h2 (0)
    rate_c = (_w(36) + P) / (_w(36) + 1)  # h3 (1)
    rate_d = P  # no label: the prior
    assert n1["sku_exception_rate_halflife_90d_max"] == pytest.approx(max(rate_a, rate_c, rate_d))
    assert n1["sku_exception_rate_halflife_90d_mean"] == pytest.approx((rate_a + rate_c + rate_d) / 3)


def test_value_weighted_sku_rate_weights_each_skus_rate_by_its_line_value(history):
    orders, labels = history
    orders = orders.copy()
    orders.loc[(orders["order_id"] == "n1") & (orders["sku"] == "a"), "quantity"] = 3.0  # value 6; c, d: 2
    n1 = order_features(orders, labels, prior_strength=1.0)[0].set_index("order_id").loc["n1"]
    rate_a, rate_c, rate_d = (1 + P) / (2 + 1), (1 + P) / (1 + 1), P  # plain smoothed rates
    assert n1["sku_exception_rate_value_weighted"] == pytest.approx(
        (6 * rate_a + 2 * rate_c + 2 * rate_d) / 10
    )
    assert n1["sku_prior_exception_rate_mean"] == pytest.approx((rate_a + rate_c + rate_d) / 3)


def test_value_weighted_sku_rate_ignores_labels_known_at_or_after_the_order(history):
    orders, labels = history
    flipped = labels.assign(label=np.where(labels["order_id"] == "h4", 0, labels["label"]))
    a = order_features(orders, labels, prior_strength=1.0)[0].set_index("order_id").loc["n1"]
    b = order_features(orders, flipped, prior_strength=1.0)[0].set_index("order_id").loc["n1"]
    assert a["sku_exception_rate_value_weighted"] == b["sku_exception_rate_value_weighted"]  # h4: at n1


def test_recent_orders_count_the_customers_orders_of_the_last_30_days_only(n1):
    assert n1["customer_orders_last_30d"] == 1  # h4 (Feb 20); h1 and h2 are older than 30 days


def test_basket_is_compared_with_the_customers_earlier_baskets(n1):
    assert n1["customer_sku_count_ratio"] == pytest.approx(3 / ((2 + 1 + 1) / 3))  # 3 SKUs vs 4/3 usual
    assert n1["customer_sku_repeat_share"] == pytest.approx(1 / 3)  # a bought before; c (by c2), d never
    assert n1["customer_sku_prior_exceptions"] == 1  # a, in h1; b of h4 is not in n1 and not yet known


def test_country_exception_rate_uses_the_labels_of_that_country_known_before_the_order(n1):
    assert n1["order_country_exception_rate"] == pytest.approx((1 + 0 + P) / (2 + 1))  # UK: h1, h2


def test_first_order_and_guest_get_the_neutral_values(history):
    orders, labels = history
    features = order_features(orders, labels, prior_strength=1.0)[0].set_index("order_id")
    h1 = features.loc["h1"]  # c1's first order: no basket to compare, nothing bought before
    assert np.isnan(h1["customer_sku_count_ratio"]) and h1["customer_sku_repeat_share"] == 0
    assert h1["customer_orders_last_30d"] == 0 and np.isnan(h1["customer_exception_rate_halflife_90d"])
    guest = orders.loc[orders["order_id"] == "n1"].assign(order_id="g1", customer_id=None)
    g1 = OrderHistory(orders, labels, prior_strength=1.0).features(guest)[0].iloc[0]
    assert np.isnan(g1["customer_orders_last_30d"]) and np.isnan(g1["customer_sku_repeat_share"])
    assert np.isnan(g1["customer_sku_prior_exceptions"])
    assert g1["order_country_exception_rate"] == pytest.approx((1 + 0 + P) / (2 + 1))


def test_label_known_at_the_orders_own_time_changes_none_of_the_new_signals(history):
    orders, labels = history
    without_h4 = labels.loc[labels["order_id"] != "h4"]
    a = order_features(orders, labels, prior_strength=1.0)[0].set_index("order_id").loc["n1"]
    b = order_features(orders, without_h4, prior_strength=1.0)[0].set_index("order_id").loc["n1"]
    pd.testing.assert_series_equal(a, b)


def test_new_orders_of_one_request_count_for_each_others_recent_orders_and_baskets(history):
    orders, labels = history
    past = OrderHistory(orders.loc[orders["order_id"] != "n1"], labels, prior_strength=1.0)
    request = pd.concat(
        [
            orders.loc[orders["order_id"] == "n1"],
            orders.loc[orders["order_id"] == "n1"].assign(
                order_id="n2", created_at=pd.Timestamp("2024-03-02")
            ),
        ]
    )
    scored = past.features(request)[0].set_index("order_id")
    batch = order_features(pd.concat([orders, request.iloc[3:]]), labels, prior_strength=1.0)[0]
    pd.testing.assert_frame_equal(scored, batch.set_index("order_id").loc[["n1", "n2"]], check_exact=True)
    assert scored.loc["n2", "customer_orders_last_30d"] == 2  # h4 and n1
    assert scored.loc["n2", "customer_sku_repeat_share"] == 1  # a, c, d all in n1


def test_last_exception_of_the_customer_is_dated_by_when_it_became_known(n1):
    assert n1["customer_days_since_last_exception"] == pytest.approx(56)  # h1, known Jan 5; h4 not yet
    assert n1["customer_exceptions_last_30d"] == 0


def test_recent_exceptions_are_dated_by_when_the_outcome_happened_not_by_the_orders_time(history):
    orders, labels = history
    # h2 (ordered Jan 11) turns out an exception that comes to light on Feb 25, 5 days before n1: its order
    # is old, but the outcome event is recent and known when n1 is scored
    recent = labels.assign(
        label=np.where(labels["order_id"] == "h2", 1, labels["label"]),
        labeled_at=labels["labeled_at"].where(labels["order_id"] != "h2", pd.Timestamp("2024-02-25")),
    )
    n1 = order_features(orders, recent, prior_strength=1.0)[0].set_index("order_id").loc["n1"]
    assert n1["customer_exceptions_last_30d"] == 1  # h2 (Feb 25); h1 (Jan 5) is older, h4 known at n1
    assert n1["customer_days_since_last_exception"] == pytest.approx(5)


@pytest.mark.parametrize("known_at", ["2024-03-01", "2024-03-01 00:00:01", "2024-03-20"])
def test_an_outcome_event_at_or_after_the_order_is_never_seen_whatever_its_orders_time(history, known_at):
    orders, labels = history
    # h2 (ordered Jan 11, before n1) becomes an exception at or after n1: n1's features must not change
    late = labels.assign(
        label=np.where(labels["order_id"] == "h2", 1, labels["label"]),
        labeled_at=labels["labeled_at"].where(labels["order_id"] != "h2", pd.Timestamp(known_at)),
    )
    without_h2 = labels.loc[labels["order_id"] != "h2"]
    a = order_features(orders, late, prior_strength=1.0)[0].set_index("order_id").loc["n1"]
    b = order_features(orders, without_h2, prior_strength=1.0)[0].set_index("order_id").loc["n1"]
    pd.testing.assert_series_equal(a, b)
    assert a["customer_exceptions_last_30d"] == 0 and a[
        "customer_days_since_last_exception"
    ] == pytest.approx(56)
