"""Tests of training/anomaly/data.py: cutoff, labels known at the cutoff, label maturity, time split, encoding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.validation import validate
from training.anomaly.data import FeatureEncoder, prepare_training_data, resolve_cutoff, time_split


def _tiny() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Six orders on 2020-01-01..06 at 10:00 (o6 a guest) and labels with 1- or 3-day delays."""
    day = pd.Timestamp("2020-01-01 10:00")
    orders = pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(1, 7)],
            "created_at": [day + pd.Timedelta(days=i) for i in range(6)],
            "customer_id": ["c1", "c2", "c1", "c2", "c1", None],
            "sku": ["A", "B", "A", "B", "A", "C"],
            "quantity": [1.0, 2.0, 1.0, 5.0, 1.0, 1.0],
            "unit_price": [10.0, 10.0, 10.0, 10.0, 10.0, 10.0],
        }
    )
    labels = pd.DataFrame(
        {
            "order_id": ["o1", "o2", "o3", "o4", "o5"],
            "label": [0, 1, 0, 1, 0],
            "labeled_at": [day + pd.Timedelta(days=d) for d in (3, 2, 5, 4, 7)],  # o5 known on 01-08
        }
    )
    return validate(orders, "orders")[0], validate(labels, "labels")[0]


def test_cutoff_of_a_date_is_the_next_midnight_and_of_a_timestamp_is_exact():
    orders, labels = _tiny()
    assert resolve_cutoff("2020-01-06", orders) == pd.Timestamp("2020-01-07")
    assert resolve_cutoff("2020-01-06 12:30", orders) == pd.Timestamp("2020-01-06 12:30")
    assert resolve_cutoff(None, orders, labels) == pd.Timestamp("2020-01-08 10:00") + pd.Timedelta(1, "ns")
    with pytest.raises(ValueError, match="until must be a date"):
        resolve_cutoff("someday", orders)


def test_only_labels_known_before_the_cutoff_are_used_and_the_rest_counted():
    orders, labels = _tiny()
    data = prepare_training_data(orders, labels, "2020-01-06", maturity=None, require_labels=False)
    r = data.report
    assert r["labels_after_cutoff"] == 1  # o5
    assert r["orders_label_unknown_at_cutoff"] == 1  # o5
    assert r["orders_without_label"] == 1  # o6, a guest
    assert data.labels["order_id"].tolist() == ["o1", "o2", "o3", "o4"]
    y = dict(zip(data.features["order_id"], data.y, strict=True))
    assert y == {"o1": 0, "o2": 1, "o3": 0, "o4": 1, "o5": -1, "o6": -1}


def test_recent_orders_whose_slow_labels_cannot_be_known_yet_are_excluded():
    orders, labels = _tiny()
    # known delays 3, 1, 3, 1 days -> maturity 3 days: orders created after 2020-01-04 00:00 are immature
    data = prepare_training_data(orders, labels, "2020-01-06", require_labels=False)
    assert data.maturity == pd.Timedelta(days=3)
    assert data.report["orders_immature_excluded"] == 1  # o4 (its label is known, o3's slower one too)
    assert data.report["orders_immature_excluded_positive"] == 1
    assert data.report["training_rows"] == 3
    assert set(data.features["order_id"][data.y >= 0]) == {"o1", "o2", "o3"}


def test_orders_after_the_cutoff_are_not_featured_and_the_snapshot_stops_at_the_cutoff():
    orders, labels = _tiny()
    data = prepare_training_data(orders, labels, "2020-01-03", maturity=None, require_labels=False)
    assert data.features["order_id"].tolist() == ["o1", "o2", "o3"]
    assert data.orders["created_at"].max() < data.cutoff
    assert (data.labels["labeled_at"] < data.cutoff).all()


def test_training_refuses_slices_without_both_classes():
    orders, labels = _tiny()
    with pytest.raises(ValueError, match=r"Every slice needs both classes.*--unsupervised"):
        prepare_training_data(orders, labels, "2020-01-06", maturity=None)


def test_time_split_cuts_at_time_quantiles():
    t = pd.date_range("2020-01-01", periods=20, freq="D").to_numpy()
    part = time_split(t[::-1], 0.15, 0.15)[::-1]  # order of rows does not matter
    assert (part == "train").sum() == 14 and (part == "valid").sum() == 3 and (part == "calib").sum() == 3
    assert part[:14].tolist() == ["train"] * 14 and part[-3:].tolist() == ["calib"] * 3


def test_time_split_keeps_simultaneous_orders_in_one_slice():
    t = np.array(["2020-01-01"] * 5 + ["2020-01-02"] * 5, dtype="datetime64[ns]")
    part = time_split(t, 0.2, 0.2)
    assert len(set(part[:5])) == 1 and len(set(part[5:])) == 1


def test_time_split_refuses_bad_fractions():
    with pytest.raises(ValueError, match=r"valid_fraction must be a fraction in \(0, 0.5\). Got 0.6"):
        time_split(np.array(["2020-01-01"], dtype="datetime64[ns]"), 0.6, 0.1)


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"order_value": [10.0, np.nan, 30.0, 40.0], "order_country": pd.Categorical(["UK", "UK", "FR", None])}
    )


def test_encoder_codes_categories_seen_at_fit_and_unseen_as_missing():
    enc = FeatureEncoder(["order_value", "order_country"]).fit(_frame())
    new = pd.DataFrame({"order_value": [5.0, 6.0], "order_country": pd.Categorical(["FR", "Mars"])})
    out = enc.transform(new)
    assert out[0].tolist() == [5.0, 1.0]  # categories by frequency: UK=0, FR=1
    assert out[1, 0] == 6.0 and np.isnan(out[1, 1])
    assert enc.categorical_indices == [1]


def test_encoder_frequency_mode_and_median_imputation():
    enc = FeatureEncoder(["order_value", "order_country"], categorical="frequency", impute=True).fit(_frame())
    out = enc.transform(pd.DataFrame({"order_value": [np.nan], "order_country": pd.Categorical(["Mars"])}))
    assert out.tolist() == [[30.0, 0.0]]  # median of 10, 30, 40; unseen country frequency 0
    assert enc.transform(_frame())[:, 1].tolist() == [0.5, 0.5, 0.25, 0.0]
    assert enc.n_missing_ == {"order_value": 1}  # a missing category is frequency 0, not a hole


def test_encoder_gives_the_same_matrix_one_row_at_a_time_and_in_bulk():
    rng = np.random.default_rng(0)
    big = pd.DataFrame(
        {
            "order_value": rng.normal(size=300),
            "order_country": pd.Categorical(rng.choice(["UK", "FR", "DE", None], 300)),
        }
    )
    enc = FeatureEncoder(["order_value", "order_country"]).fit(big)
    bulk = enc.transform(big)
    single = np.vstack([enc.transform(big.iloc[[i]]) for i in range(0, 300, 37)])
    np.testing.assert_array_equal(bulk[::37], single)


def test_encoder_refuses_frames_without_the_features():
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['order_n_lines'\]"):
        FeatureEncoder(["order_n_lines"]).fit(_frame())
