"""features/order_features.py: point-in-time order features, batch path == single-order path, no leakage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.errors import DataValidationError
from features.order_features import (
    ORDER_FEATURE_FAMILIES,
    OrderHistory,
    order_feature_family,
    order_feature_names,
    order_features,
)
from features.validation import validate

COLUMNS = ["order_id", "created_at", "customer_id", "sku", "quantity", "unit_price", "country"]


def _orders(rows: list[tuple]) -> pd.DataFrame:
    return validate(pd.DataFrame(rows, columns=COLUMNS), "orders")[0]


def _labels(rows: list[tuple]) -> pd.DataFrame:
    return validate(pd.DataFrame(rows, columns=["order_id", "label", "labeled_at"]), "labels")[0]


@pytest.fixture
def orders() -> pd.DataFrame:
    return _orders(
        [
            ("o1", "2024-01-01 10:00", "c1", "a", 2, 5.0, "UK"),
            ("o1", "2024-01-01 10:00", "c1", "b", 1, 10.0, "UK"),
            ("o1", "2024-01-01 10:00", "c1", "a", 3, 5.0, "UK"),  # SKU a twice in one order
            ("o2", "2024-01-02 10:00", "c1", "a", 1, 4.0, "UK"),
            ("o3", "2024-01-02 10:00", None, "b", 6, 1.0, "FR"),  # guest, same instant as o2
            ("o4", "2024-01-04 22:00", "c1", "c", 10, 3.0, "UK"),
            ("o5", "2024-01-06 09:30", "c2", "a", 1, 1.0, "FR"),  # a Saturday
        ]
    )


@pytest.fixture
def labels() -> pd.DataFrame:
    return _labels(
        [
            ("o1", 1, "2024-01-02 10:00:00"),  # known exactly at o2's created_at: not usable by o2
            ("o2", 0, "2024-01-04 21:59:59.999999999"),  # known 1 ns before o4: usable by o4
            ("o3", 1, "2024-01-03 00:00:00"),
        ]
    )


def _row(features: pd.DataFrame, order_id: str) -> pd.Series:
    return features.set_index("order_id").loc[order_id]


def _random_orders(seed: int = 0, n_orders: int = 60) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Orders over ten days with ties, guests, repeated SKUs; labels with delays from 0 to 3 days."""
    rng = np.random.default_rng(seed)
    minutes = np.sort(rng.integers(0, 10 * 24 * 60, n_orders))
    minutes[[5, 6, 20, 21]] = minutes[[4, 4, 19, 19]]  # several orders at one instant
    created = pd.Timestamp("2024-03-01") + pd.to_timedelta(minutes, unit="min")
    customers = rng.choice(np.array(["c1", "c2", "c3", "c4", None], dtype=object), n_orders)
    customers[[4, 5]] = "c1"  # one customer, two orders at the same instant
    rows = []
    for i in range(n_orders):
        country = rng.choice(["UK", "FR", "DE"])
        for _ in range(rng.integers(1, 4)):
            rows.append(
                (
                    f"o{i:03d}",
                    created[i],
                    customers[i],
                    rng.choice(["a", "b", "c", "d", "e"]),
                    int(rng.integers(1, 5)),
                    float(rng.integers(1, 40)) / 2,
                    country,
                )
            )
    orders = _orders(rows)
    labeled = rng.random(n_orders) < 0.7
    delay = pd.to_timedelta(rng.integers(0, 3 * 24 * 60, n_orders), unit="min")
    labels = pd.DataFrame(
        {
            "order_id": [f"o{i:03d}" for i in range(n_orders)],
            "label": (rng.random(n_orders) < 0.3).astype(int),
            "labeled_at": created + delay,
        }
    )
    return orders, validate(labels[labeled], "labels")[0]


# --- order composition -------------------------------------------------------------------------------------


def test_order_composition_is_computed_from_all_lines_of_the_order(orders):
    o1 = _row(order_features(orders)[0], "o1")
    assert o1["order_n_lines"] == 3
    assert o1["order_n_distinct_skus"] == 2
    assert o1["order_total_quantity"] == 6.0
    assert o1["order_max_line_quantity"] == 3.0
    assert o1["order_value"] == 2 * 5.0 + 1 * 10.0 + 3 * 5.0
    assert o1["order_mean_unit_price"] == pytest.approx((5.0 + 10.0 + 5.0) / 3)
    assert o1["order_max_unit_price"] == 10.0


