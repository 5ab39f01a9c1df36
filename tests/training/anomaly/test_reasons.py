"""Tests of training/anomaly/reasons.py: one sentence per feature family with real values, missing values, ordering."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from features.order_features import order_feature_names
from training.anomaly.reasons import (
    REASON_TEMPLATES,
    SKU_ID_KEY,
    build_reasons,
    format_contribution,
    make_reason,
    reason_text,
)
from training.explain import Contributions


def test_every_order_feature_has_a_template():
    assert set(order_feature_names()) <= set(REASON_TEMPLATES)


@pytest.mark.parametrize("feature", sorted(REASON_TEMPLATES))
def test_every_template_turns_a_missing_value_into_words(feature):
    for missing in (None, np.nan, pd.NA):
        text = reason_text(feature, missing, {})
        assert text and "nan" not in text.lower() and "<NA>" not in text and "None" not in text


def test_customer_exceptions_sentence_uses_both_counts():
    row = {"customer_prior_exceptions": 5.0, "customer_prior_labeled": 6.0}
    reason = make_reason("customer_prior_exceptions", 5.0, 0.3149, row)
    assert (
        reason["text"]
        == "customer had exceptions on 5 of their 6 earlier orders with a known outcome (+0.31)"
    )
    assert reason == {
        "feature": "customer_prior_exceptions",
        "value": 5,
        "contribution": 0.3149,
        "text": reason["text"],
    }


def test_value_ratio_sentence_names_the_order_value():
    row = {"order_value": 2340.0, "customer_value_ratio": 9.04}
    assert (
        make_reason("customer_value_ratio", 9.04, 0.12, row)["text"]
        == "order value 2,340 is 9x this customer's median (+0.12)"
    )
    assert (
        reason_text("customer_value_ratio", 0.5, {"order_value": 12.5})
        == "order value 12.50 is 0.5x this customer's median"
    )


def test_first_order_and_guest_sentences():
    assert reason_text("customer_prior_orders", 0.0) == "first order from this customer"
    assert reason_text("customer_prior_orders", 3.0) == "customer placed 3 orders before"
    assert reason_text("customer_days_since_last_order", np.nan) == "first order from this customer"
    assert reason_text("customer_is_guest", 1) == "guest checkout"
    assert reason_text("customer_is_guest", 0) == "registered customer"
    assert reason_text("customer_prior_orders", np.nan) == "guest checkout: no order history to go by"


def test_customer_history_sentences():
    assert reason_text("customer_prior_exception_rate", 0.45) == "customer's exception rate so far is 45%"
    assert (
        reason_text("customer_prior_exception_rate", np.nan)
        == "no known outcome of this customer's earlier orders yet"
    )
    assert reason_text("customer_days_since_last_order", 0.25) == "customer's previous order was 6 hours ago"
    assert reason_text("customer_days_since_first_order", 41.6) == "customer's first order was 42 days ago"
    assert (
        reason_text("customer_prior_labeled", 1.0) == "1 earlier order of this customer with a known outcome"
    )
    assert (
        reason_text("customer_prior_value_median", 260.0)
        == "this customer's median earlier order value is 260"
    )


def test_sku_sentences_use_the_rate_and_name_the_sku_when_given():
    assert (
        reason_text("sku_prior_exception_rate_max", 0.12)
        == "a SKU in this order had exceptions on 12% of its orders"
    )
    assert (
        reason_text("sku_prior_exception_rate_max", 0.12, {SKU_ID_KEY: "85123A"})
        == "SKU 85123A had exceptions on 12% of its orders"
    )
    assert (
        reason_text("sku_prior_exception_rate_mean", 0.004)
        == "its SKUs had exceptions on 0.4% of their orders on average"
    )
    assert reason_text("sku_prior_orders_min", 0.0) == "contains a SKU never ordered before"
    assert reason_text("sku_prior_orders_mean", 17.4) == "its SKUs were ordered 17 times before on average"


def test_order_sentences_format_numbers():
    assert reason_text("order_value", 2340.0) == "order value 2,340"
    assert reason_text("order_value", 12345.678) == "order value 12,346"
    assert reason_text("order_n_lines", 12) == "12 lines in the order"
    assert reason_text("order_max_unit_price", 3.5) == "most expensive item costs 3.50 per unit"


def test_time_sentences():
    assert reason_text("time_hour", 3) == "placed between 03:00 and 04:00"
    assert reason_text("time_hour", 23) == "placed between 23:00 and 00:00"
    assert reason_text("time_dayofweek", 6) == "placed on a Sunday"
    assert reason_text("time_is_weekend", 1) == "placed at the weekend"
    assert reason_text("time_month", 12) == "placed in December"


def test_categorical_sentences():
    assert reason_text("order_country", "Nigeria") == "country Nigeria"
    assert reason_text("order_channel", None) == "channel missing or not seen in training"


def test_unknown_feature_falls_back_to_name_and_value():
    assert reason_text("promo_days_since_start", 3.0) == "promo_days_since_start is 3"
    assert reason_text("promo_days_since_start", np.nan) == "promo_days_since_start is missing"


def test_format_contribution_keeps_sign_and_small_values():
    assert format_contribution(0.3149) == "+0.31"
    assert format_contribution(-0.12) == "-0.12"
    assert format_contribution(0.004) == "+0.004"


def test_build_reasons_sorted_by_contribution_and_capped_at_k():
    features = pd.DataFrame(
        {
            "order_value": [100.0, 50.0],
            "customer_prior_orders": [0.0, 4.0],
            "time_hour": [3, 14],
            "customer_is_guest": [0, 0],
        }
    )
    values = np.array([[0.2, 0.5, -0.1, 0.05], [0.0, -0.3, 0.4, 0.1]])
    contrib = Contributions(values, np.zeros(2), tuple(features.columns), "log-odds")
    reasons = build_reasons(features, contrib, k=2)
    assert [r["feature"] for r in reasons[0]] == ["customer_prior_orders", "order_value"]
    assert [r["contribution"] for r in reasons[0]] == [0.5, 0.2]
    assert reasons[0][0]["text"] == "first order from this customer (+0.50)"
    assert [r["feature"] for r in reasons[1]] == ["time_hour", "customer_is_guest"]
    json.dumps(reasons)  # JSON-safe values


def test_build_reasons_json_safe_values_for_missing_and_categoricals():
    features = pd.DataFrame(
        {
            "customer_value_ratio": [np.nan],
            "order_country": pd.Categorical(["UK"]),
            "customer_id": pd.array([pd.NA], dtype="string"),
        }
    )
    contrib = Contributions(
        np.array([[0.3, 0.1]]), np.zeros(1), ("customer_value_ratio", "order_country"), "log-odds"
    )
    reasons = build_reasons(features, contrib, k=5)[0]
    assert reasons[0]["value"] is None
    assert reasons[0]["text"] == "no earlier order value of this customer to compare with (+0.30)"
    assert reasons[1]["value"] == "UK"
    assert not any(isinstance(r["value"], float) and math.isnan(r["value"]) for r in reasons)


def test_build_reasons_refuses_frames_of_another_length():
    contrib = Contributions(np.zeros((2, 1)), np.zeros(2), ("order_value",), "log-odds")
    with pytest.raises(ValueError, match="features has 1 rows but contributions has 2"):
        build_reasons(pd.DataFrame({"order_value": [1.0]}), contrib)


def test_issue_17_signals_read_as_sentences_with_their_values():
    row = {"order_n_distinct_skus": 12.0, "order_country": "EIRE"}
    assert (
        reason_text("customer_sku_count_ratio", 4.0, row)
        == "12 SKUs in the order is 4x this customer's usual basket"
    )
    assert (
        reason_text("customer_sku_prior_exceptions", 2.0)
        == "customer had exceptions before on 2 SKUs of this order"
    )
    assert reason_text("customer_sku_repeat_share", 0.25) == "the customer bought 25% of its SKUs before"
    assert (
        reason_text("customer_sku_repeat_share", 0.0)
        == "none of its SKUs were bought by this customer before"
    )
    assert (
        reason_text("customer_orders_last_30d", 3.0) == "customer placed 3 other orders in the last 30 days"
    )
    assert reason_text("customer_exceptions_last_30d", 1.0) == (
        "1 exception of this customer came to light in the last 30 days"
    )
    assert (
        reason_text("customer_days_since_last_exception", 6.2)
        == "customer's last exception came to light 6 days ago"
    )
    assert reason_text("customer_exception_rate_halflife_90d", 0.4) == (
        "customer's exception rate, recent orders weighted most, is 40%"
    )
    assert reason_text("sku_exception_rate_halflife_90d_max", 0.5) == (
        "a SKU in this order had exceptions on 50% of its recent orders"
    )
    assert (
        reason_text("order_country_exception_rate", 0.31, row)
        == "orders from country EIRE had exceptions 31% of the time"
    )


def test_quantity_vs_usual_and_value_weighted_rate_read_as_sentences():
    assert reason_text("sku_quantity_vs_usual_max", np.log(11) - np.log(2)) == (
        "one SKU is ordered in 6x its usual quantity (1 + units, geometric mean)"
    )
    assert reason_text("sku_quantity_vs_usual_mean", 0.0) == (
        "its SKUs are on average ordered in 1.0x its usual quantity (1 + units, geometric mean)"
    )
    assert reason_text("sku_quantity_vs_usual_max", np.nan) == (
        "no earlier order of its SKUs to compare quantities with"
    )
    assert reason_text("sku_exception_rate_value_weighted", 0.25) == (
        "weighted by line value, its SKUs had exceptions on 25% of their orders"
    )
