"""Tests of features/dask/orders.py on a 2-worker LocalCluster: the dask order features equal the
single-machine ones and never see the future.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")

from features.dask.orders import order_features_dask  # noqa: E402
from features.order_features import order_features  # noqa: E402
from features.validation import validate  # noqa: E402


def _orders(n_orders: int = 400, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    created = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.sort(rng.uniform(0, 60, n_orders)), unit="D")
    created = created.floor("h")  # ties across orders, some on partition edges
    n_lines = rng.integers(1, 4, n_orders)
    order = np.repeat(np.arange(n_orders), n_lines)
    customers = np.array([f"c{c}" for c in rng.integers(0, 40, n_orders)], dtype=object)
    customers[rng.random(n_orders) < 0.05] = None
    lines = pd.DataFrame(
        {
            "order_id": [f"o{i:04d}" for i in order],
            "created_at": created[order],
            "customer_id": customers[order],
            "sku": [f"s{k}" for k in rng.integers(0, 15, len(order))],
            "quantity": rng.integers(1, 5, len(order)).astype(float),
            "unit_price": np.round(rng.lognormal(1, 0.5, len(order)), 2),
            "country": rng.choice(["UK", "FR"], len(order)),
        }
    )
    label = rng.random(n_orders) < 0.2
    labels = pd.DataFrame(
        {
            "order_id": [f"o{i:04d}" for i in range(n_orders)],
            "label": label.astype(int),
            "labeled_at": created + pd.to_timedelta(np.where(label, 2.0, 10.0), unit="D"),
        }
    )
    return validate(lines, "orders")[0], validate(labels, "labels")[0]


def test_dask_order_features_equal_local_features(client):
    orders, labels = _orders()
    local, local_report = order_features(orders, labels)
    frame, report = order_features_dask(orders, labels, npartitions=4, client=client)
    assert frame.npartitions == 4
    pd.testing.assert_frame_equal(frame.compute().reset_index(drop=True), local)
    assert report == local_report


def test_window_orders_are_scored_against_the_whole_history(client):
    orders, labels = _orders()
    local, _ = order_features(orders, labels)
    start, end = pd.Timestamp("2024-02-01"), pd.Timestamp("2024-02-15")
    expected = local.loc[(local["created_at"] >= start) & (local["created_at"] < end)].reset_index(drop=True)
    frame, report = order_features_dask(orders, labels, start=start, end=end, npartitions=3, client=client)
    pd.testing.assert_frame_equal(frame.compute().reset_index(drop=True), expected)
    assert report.orders == len(expected)


def test_customer_sku_and_global_history_cross_partition_boundaries(client):
    lines = pd.DataFrame(
        {
            "order_id": ["o0", "o1", "o2", "o3", "o3"],
            "created_at": pd.to_datetime(
                [
                    "2023-12-31 10:00",
                    "2024-01-01 10:00",
                    "2024-01-02 10:00",
                    "2024-01-03 10:00",
                    "2024-01-03 10:00",
                ]
            ),
            "customer_id": ["c3", "c1", "c2", "c1", "c1"],
            "sku": ["C", "A", "A", "A", "B"],
            "quantity": [1.0, 1.0, 1.0, 1.0, 1.0],
            "unit_price": [1.0, 1.0, 1.0, 1.0, 1.0],
        }
    )
    labels = pd.DataFrame(
        {
            "order_id": ["o0", "o1", "o2"],
            "label": [0, 1, 0],
            "labeled_at": pd.to_datetime(["2023-12-31 12:00", "2024-01-01 12:00", "2024-01-02 12:00"]),
        }
    )
    orders, labels = validate(lines, "orders")[0], validate(labels, "labels")[0]
    frame, _ = order_features_dask(orders, labels, prior_strength=2.0, npartitions=4, client=client)
    o3 = frame.compute().set_index("order_id").loc["o3"]
    # every order sits in its own partition; o3 still sees o1 (its customer), o2 (SKU A) and all 3 labels
    p = 1 / 3  # global exception rate known at o3: labels of o0, o1, o2
    assert o3["customer_prior_orders"] == 1
    assert o3["customer_prior_exceptions"] == 1
    assert o3["customer_prior_exception_rate"] == pytest.approx((1 + 2 * p) / (1 + 2))
    assert o3["sku_prior_orders_min"] == 0  # SKU B never ordered before
    assert o3["sku_prior_orders_mean"] == pytest.approx(1.0)  # A: o1 and o2; B: none
    assert o3["sku_prior_exception_rate_max"] == pytest.approx((1 + 2 * p) / (2 + 2))  # SKU A
    assert o3["sku_prior_exception_rate_mean"] == pytest.approx(((1 + 2 * p) / 4 + (2 * p) / 2) / 2)


def test_dask_order_features_never_use_orders_or_labels_after_cutoff(client):
    orders, labels = _orders(seed=1)
    cutoff = pd.Timestamp("2024-01-30")
    later = orders["created_at"] > cutoff
    changed = orders.copy()
    changed.loc[later, "quantity"] = changed.loc[later, "quantity"] * 9
    changed.loc[later, "customer_id"] = "c1"
    changed_labels = labels.copy()
    late = changed_labels["labeled_at"] > cutoff
    changed_labels.loc[late, "label"] = 1 - changed_labels.loc[late, "label"]

    a, _ = order_features_dask(orders, labels, npartitions=3, client=client)
    b, _ = order_features_dask(changed, changed_labels, npartitions=3, client=client)
    a, b = a.compute(), b.compute()
    keep = a["created_at"] <= cutoff
    pd.testing.assert_frame_equal(a.loc[keep].reset_index(drop=True), b.loc[keep].reset_index(drop=True))