def test_output_has_one_row_per_order_sorted_by_created_at_then_order_id(orders):
    features, report = order_features(orders)
    assert features["order_id"].tolist() == ["o1", "o2", "o3", "o4", "o5"]
    assert features.columns[:3].tolist() == ["order_id", "created_at", "customer_id"]
    assert report.orders == 5 and report.lines == 7


# --- customer history --------------------------------------------------------------------------------------


def test_customer_history_counts_only_earlier_orders_with_median_ratio_and_days(orders):
    features = order_features(orders)[0]
    o1, o2, o4 = (_row(features, o) for o in ("o1", "o2", "o4"))
    assert o1["customer_prior_orders"] == 0
    assert np.isnan(o1["customer_prior_value_median"]) and np.isnan(o1["customer_days_since_last_order"])
    assert o2["customer_prior_orders"] == 1
    assert o2["customer_prior_value_median"] == 35.0
    assert o2["customer_value_ratio"] == pytest.approx(4.0 / 35.0)
    assert o2["customer_days_since_first_order"] == 1.0
    assert o4["customer_prior_orders"] == 2
    assert o4["customer_prior_value_median"] == (35.0 + 4.0) / 2
    assert o4["customer_value_ratio"] == pytest.approx(30.0 / 19.5)
    assert o4["customer_days_since_first_order"] == 3.5
    assert o4["customer_days_since_last_order"] == 2.5


def test_orders_of_one_customer_at_the_same_instant_do_not_count_as_prior_for_each_other():
    orders = _orders(
        [
            ("x1", "2024-01-01 10:00", "c1", "a", 1, 1.0, "UK"),
            ("x2", "2024-01-01 10:00", "c1", "a", 1, 2.0, "UK"),
            ("x3", "2024-01-01 10:01", "c1", "a", 1, 3.0, "UK"),
        ]
    )
    features = order_features(orders)[0]
    assert features["customer_prior_orders"].tolist() == [0, 0, 2]
    assert features["sku_prior_orders_min"].tolist() == [0, 0, 2]
    assert features["customer_prior_value_median"].iloc[2] == 1.5


def test_guest_order_has_no_customer_history_but_counts_for_sku_history(orders):
    features = order_features(orders)[0]
    o3 = _row(features, "o3")
    assert o3["customer_is_guest"] == 1
    customer_history = [n for n in ORDER_FEATURE_FAMILIES["customer"] if n != "customer_is_guest"]
    assert o3[customer_history].isna().all()
    assert o3["sku_prior_orders_min"] == 1  # o1 had SKU b
    assert _row(features, "o5")["sku_prior_orders_min"] == 2  # o1 and o2 had SKU a
    assert features["customer_is_guest"].tolist() == [0, 0, 1, 0, 0]


def test_guests_are_not_merged_into_one_customer():
    orders = _orders(
        [("g1", "2024-01-01", None, "a", 1, 1.0, "UK"), ("g2", "2024-01-02", None, "a", 1, 1.0, "UK")]
    )
    features, report = order_features(orders)
    assert features["customer_prior_orders"].isna().all()
    assert report.guest_orders == 2


# --- labels ------------------------------------------------------------------------------------------------


def test_label_known_exactly_at_created_at_is_not_used_but_one_known_a_nanosecond_before_is(orders, labels):
    features = order_features(orders, labels, prior_strength=1.0)[0]
    o2, o4 = _row(features, "o2"), _row(features, "o4")
    assert o2["customer_prior_labeled"] == 0  # o1's label arrives at o2's created_at
    assert np.isnan(o2["sku_prior_exception_rate_max"])  # no label known anywhere yet
    assert o4["customer_prior_labeled"] == 2  # o1 and o2 (labeled 1 ns before o4)
    assert o4["customer_prior_exceptions"] == 1


