"""The outcome side of the order history: labels known so far, indexed for point-in-time exception rates.

``OutcomeIndex`` is what ``features.order_features.OrderHistory`` consults for everything that depends on
labels: the share of exceptions among all labels known before ``t`` (the prior every rate shrinks towards),
and per customer, SKU, customer x SKU pair and category value (country, channel, region) the labels known
before ``t``, as counts and as sums decayed with a half-life of ``DECAY_HALF_LIFE_DAYS`` (a label 90 days old
counts half). A label counts from ``max(created_at of its order, labeled_at)`` and strictly before the query
time, like every other history feature (``features.asof``). Labels of orders absent from the history are
ignored and counted in ``report``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from features.asof import AsOfIndex, DecayedSums, prefix_sum
from features.order_lines import OrderTable, prepare_labels

__all__ = ["DECAY_HALF_LIFE_DAYS", "RECENT_DAYS", "NS_DAY", "OutcomeIndex"]

DECAY_HALF_LIFE_DAYS = 90
"""Half-life of the time-decayed exception rates (``*_halflife_90d``): a label 90 days old counts half."""
RECENT_DAYS = 30
"""Window of the ``*_last_30d`` features."""
NS_DAY = 24 * 3_600 * 10**9


class OutcomeIndex:
    """Labels of the orders of ``h`` (an ``OrderTable`` whose orders are ``order_ids``), indexed once.

    ``customer_of_order`` / ``cs_of_pair`` give the customer code of each order and the customer x SKU code
    of each (order, SKU) pair (-1: guest); ``category_codes`` the code of each order's category value per
    column (-1: missing), with ``n_categories`` values per column.
    """

    def __init__(
        self,
        h: OrderTable,
        order_ids: pd.Index,
        labels: pd.DataFrame | None,
        *,
        customer_of_order: np.ndarray,
        n_customers: int,
        cs_of_pair: np.ndarray,
        n_cs: int,
        category_codes: Mapping[str, np.ndarray],
        n_categories: Mapping[str, int],
    ):
        ids, y, labeled_at = prepare_labels(labels)
        pos = order_ids.get_indexer(ids)
        unknown = pos < 0
        pos, y, labeled_at = pos[~unknown], y[~unknown], labeled_at[~unknown]
        known_from = np.maximum(h.t[pos], labeled_at)
        self.report = {
            "labels_in": len(ids),
            "labels_used": len(pos),
            "labels_unknown_order": int(unknown.sum()),
            "labels_dated_before_order": int((labeled_at < h.t[pos]).sum()),
        }
        half_life = DECAY_HALF_LIFE_DAYS * NS_DAY
        self._all = AsOfIndex(np.zeros(len(pos), dtype="int64"), known_from, 1)
        self._all_ex = prefix_sum(y[self._all.order])

        cust = customer_of_order[pos]
        mine = cust >= 0
        self._cust = _Counts(cust[mine], known_from[mine], y[mine], n_customers, half_life)
        positive = mine & (y == 1)  # the customer's exceptions alone: when the last one became known
        self._cust_ex = AsOfIndex(cust[positive], known_from[positive], n_customers)
        self._cust_ex_t = known_from[positive][self._cust_ex.order]
        self._cat = {}
        for col, codes in category_codes.items():
            code = codes[pos]
            index = AsOfIndex(code[code >= 0], known_from[code >= 0], n_categories[col])
            self._cat[col] = (index, prefix_sum(y[code >= 0][index.order]))

        label_of_order = np.full(len(h.t), -1, dtype="int64")
        label_of_order[pos] = y
        known_from_of_order = np.zeros(len(h.t), dtype="int64")
        known_from_of_order[pos] = known_from
        labeled = label_of_order[h.pair_order] >= 0
        pair_order = h.pair_order[labeled]
        self._sku = _Counts(
            h.pair_sku[labeled],
            known_from_of_order[pair_order],
            label_of_order[pair_order],
            len(h.skus),
            half_life,
        )
        labeled_cs = labeled & (cs_of_pair >= 0)
        pair_order = h.pair_order[labeled_cs]
        self._cs = AsOfIndex(cs_of_pair[labeled_cs], known_from_of_order[pair_order], n_cs)
        self._cs_ex = prefix_sum(label_of_order[pair_order][self._cs.order])

    def lookup(
        self,
        t: np.ndarray,
        cust: np.ndarray,
        cat_codes: Mapping[str, np.ndarray],
        pair_t: np.ndarray,
        sku: np.ndarray,
        cs: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """As-of label statistics of query orders (times ``t``, customer codes, category codes) and of their
        (order, SKU) pairs (times, SKU codes, customer x SKU codes); -1 codes are unknown."""
        lo, hi = self._all.before(np.zeros(len(t), dtype="int64"), t)
        raw = {"all_lab_n": hi - lo, "all_lab_ex": self._all_ex[hi] - self._all_ex[lo]}
        raw["cust_lab_n"], raw["cust_lab_ex"], raw["cust_lab_dn"], raw["cust_lab_dex"] = self._cust.at(
            cust, t
        )
        lo, hi = self._cust_ex.before(
            np.concatenate([cust, cust]), np.concatenate([t, t - RECENT_DAYS * NS_DAY])
        )  # one look-up
        lo, hi, hi_recent = lo[: len(t)], hi[: len(t)], hi[len(t) :]
        raw["cust_last_ex"] = np.full(len(t), np.iinfo("int64").min)
        has = hi > lo
        raw["cust_last_ex"][has] = self._cust_ex_t[hi[has] - 1]
        raw["cust_ex_recent"] = hi - hi_recent
        for col, codes in cat_codes.items():
            index, ex = self._cat[col]
            lo, hi = index.before(codes, t)
            raw[f"cat_lab_n_{col}"], raw[f"cat_lab_ex_{col}"] = hi - lo, ex[hi] - ex[lo]
        raw["pair_lab_n"], raw["pair_lab_ex"], raw["pair_lab_dn"], raw["pair_lab_dex"] = self._sku.at(
            sku, pair_t
        )
        lo, hi = self._cs.before(cs, pair_t)
        raw["pair_cust_lab_ex"] = self._cs_ex[hi] - self._cs_ex[lo]
        return raw


class _Counts:
    """Labels per group: count and exceptions known before ``t``, plain and time-decayed."""

    def __init__(self, groups: np.ndarray, times: np.ndarray, y: np.ndarray, n_groups: int, half_life: int):
        self.index = AsOfIndex(groups, times, n_groups)
        self.ex = prefix_sum(y[self.index.order])
        both = np.column_stack([np.ones(len(y)), y])  # labels and exceptions, decayed in one look-up
        self.decayed = DecayedSums(self.index, groups, times, both, half_life)

    def at(self, groups: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        lo, hi = self.index.before(groups, t)
        decayed = self.decayed.sums(lo, hi, t)
        return hi - lo, self.ex[hi] - self.ex[lo], decayed[:, 0], decayed[:, 1]