def test_exception_rates_are_smoothed_towards_the_rate_of_labels_known_at_the_time(orders, labels):
    features = order_features(orders, labels, prior_strength=1.0)[0]
    o4, o5 = _row(features, "o4"), _row(features, "o5")
    p = 2 / 3  # labels known before o4 and before o5: o1=1, o2=0, o3=1
    assert o4["customer_prior_exception_rate"] == pytest.approx((1 + 1.0 * p) / (2 + 1.0))
    assert o4["sku_prior_exception_rate_max"] == pytest.approx(p)  # SKU c has no label: the prior itself
    assert o5["sku_prior_exception_rate_mean"] == pytest.approx((1 + p) / (2 + 1.0))  # SKU a: o1=1, o2=0
    assert np.isnan(o5["customer_prior_exception_rate"])  # c2 has no known label
    assert o5["customer_prior_labeled"] == 0 and o5["customer_prior_exceptions"] == 0


def test_sku_rates_take_max_and_mean_over_the_distinct_skus_of_the_order():
    orders = _orders(
        [
            ("h1", "2024-01-01", "c1", "a", 1, 1.0, "UK"),
            ("h2", "2024-01-01", "c2", "b", 1, 1.0, "UK"),
            ("n1", "2024-01-03", "c3", "a", 1, 1.0, "UK"),
            ("n1", "2024-01-03", "c3", "b", 1, 1.0, "UK"),
            ("n1", "2024-01-03", "c3", "b", 1, 1.0, "UK"),
        ]
    )
    labels = _labels([("h1", 1, "2024-01-02"), ("h2", 0, "2024-01-02")])
    n1 = _row(order_features(orders, labels, prior_strength=2.0)[0], "n1")
    rate_a, rate_b = (1 + 2 * 0.5) / (1 + 2), (0 + 2 * 0.5) / (1 + 2)
    assert n1["sku_prior_exception_rate_max"] == pytest.approx(rate_a)
    assert n1["sku_prior_exception_rate_mean"] == pytest.approx((rate_a + rate_b) / 2)
    assert n1["sku_prior_orders_mean"] == 1.0


def test_quantity_vs_usual_compares_log_units_with_the_skus_earlier_orders_only(orders):
    f = order_features(orders)[0].set_index("order_id")
    log = np.log
    # o2 buys 1 a; a's only earlier order is o1 with 2 + 3 units (its lines of one SKU add up)
    assert f.loc["o2", "sku_quantity_vs_usual_max"] == pytest.approx(log(2) - log(6), abs=1e-6)
    # o3 (a guest, same instant as o2) buys 6 b: b's earlier order is o1 with 1 unit
    assert f.loc["o3", "sku_quantity_vs_usual_mean"] == pytest.approx(log(7) - log(2), abs=1e-6)
    # o5 buys 1 a: earlier a orders o1 (5 units) and o2 (1 unit); o2's instant-mates do not matter
    assert f.loc["o5", "sku_quantity_vs_usual_max"] == pytest.approx(log(2) - (log(6) + log(2)) / 2, abs=1e-6)
    assert np.isnan(f.loc["o1", "sku_quantity_vs_usual_max"])  # nothing before it
    assert np.isnan(f.loc["o4", "sku_quantity_vs_usual_mean"])  # c was never ordered before


def test_quantity_vs_usual_takes_max_and_mean_over_the_skus_with_history_and_ignores_later_orders(orders):
    more = pd.concat(
        [
            orders,
            _orders(
                [
                    ("o6", "2024-01-07 10:00", "c2", "a", 10, 1.0, "UK"),  # a: 3 earlier orders
                    ("o6", "2024-01-07 10:00", "c2", "new", 1, 1.0, "UK"),  # no history: left out
                    ("o6", "2024-01-07 10:00", "c2", "b", 1, 1.0, "UK"),  # b: o1 and o3
                    ("o7", "2024-01-07 10:00", "c1", "a", 500, 1.0, "UK"),  # same instant: not seen by o6
                    ("o8", "2024-01-09 10:00", "c1", "b", 900, 1.0, "UK"),  # later: not seen by o6
                ]
            ),
        ],
        ignore_index=True,
    )
    o6 = _row(order_features(more)[0], "o6")
    log = np.log
    dev_a = log(11) - (log(6) + log(2) + log(2)) / 3
    dev_b = log(2) - (log(2) + log(7)) / 2
    assert o6["sku_quantity_vs_usual_max"] == pytest.approx(max(dev_a, dev_b), abs=1e-6)
    assert o6["sku_quantity_vs_usual_mean"] == pytest.approx((dev_a + dev_b) / 2, abs=1e-6)


def test_label_dated_before_its_order_counts_only_from_the_order_creation_and_is_reported():
    orders = _orders(
        [
            ("p1", "2024-01-05", "c1", "a", 1, 1.0, "UK"),
            ("p2", "2024-01-05", "c1", "a", 1, 1.0, "UK"),  # same instant as p1
            ("p3", "2024-01-06", "c1", "a", 1, 1.0, "UK"),
        ]
    )
    labels = _labels([("p1", 1, "2024-01-01")])
    features, report = order_features(orders, labels)
    assert features["customer_prior_labeled"].tolist() == [0, 0, 1]
    assert report.labels_dated_before_order == 1


def test_labels_of_unknown_orders_are_ignored_and_counted(orders, labels):
    extra = pd.concat([labels, _labels([("nope", 1, "2024-01-01")])], ignore_index=True)
    features, report = order_features(orders, extra)
    pd.testing.assert_frame_equal(features, order_features(orders, labels)[0])
    assert (report.labels_in, report.labels_used, report.labels_unknown_order) == (4, 3, 1)
    assert "1 ignored because their order_id is not in the orders table" in str(report)


# --- time and categoricals ---------------------------------------------------------------------------------


def test_time_features_of_created_at(orders):
    o5 = _row(order_features(orders)[0], "o5")  # Saturday 2024-01-06 09:30
    assert (o5["time_hour"], o5["time_dayofweek"], o5["time_is_weekend"], o5["time_month"]) == (9, 5, 1, 1)


def test_optional_column_becomes_a_categorical_with_the_history_categories(orders):
    features = order_features(orders)[0]
    assert isinstance(features["order_country"].dtype, pd.CategoricalDtype)
    assert features["order_country"].cat.categories.tolist() == ["FR", "UK"]
    assert "order_channel" not in features.columns


def test_category_unseen_in_the_history_becomes_missing_and_is_counted(orders):
    new = pd.DataFrame([("n1", "2024-02-01", "c1", "a", 1, 1.0, "DE")], columns=COLUMNS)
    features, report = OrderHistory(orders).features(new)
    assert features["order_country"].isna().all()
    assert report.unknown_category_values == {"country": 1}


# --- single-order path == batch path ------------------------------------------------------------------------


def test_each_order_scored_alone_against_the_full_history_equals_its_batch_row():
    orders, labels = _random_orders()
    batch = order_features(orders, labels)[0].set_index("order_id")
    history = OrderHistory(orders, labels)
    for order_id, lines in orders.groupby("order_id", sort=False):
        single = history.features(lines)[0].set_index("order_id")
        pd.testing.assert_frame_equal(single, batch.loc[[order_id]], check_exact=True)


def test_a_new_order_scored_against_only_the_earlier_history_equals_its_batch_row():
    orders, labels = _random_orders(seed=1)
    batch = order_features(orders, labels)[0].set_index("order_id")
    for order_id in ["o010", "o030", "o059"]:
        lines = orders[orders["order_id"] == order_id]
        earlier = orders[orders["created_at"] < lines["created_at"].iloc[0]]
        history = OrderHistory(earlier, labels[labels["order_id"].isin(earlier["order_id"])])
        single = history.features(lines)[0].set_index("order_id")
        pd.testing.assert_frame_equal(single, batch.loc[[order_id]], check_exact=True)


def test_a_batch_of_new_orders_sees_each_other_as_the_batch_path_does():
    orders, labels = _random_orders(seed=2)
    cutoff = orders["created_at"].quantile(0.6)
    old, new = orders[orders["created_at"] <= cutoff], orders[orders["created_at"] > cutoff]
    labels = labels[labels["order_id"].isin(old["order_id"])]  # labels of new orders are not known yet
    batch = order_features(orders, labels)[0].set_index("order_id")
    scored = OrderHistory(old, labels).features(new)[0].set_index("order_id")
    assert scored["customer_prior_orders"].max() > 0
    pd.testing.assert_frame_equal(scored, batch.loc[scored.index], check_exact=True)


def test_raw_request_without_validation_gives_the_same_features_as_the_validated_table(orders):
    raw = pd.DataFrame([("o5", "2024-01-06T09:30:00", " c2 ", "a", "1", "1.0", "FR")], columns=COLUMNS)
    single = OrderHistory(orders).features(raw)[0]
    pd.testing.assert_frame_equal(single, order_features(orders)[0].iloc[[4]].reset_index(drop=True))


def _line_arrays(lines: pd.DataFrame) -> dict[str, np.ndarray]:
    """Order lines as a service builds them: typed column arrays, ids as str objects, missing as None."""
    out = {
        c: lines[c].astype(object).where(lines[c].notna(), None).to_numpy()
        for c in ["order_id", "customer_id", "sku", "country"]
    }
    out["created_at"] = lines["created_at"].to_numpy("datetime64[ns]")
    out["quantity"] = lines["quantity"].to_numpy("float64")
    out["unit_price"] = lines["unit_price"].to_numpy("float64")
    return out


@pytest.mark.parametrize("seed", [0, 3])
def test_feature_columns_hold_the_same_values_as_the_feature_frame(seed):
    orders, labels = _random_orders(seed=seed)
    cutoff = orders["created_at"].quantile(0.5)
    old, new = orders[orders["created_at"] <= cutoff], orders[orders["created_at"] > cutoff]
    new = pd.concat([new, new.iloc[[0]].assign(order_id="zz", country="XX")])  # a country the history lacks
    history = OrderHistory(old, labels[labels["order_id"].isin(old["order_id"])])
    frame, frame_report = history.features(new)
    for given in (new, _line_arrays(new)):  # a DataFrame, or typed arrays (the service's request path)
        columns, report = history.feature_columns(given)
        assert list(columns) == list(frame.columns)
        assert report == frame_report and report.unknown_category_values == {"country": 1}
        for name, values in columns.items():
            assert isinstance(values, np.ndarray) and len(values) == len(frame), name
            expected = frame[name].to_numpy(dtype=object if values.dtype == object else None)
            if values.dtype == object:  # ids and categories: the value, or missing
                assert [None if pd.isna(v) else v for v in values] == [
                    None if pd.isna(v) else v for v in expected
                ]
            else:
                np.testing.assert_array_equal(values, expected, err_msg=name)
        zz = list(columns["order_id"]).index("zz")
        assert columns["order_country"][zz] is None and pd.isna(frame["order_country"].iloc[zz])


def test_line_arrays_needing_a_repair_or_a_check_give_the_dataframe_path_result_and_errors(orders):
    typed = _line_arrays(orders[orders["order_id"] == "o5"])
    raw = dict(
        typed,
        created_at=np.array(["2024-01-06T09:30:00"], dtype=object),
        customer_id=np.array([" c2 "], dtype=object),
    )
    history = OrderHistory(orders)
    expected = history.feature_columns(typed)[0]
    repaired = history.feature_columns(raw)[0]  # text timestamp, blank-padded id: the DataFrame path
    for name in expected:
        assert list(map(str, repaired[name])) == list(map(str, expected[name])), name
    with pytest.raises(DataValidationError, match="quantity.*missing or non-numeric"):
        history.feature_columns(dict(typed, quantity=np.array([np.nan])))
    with pytest.raises(DataValidationError, match="sku.*missing id"):
        history.feature_columns(dict(typed, sku=np.array([None], dtype=object)))


def test_rescoring_an_order_already_in_the_history_does_not_see_itself(orders):
    o4 = OrderHistory(orders).features(orders[orders["order_id"] == "o4"])[0].iloc[0]
    assert o4["customer_prior_orders"] == 2 and o4["sku_prior_orders_min"] == 0


def test_customer_unknown_to_the_history_has_zero_prior_orders(orders):
    new = pd.DataFrame([("n1", "2024-02-01", "new-customer", "zz", 1, 1.0, "UK")], columns=COLUMNS)
    n1 = OrderHistory(orders).features(new)[0].iloc[0]
    assert n1["customer_prior_orders"] == 0 and np.isnan(n1["customer_prior_value_median"])
    assert n1["sku_prior_orders_min"] == 0


# --- leakage -----------------------------------------------------------------------------------------------


def test_changing_or_adding_orders_after_the_cutoff_changes_no_feature_at_or_before_it():
    orders, labels = _random_orders(seed=3)
    cutoff = orders["created_at"].median()
    changed = orders.copy()
    after = changed["created_at"] > cutoff
    changed.loc[after, "quantity"] *= 7
    changed.loc[after, "unit_price"] += 100.0
    changed.loc[after, "sku"] = "a"
    changed.loc[after, "customer_id"] = "c1"
    extra = _orders(
        [
            ("z1", cutoff + pd.Timedelta("1ns"), "c1", "a", 99, 99.0, "UK"),
            ("z2", cutoff + pd.Timedelta("1D"), "c2", "b", 1, 1.0, "UK"),
        ]
    )
    changed = pd.concat([changed, extra], ignore_index=True)
    more_labels = pd.concat([labels, _labels([("z1", 1, cutoff - pd.Timedelta("1D"))])], ignore_index=True)
    before = order_features(orders, labels)[0]
    now = order_features(changed, more_labels)[0]
    keep = lambda df: df[df["created_at"] <= cutoff].reset_index(drop=True)  # noqa: E731
    assert len(keep(before)) > 20
    pd.testing.assert_frame_equal(keep(before), keep(now))


def test_changing_or_adding_labels_known_at_or_after_the_cutoff_changes_no_feature_at_or_before_it():
    orders, labels = _random_orders(seed=4)
    cutoff = orders["created_at"].median()
    changed = labels.copy()
    late = changed["labeled_at"] >= cutoff
    changed.loc[late, "label"] = 1 - changed.loc[late, "label"]
    unlabeled = orders.loc[~orders["order_id"].isin(labels["order_id"]), "order_id"].unique()
    added = pd.DataFrame({"order_id": unlabeled, "label": 1, "labeled_at": cutoff})
    changed = validate(pd.concat([changed, added], ignore_index=True), "labels")[0]
    before = order_features(orders, labels)[0]
    now = order_features(orders, changed)[0]
    keep = lambda df: df[df["created_at"] <= cutoff].reset_index(drop=True)  # noqa: E731
    assert late.sum() > 5 and len(added) > 5
    pd.testing.assert_frame_equal(keep(before), keep(now))
    assert not keep(before).equals(before)  # the later orders did change, so the test could have failed


def test_features_of_an_order_ignore_labels_known_at_or_after_its_own_created_at():
    orders, labels = _random_orders(seed=5)
    features = order_features(orders, labels)[0].set_index("order_id")
    for order_id in ["o015", "o035", "o055"]:
        t = features.loc[order_id, "created_at"]
        known = labels[labels["labeled_at"] < t]
        shuffled = pd.concat([known, labels[labels["labeled_at"] >= t].assign(label=1)], ignore_index=True)
        again = order_features(orders, shuffled)[0].set_index("order_id").loc[order_id]
        only_known = order_features(orders, known)[0].set_index("order_id").loc[order_id]
        pd.testing.assert_series_equal(again, features.loc[order_id])
        pd.testing.assert_series_equal(only_known, features.loc[order_id])


# --- names, families, errors --------------------------------------------------------------------------------


def test_feature_names_list_every_feature_column_in_order(orders):
    features = order_features(orders)[0]
    names = order_feature_names(features)
    assert names == features.columns[3:].tolist()
    assert names[0] == "order_n_lines" and names[-2:] == ["order_country", "order_country_exception_rate"]
    assert "order_region" in order_feature_names()


def test_feature_family_maps_each_feature_name():
    assert order_feature_family("order_value") == "order"
    assert order_feature_family("customer_prior_exception_rate") == "customer"
    assert order_feature_family("sku_prior_exception_rate_max") == "sku"
    assert order_feature_family("time_is_weekend") == "time"
    assert order_feature_family("order_country") == "categorical"
    assert {order_feature_family(n) for n in order_feature_names()} == set(ORDER_FEATURE_FAMILIES)


def test_unknown_feature_name_is_refused_with_the_known_names():
    with pytest.raises(ValueError, match=r"'y_lag_7' is not an order feature.*order_n_lines"):
        order_feature_family("y_lag_7")


def test_missing_column_is_named_with_the_fix(orders):
    with pytest.raises(DataValidationError, match=r"orders\.sku: required column is missing.*add a column"):
        OrderHistory(orders.drop(columns="sku"))


def test_unparseable_created_at_in_a_request_is_refused_with_the_row():
    history = OrderHistory(_orders([("o1", "2024-01-01", "c1", "a", 1, 1.0, "UK")]))
    raw = pd.DataFrame([("n1", "yesterday-ish", "c1", "a", 1, 1.0, "UK")], columns=COLUMNS)
    with pytest.raises(
        DataValidationError, match=r"new_orders\.created_at: missing or unparseable.*yesterday-ish"
    ):
        history.features(raw)


def test_label_other_than_zero_or_one_is_refused(orders):
    bad = pd.DataFrame({"order_id": ["o1"], "label": [2], "labeled_at": ["2024-01-02"]})
    with pytest.raises(DataValidationError, match=r"labels\.label: label is not 0 or 1"):
        OrderHistory(orders, bad)


def test_two_labels_for_one_order_are_refused(orders):
    bad = pd.DataFrame(
        {"order_id": ["o1", "o1"], "label": [0, 1], "labeled_at": ["2024-01-02", "2024-01-03"]}
    )
    with pytest.raises(DataValidationError, match=r"several labels for one order_id \(2 rows"):
        OrderHistory(orders, bad)


def test_non_positive_prior_strength_is_refused(orders):
    with pytest.raises(ValueError, match=r"prior_strength must be a finite number > 0.*Got 0 instead"):
        OrderHistory(orders, prior_strength=0)


@pytest.mark.slow
def test_online_retail_single_orders_match_the_batch(shared_data):
    raw = pd.read_parquet(shared_data / "online_retail" / "online_retail_2010_2011.parquet").head(60_000)
    raw = raw.rename(
        columns={
            "InvoiceNo": "order_id",
            "InvoiceDate": "created_at",
            "CustomerID": "customer_id",
            "StockCode": "sku",
            "Quantity": "quantity",
            "UnitPrice": "unit_price",
            "Country": "country",
        }
    )
    keep = ~raw["order_id"].astype(str).str.startswith("C") & (raw["quantity"] > 0) & (raw["unit_price"] > 0)
    orders = validate(raw[keep].drop(columns="Description"), "orders", on_bad_rows="drop")[0]
    batch = order_features(orders)[0].set_index("order_id")
    history = OrderHistory(orders)
    for order_id in batch.index[-20:]:
        single = history.features(orders[orders["order_id"] == order_id])[0].set_index("order_id")
        pd.testing.assert_frame_equal(single, batch.loc[[order_id]], check_exact=True)


def test_customer_history_exported_as_whole_floats_is_found_for_a_request_with_integer_text(tmp_path):
    from features.io import load_table

    export = pd.DataFrame(
        {
            "order_id": [536365, 536366, 536367],
            "created_at": ["2011-01-03 08:00", "2011-01-04 09:00", "2011-01-05 10:00"],
            "customer_id": [14911.0, np.nan, 14911.0],  # a guest order turns the column into floats
            "sku": ["85123A", "71053", "84406B"],
            "quantity": [6, 2, 8],
            "unit_price": [2.55, 3.39, 2.75],
        }
    )
    export.to_csv(tmp_path / "orders.csv", index=False)
    assert "14911.0" in (tmp_path / "orders.csv").read_text()
    history, report = load_table(tmp_path / "orders.csv", "orders")
    assert report.repairs["ids_whole_float_repaired"] == 2
    request = {  # one order as the service receives it
        "order_id": np.array(["581475"], dtype=object),
        "created_at": np.array(["2011-02-01T10:00"], dtype="datetime64[ns]"),
        "customer_id": np.array(["14911"], dtype=object),
        "sku": np.array(["85123A"], dtype=object),
        "quantity": np.array([12.0]),
        "unit_price": np.array([2.55]),
    }
    features, _ = OrderHistory(history).feature_columns(request)
    assert features["customer_prior_orders"].tolist() == [2]
    assert features["customer_prior_value_median"].tolist() == pytest.approx([(6 * 2.55 + 8 * 2.75) / 2])
