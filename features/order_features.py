"""Point-in-time features of orders, for the classifier of P(order becomes an exception).

One row per order (``order_id``, ``created_at``, ``customer_id``, then the features), in five families whose
names the classifier's explanations render as reasons:

=============  ======================================================================================
family         features
=============  ======================================================================================
order          what is in the order: lines, distinct SKUs, units, value, unit prices
customer       the customer's orders and known labels before this order; ``customer_is_guest``; its
               exception rate decayed with a 90-day half-life; orders and exceptions of the last 30 days and
               days since the last exception; the basket against the customer's usual ones (distinct SKUs
               vs its mean, share of the SKUs it bought before, SKUs on which it had an exception before)
sku            how often the order's SKUs were ordered before, their smoothed exception rate (plain and
               decayed with a 90-day half-life; max and mean over the order's SKUs; mean weighted by the
               value of each SKU's lines), and the units of each SKU against its usual units per order
               (``log(1 + units)`` minus the mean of it over the SKU's earlier orders: a bulk order of an
               item usually bought by ones is ``log(1 + n) - log(2)``; max and mean over the order's SKUs)
time           hour, day of week, weekend, month of ``created_at`` (as given; UTC if the input had offsets)
categorical    ``order_country`` / ``order_channel`` / ``order_region`` when the input has those columns, and
               the smoothed exception rate of the order's value of each (``order_country_exception_rate``)
=============  ======================================================================================

Everything that depends on labels comes from ``features.order_outcomes.OutcomeIndex`` (the label side of the
history); ``tests/features/test_order_features_outcomes.py`` checks those features on a hand-built history.

Point-in-time rules (``tests/features/test_order_features.py`` checks each):

* The history features of an order created at ``t`` use only orders created strictly before ``t``: never the
  order itself, never later orders. Ties: orders created at the same instant do not see each other, so
  several orders of one customer with the same ``created_at`` all have the same history.
* A label is usable at ``t`` only if it was known strictly before ``t``: ``labeled_at < t``. A label is also
  never used before its own order existed: it counts from ``max(created_at of its order, labeled_at)``
  (labels dated before their order are counted in the report). Labels of orders absent from the orders table
  are ignored and counted.
* Exception rates are smoothed towards the share of exceptions among all labels known before ``t``:
  ``(exceptions + k * p_t) / (labeled + k)``, ``k = prior_strength``. A customer with no known label gets NaN;
  a SKU with none gets ``p_t``; before the first label is known anywhere every rate is NaN.
* Guests (``customer_id`` missing) get ``customer_is_guest = 1`` and NaN for every customer history feature:
  their orders cannot be attributed to anyone. They still count for SKU popularity and SKU / global rates.
* A SKU appearing on several lines of one order counts once for that order (SKU features are over the
  order's distinct SKUs).

Training and serving use the same code: ``order_features(orders, labels)`` builds an ``OrderHistory`` of
the table and scores the table's own orders through it. A service builds the ``OrderHistory`` once and calls
``history.feature_columns(new_orders)`` per request: a hash look-up and a few binary searches per order,
returned as numpy columns (about 0.5 ms for one order against the sample's 41k lines; ``features()`` puts
the same columns in a DataFrame, which adds about as much again; building the history takes about a second
per million lines). New orders scored together also see one another, exactly as if they had been part of the
history table. Categories of ``order_<column>`` are those of the history: a model must be served with the
categories it was trained with (build the serving history from the training orders plus newer ones, or
re-code the column with the model's categories).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.asof import AsOfIndex, prefix_sum, sorted_unique
from features.columns import Columns, category_positions
from features.order_lines import OrderTable, order_table, prepare_order_lines
from features.order_outcomes import NS_DAY, RECENT_DAYS, OutcomeIndex

__all__ = [
    "ORDER_FEATURE_FAMILIES",
    "CATEGORICAL_COLUMNS",
    "OrderFeatureReport",
    "OrderHistory",
    "order_features",
    "order_feature_names",
    "order_feature_family",
]

ORDER_FEATURE_FAMILIES: dict[str, tuple[str, ...]] = {
    "order": (
        "order_n_lines",
        "order_n_distinct_skus",
        "order_total_quantity",
        "order_max_line_quantity",
        "order_value",
        "order_mean_unit_price",
        "order_max_unit_price",
    ),
    "customer": (
        "customer_is_guest",
        "customer_prior_orders",
        "customer_prior_value_median",
        "customer_value_ratio",
        "customer_days_since_first_order",
        "customer_days_since_last_order",
        "customer_prior_labeled",
        "customer_prior_exceptions",
        "customer_prior_exception_rate",
        "customer_exception_rate_halflife_90d",
        "customer_orders_last_30d",
        "customer_exceptions_last_30d",
        "customer_days_since_last_exception",
        "customer_sku_count_ratio",
        "customer_sku_repeat_share",
        "customer_sku_prior_exceptions",
    ),
    "sku": (
        "sku_prior_orders_min",
        "sku_prior_orders_mean",
        "sku_prior_exception_rate_max",
        "sku_prior_exception_rate_mean",
        "sku_exception_rate_halflife_90d_max",
        "sku_exception_rate_halflife_90d_mean",
        "sku_exception_rate_value_weighted",
        "sku_quantity_vs_usual_max",
        "sku_quantity_vs_usual_mean",
    ),
    "time": ("time_hour", "time_dayofweek", "time_is_weekend", "time_month"),
    "categorical": (
        "order_country",
        "order_channel",
        "order_region",
        "order_country_exception_rate",
        "order_channel_exception_rate",
        "order_region_exception_rate",
    ),
}
"""Feature names by family, in output column order."""

CATEGORICAL_COLUMNS = ("country", "channel", "region")
"""Optional order columns that become ``order_<column>`` pandas categoricals when present."""

_FAMILY_OF = {name: fam for fam, names in ORDER_FEATURE_FAMILIES.items() for name in names}
_NS_HOUR = 3_600 * 10**9
_NS_DAY = NS_DAY
_LOG_UNIT_SCALE = 1e6
"""``log(1 + units)`` is summed as an integer number of millionths: exact prefix sums, so a request scored
against a history gets bit for bit the usual units of the batch computation (float prefix sums would differ
in the last digits with the offset of the SKU's events in the history)."""
_log = logging.getLogger(__name__)


def order_feature_names(features: pd.DataFrame | None = None) -> list[str]:
    """The model's feature columns in order; categoricals only if present in ``features`` (all when None)."""
    names = [n for fam, ns in ORDER_FEATURE_FAMILIES.items() if fam != "categorical" for n in ns]
    cats = ORDER_FEATURE_FAMILIES["categorical"]
    return names + [c for c in cats if features is None or c in features.columns]


def order_feature_family(name: str) -> str:
    """``"order"``, ``"customer"``, ``"sku"``, ``"time"`` or ``"categorical"`` for a feature name."""
    try:
        return _FAMILY_OF[name]
    except KeyError:
        raise ValueError(
            f"{name!r} is not an order feature. Expected one of order_feature_names(): "
            f"{order_feature_names()}."
        ) from None


@dataclass
class OrderFeatureReport:
    """Counts behind one feature computation: orders scored, guests, labels used and ignored."""

    orders: int
    lines: int
    guest_orders: int = 0
    history_orders: int = 0
    labels_in: int = 0
    labels_used: int = 0
    labels_unknown_order: int = 0
    labels_dated_before_order: int = 0
    unknown_category_values: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        unknown = ", ".join(f"{c}={n}" for c, n in self.unknown_category_values.items()) or "none"
        return (
            f"order features: {self.orders} orders ({self.lines} lines, {self.guest_orders} guest orders) "
            f"against a history of {self.history_orders} orders; labels: {self.labels_in} in, "
            f"{self.labels_used} used, {self.labels_unknown_order} ignored because their order_id is not in "
            f"the orders table, {self.labels_dated_before_order} dated before their order's created_at "
            f"(used from created_at on); category values unseen in the history, set to missing: {unknown}"
        )


def order_features(
    orders: pd.DataFrame, labels: pd.DataFrame | None = None, *, prior_strength: float = 10.0
) -> tuple[pd.DataFrame, OrderFeatureReport]:
    """Features of every order of ``orders`` as of its own ``created_at``, in one vectorised pass.

    ``orders`` are order lines (validated: ``features.validation.validate(df, "orders")``); ``labels`` the
    optional labels table (``order_id``, ``label``, ``labeled_at``). Returns one row per order sorted by
    (``created_at``, ``order_id``) and an ``OrderFeatureReport``. Same code as ``OrderHistory.features``.
    """
    history = OrderHistory(orders, labels, prior_strength=prior_strength)
    columns, codes, report = history._score(
        history._orders, lines=None, fresh=np.zeros(history.n_orders, dtype=bool)
    )
    return _frame(columns, codes, history.categories), report


class OrderHistory:
    """Orders and labels known so far, indexed so any order's point-in-time features cost a few look-ups.

    Build it once from the stored order lines (and labels); ``features(new_orders)`` then scores incoming
    orders against it as of their own ``created_at``. Orders already in the history can be re-scored: they
    never see themselves. The history is immutable: rebuild it to take in new orders and labels (about a
    second per million lines).
    """

    def __init__(
        self, orders: pd.DataFrame, labels: pd.DataFrame | None = None, *, prior_strength: float = 10.0
    ):
        if (
            isinstance(prior_strength, bool)
            or not isinstance(prior_strength, int | float)
            or not (np.isfinite(prior_strength) and prior_strength > 0)
        ):
            raise ValueError(
                f"prior_strength must be a finite number > 0 (the weight, in labels, of the global "
                f"exception rate when smoothing rates). Got {prior_strength!r} instead."
            )
        self.prior_strength = float(prior_strength)
        self._build(prepare_order_lines(orders, "orders", CATEGORICAL_COLUMNS), labels)

    @property
    def n_orders(self) -> int:
        return len(self._order_ids)

    def __repr__(self) -> str:
        return (
            f"OrderHistory({self.n_orders} orders, {len(self._customers)} customers, {len(self._skus)} SKUs, "
            f"{self._report_labels['labels_used']} labels, prior_strength={self.prior_strength})"
        )

    def features(self, new_orders: pd.DataFrame | Columns) -> tuple[pd.DataFrame, OrderFeatureReport]:
        """Features of the orders in ``new_orders`` (lines), each as of its own ``created_at``.

        The orders see the history and each other (only what was created strictly before them); labels come
        from the history. Returns one row per order sorted by (``created_at``, ``order_id``) and a report.
        """
        columns, codes, report = self._features(new_orders)
        return _frame(columns, codes, self.categories), report

    def feature_columns(
        self, new_orders: pd.DataFrame | Columns
    ) -> tuple[dict[str, np.ndarray], OrderFeatureReport]:
        """``features`` as a dict of column arrays (``features.columns``): the same values without building a
        DataFrame, which costs more than the features of a few orders. What the service scores per request.

        ``new_orders`` may be a dict of line arrays too (see ``features.order_lines.prepare_order_lines``).
        Category columns hold the value, or None where the history has not seen it (the DataFrame's NaN).
        """
        columns, _, report = self._features(new_orders)
        return columns, report

    def _features(
        self, new_orders: pd.DataFrame | Columns
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], OrderFeatureReport]:
        lines = prepare_order_lines(new_orders, "new_orders", self.categorical_columns)
        q = order_table(lines, self.categorical_columns)
        fresh = _positions(self._order_ids, q.order_id) < 0
        return self._score(q, lines=lines if fresh.sum() > 1 else None, fresh=fresh)

    # -----------------------------------------------------------------------------------------------------

    def _build(
        self, lines: dict[str, np.ndarray], labels: pd.DataFrame | None, *, medians: bool = True
    ) -> None:
        """Index ``lines`` and ``labels``; ``medians=False`` skips the expanding medians of customer order values
        (NaN instead: a request batch's own index, whose medians ``_with_new_orders`` takes over the union)."""
        self.categorical_columns = tuple(c for c in CATEGORICAL_COLUMNS if c in lines)
        h = self._orders = order_table(lines, self.categorical_columns)
        self._order_ids = pd.Index(h.order_id, dtype=object)
        self.categories = {c: np.sort(pd.unique(v[~pd.isna(v)]).astype(object)) for c, v in h.cats.items()}
        self._category_codes = {c: {v: i for i, v in enumerate(cats)} for c, cats in self.categories.items()}

        known = ~h.guest
        cust_codes, customers = pd.factorize(h.customer[known])
        self._customers = pd.Index(customers, dtype=object)
        self._customer_of_order = np.full(len(h.t), -1, dtype="int64")
        self._customer_of_order[known] = cust_codes
        self._cust = AsOfIndex(cust_codes, h.t[known], len(customers))
        self._cust_t = h.t[known][self._cust.order]
        self._cust_value = h.comp["order_value"][known][self._cust.order]
        self._cust_median = (
            _expanding_median(self._cust_value, cust_codes[self._cust.order])
            if medians
            else np.full(len(self._cust_value), np.nan)
        )

        self._cust_skus = prefix_sum(h.comp["order_n_distinct_skus"][known][self._cust.order])
        self._skus = pd.Index(h.skus, dtype=object)
        self._sku_of_pair = h.pair_sku
        self._sku = AsOfIndex(self._sku_of_pair, h.t[h.pair_order], len(h.skus))
        self._sku_log_units = prefix_sum(_micro_log_units(h.pair_quantity)[self._sku.order])
        pair_cust = self._customer_of_order[
            h.pair_order
        ]  # customer x SKU: has this customer bought it before
        self._cs_of_pair = np.full(len(pair_cust), -1, dtype="int64")
        of_customer = pair_cust >= 0
        keys = pair_cust[of_customer] * len(h.skus) + h.pair_sku[of_customer]
        self._cs_keys = sorted_unique(keys)  # sorted: a request's pairs are found by binary search
        self._cs_of_pair[of_customer] = np.searchsorted(self._cs_keys, keys)
        self._cs = AsOfIndex(
            self._cs_of_pair[of_customer], h.t[h.pair_order][of_customer], len(self._cs_keys)
        )
        self._outcomes = OutcomeIndex(
            h,
            self._order_ids,
            labels,
            customer_of_order=self._customer_of_order,
            n_customers=len(self._customers),
            cs_of_pair=self._cs_of_pair,
            n_cs=len(self._cs_keys),
            category_codes={c: self._codes(c, v) for c, v in h.cats.items()},
            n_categories={c: len(v) for c, v in self.categories.items()},
        )
        self._report_labels = self._outcomes.report
        for index in (
            self._order_ids,
            self._customers,
            self._skus,
        ):  # build the hash tables now, not per request
            index.get_indexer(index[:1])

    def _lookup(self, q: OrderTable) -> dict[str, np.ndarray]:
        """Raw as-of statistics of the query orders (and their order x SKU pairs) against this history."""
        cust = _positions(self._customers, q.customer)
        cust[q.guest] = -1
        n = len(q.t)
        lo, hi = self._cust.before(
            np.concatenate([cust, cust]), np.concatenate([q.t, q.t - RECENT_DAYS * _NS_DAY])
        )  # one look-up
        lo, hi, hi_recent = lo[:n], hi[:n], hi[n:]
        has = hi > lo
        raw = {
            "cust_lo": lo,
            "cust_hi": hi,
            "cust_n": hi - lo,
            "cust_first": _take(self._cust_t, lo, has, np.iinfo("int64").max),
            "cust_last": _take(self._cust_t, hi - 1, has, np.iinfo("int64").min),
            "cust_median": _take(self._cust_median, hi - 1, has, np.nan),
        }
        raw["cust_skus"] = self._cust_skus[hi] - self._cust_skus[lo]
        raw["cust_n_recent"] = hi - hi_recent
        sku = _positions(self._skus, q.skus)[q.pair_sku]
        pair_t = q.t[q.pair_order]
        lo, hi = self._sku.before(sku, pair_t)
        raw["pair_orders"] = hi - lo
        raw["pair_log_units"] = self._sku_log_units[hi] - self._sku_log_units[lo]
        pair_cust = cust[q.pair_order]
        key = pair_cust * len(self._skus) + sku
        at = np.minimum(np.searchsorted(self._cs_keys, key), max(len(self._cs_keys) - 1, 0))
        found = (pair_cust >= 0) & (sku >= 0) & (self._cs_keys[at] == key) if len(self._cs_keys) else False
        cs = np.where(found, at, -1)
        lo, hi = self._cs.before(cs, pair_t)
        raw["pair_cust_orders"] = hi - lo
        cat_codes = {c: self._codes(c, q.cats[c]) for c in self.categorical_columns if c in q.cats}
        raw.update(self._outcomes.lookup(q.t, cust, cat_codes, pair_t, sku, cs))
        return raw

    def _codes(self, column: str, values: np.ndarray) -> np.ndarray:
        return category_positions(values, self.categories[column], self._category_codes[column])

    def _score(
        self, q: OrderTable, lines: dict[str, np.ndarray] | None, fresh: np.ndarray
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], OrderFeatureReport]:
        """Feature columns, the category codes of the categorical ones, and the report."""
        raw = self._lookup(q)
        if lines is not None:  # several new orders: they also see each other
            raw = self._with_new_orders(q, raw, lines, fresh)
        columns = _assemble(q, raw, self.prior_strength)
        codes: dict[str, np.ndarray] = {}
        unknown: dict[str, int] = {}
        for col, values in q.cats.items():
            codes[col] = self._codes(col, values)
            seen = codes[col] >= 0
            n_unknown = int((~pd.isna(values) & ~seen).sum())
            if n_unknown:
                unknown[col] = n_unknown
            columns[f"order_{col}"] = np.where(seen, values, None)
        for col in q.cats:
            n, ex = raw[f"cat_lab_n_{col}"], raw[f"cat_lab_ex_{col}"]
            with np.errstate(divide="ignore", invalid="ignore"):
                rate = (ex + self.prior_strength * columns["_p"]) / (n + self.prior_strength)
            columns[f"order_{col}_exception_rate"] = np.where(codes[col] >= 0, rate, np.nan)
        del columns["_p"]
        report = OrderFeatureReport(
            orders=len(q.t),
            lines=q.n_lines,
            guest_orders=int(q.guest.sum()),
            history_orders=self.n_orders,
            unknown_category_values=unknown,
            **self._report_labels,
        )
        _log.info("%s", report)
        return columns, codes, report

    def _with_new_orders(
        self, q: OrderTable, raw: dict[str, np.ndarray], lines: dict[str, np.ndarray], fresh: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Add what the new orders of the batch (not yet in the history) contribute to one another."""
        is_fresh_line = pd.Index(q.order_id[fresh], dtype=object).get_indexer(lines["order_id"]) >= 0
        batch = OrderHistory.__new__(OrderHistory)
        batch.prior_strength = self.prior_strength
        batch._build({k: v[is_fresh_line] for k, v in lines.items()}, None, medians=False)
        extra = batch._lookup(q)
        out = dict(raw)
        out["cust_n"] = raw["cust_n"] + extra["cust_n"]
        out["cust_first"] = np.minimum(raw["cust_first"], extra["cust_first"])
        out["cust_last"] = np.maximum(raw["cust_last"], extra["cust_last"])
        for key in ("cust_skus", "cust_n_recent", "pair_orders", "pair_log_units", "pair_cust_orders"):
            out[key] = raw[key] + extra[key]
        mixed = np.flatnonzero(extra["cust_n"] > 0)
        if len(mixed):  # median over the union of the history's and the batch's prior order values
            idx_h, grp_h = _ranges(raw["cust_lo"][mixed], raw["cust_hi"][mixed])
            idx_b, grp_b = _ranges(extra["cust_lo"][mixed], extra["cust_hi"][mixed])
            values = np.concatenate([self._cust_value[idx_h], batch._cust_value[idx_b]])
            groups = np.concatenate([grp_h, grp_b])
            median = pd.Series(values).groupby(groups).median()
            out["cust_median"] = raw["cust_median"].copy()
            out["cust_median"][mixed[median.index.to_numpy()]] = median.to_numpy()
        return out


# ---------------------------------------------------------------------------------------------------------


def _assemble(q: OrderTable, raw: dict[str, np.ndarray], k: float) -> dict[str, np.ndarray]:
    """The feature columns (without the categorical ones) from the as-of statistics ``raw``."""
    n_orders = len(q.t)
    nan = np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        has = raw["cust_n"] > 0
        p = np.where(raw["all_lab_n"] > 0, raw["all_lab_ex"] / raw["all_lab_n"], nan)
        median = np.where(has, raw["cust_median"], nan)
        value = q.comp["order_value"]
        cust_rate = np.where(
            raw["cust_lab_n"] > 0, (raw["cust_lab_ex"] + k * p) / (raw["cust_lab_n"] + k), nan
        )
        pair_p = p[q.pair_order]
        pair_rate = (raw["pair_lab_ex"] + k * pair_p) / (raw["pair_lab_n"] + k)
        pair_decayed = (raw["pair_lab_dex"] + k * pair_p) / (raw["pair_lab_dn"] + k)
        cust_decayed = np.where(
            raw["cust_lab_n"] > 0, (raw["cust_lab_dex"] + k * p) / (raw["cust_lab_dn"] + k), nan
        )
        pair_seen = np.bincount(q.pair_order, weights=raw["pair_cust_orders"] > 0, minlength=n_orders)
        pair_cust_ex = np.bincount(q.pair_order, weights=raw["pair_cust_lab_ex"] > 0, minlength=n_orders)
        usual_skus = raw["cust_skus"] / raw["cust_n"]
        n_skus = q.comp["order_n_distinct_skus"]
        pair_starts = np.searchsorted(q.pair_order, np.arange(n_orders))
        guest = q.guest
        sku_seen = raw["pair_orders"] > 0
        usual_units = raw["pair_log_units"] / _LOG_UNIT_SCALE / raw["pair_orders"]
        units_vs_usual = np.where(sku_seen, np.log1p(np.maximum(q.pair_quantity, 0.0)) - usual_units, nan)
        pair_value = np.maximum(q.pair_value, 0.0)
        order_pair_value = np.bincount(q.pair_order, weights=pair_value, minlength=n_orders)
        data: dict[str, np.ndarray] = {
            "order_id": q.order_id,
            "created_at": q.t.view("datetime64[ns]"),
            "customer_id": q.customer,
            **q.comp,
            "customer_is_guest": guest.astype("int8"),
            "customer_prior_orders": np.where(guest, nan, raw["cust_n"]),
            "customer_prior_value_median": median,
            "customer_value_ratio": np.where(median > 0, value / median, nan),
            "customer_days_since_first_order": np.where(has, (q.t - raw["cust_first"]) / _NS_DAY, nan),
            "customer_days_since_last_order": np.where(has, (q.t - raw["cust_last"]) / _NS_DAY, nan),
            "customer_prior_labeled": np.where(guest, nan, raw["cust_lab_n"]),
            "customer_prior_exceptions": np.where(guest, nan, raw["cust_lab_ex"]),
            "customer_prior_exception_rate": cust_rate,
            "customer_exception_rate_halflife_90d": cust_decayed,
            "customer_orders_last_30d": np.where(guest, nan, raw["cust_n_recent"]),
            "customer_exceptions_last_30d": np.where(guest, nan, raw["cust_ex_recent"]),
            "customer_days_since_last_exception": np.where(
                raw["cust_last_ex"] > np.iinfo("int64").min, (q.t - raw["cust_last_ex"]) / _NS_DAY, nan
            ),
            "customer_sku_count_ratio": np.where(has, n_skus / usual_skus, nan),
            "customer_sku_repeat_share": np.where(guest, nan, pair_seen / n_skus),
            "customer_sku_prior_exceptions": np.where(guest, nan, pair_cust_ex),
            "sku_prior_orders_min": np.minimum.reduceat(raw["pair_orders"], pair_starts).astype("float64"),
            "sku_prior_orders_mean": np.bincount(q.pair_order, weights=raw["pair_orders"], minlength=n_orders)
            / n_skus,
            "sku_prior_exception_rate_max": np.maximum.reduceat(pair_rate, pair_starts),
            "sku_prior_exception_rate_mean": np.bincount(q.pair_order, weights=pair_rate, minlength=n_orders)
            / n_skus,
            "sku_exception_rate_halflife_90d_max": np.maximum.reduceat(pair_decayed, pair_starts),
            "sku_exception_rate_halflife_90d_mean": np.bincount(
                q.pair_order, weights=pair_decayed, minlength=n_orders
            )
            / n_skus,
            "sku_exception_rate_value_weighted": np.where(
                order_pair_value > 0,
                np.bincount(q.pair_order, weights=pair_rate * pair_value, minlength=n_orders)
                / order_pair_value,
                nan,
            ),
            "sku_quantity_vs_usual_max": np.fmax.reduceat(units_vs_usual, pair_starts),
            "sku_quantity_vs_usual_mean": np.bincount(
                q.pair_order, weights=np.nan_to_num(units_vs_usual), minlength=n_orders
            )
            / np.bincount(q.pair_order, weights=sku_seen, minlength=n_orders),
            "_p": p,
        }
    day = q.t // _NS_DAY
    dow = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    data["time_hour"] = ((q.t // _NS_HOUR) % 24).astype("int8")
    data["time_dayofweek"] = dow.astype("int8")
    data["time_is_weekend"] = (dow >= 5).astype("int8")
    data["time_month"] = (q.t.view("datetime64[ns]").astype("datetime64[M]").astype("int64") % 12 + 1).astype(
        "int8"
    )
    return data


def _frame(
    columns: dict[str, np.ndarray], codes: dict[str, np.ndarray], categories: dict[str, np.ndarray]
) -> pd.DataFrame:
    """The feature DataFrame: ids as pandas strings, ``order_<column>`` as categoricals of the history's values."""
    data: dict[str, object] = dict(columns)
    data["order_id"] = pd.array(columns["order_id"], dtype="string")
    data["customer_id"] = pd.array(columns["customer_id"], dtype="string")
    for col, col_codes in codes.items():
        data[f"order_{col}"] = pd.Categorical.from_codes(
            col_codes, dtype=pd.CategoricalDtype(categories[col], ordered=False)
        )
    return pd.DataFrame(data)


def _positions(index: pd.Index, values: np.ndarray) -> np.ndarray:
    """``index.get_indexer(values)`` for a unique ``index`` (-1: absent). A few values (a request) are looked up
    one by one: ``get_indexer`` first builds an Index of the values, which costs more than the look-ups."""
    if len(values) > 16:
        return index.get_indexer(values)
    out = np.full(len(values), -1, dtype="int64")
    for i, value in enumerate(values):
        with contextlib.suppress(KeyError, TypeError):  # absent, or not hashable / comparable (<NA>)
            out[i] = index.get_loc(value)
    return out


def _micro_log_units(units: np.ndarray) -> np.ndarray:
    """``log(1 + units)`` in integer millionths (see ``_LOG_UNIT_SCALE``)."""
    return np.round(np.log1p(np.maximum(units, 0.0)) * _LOG_UNIT_SCALE).astype("int64")


def _take(values: np.ndarray, idx: np.ndarray, mask: np.ndarray, fill: float | int) -> np.ndarray:
    out = np.full(len(idx), fill, dtype=values.dtype if len(values) else np.result_type(fill))
    out[mask] = values[idx[mask]]
    return out


def _expanding_median(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Median of each group's values up to and including each row (rows sorted by group)."""
    if len(values) == 0:
        return np.array([], dtype="float64")
    med = pd.Series(values).groupby(groups, sort=False).expanding().median()
    return med.droplevel(0).sort_index().to_numpy("float64")


def _ranges(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated ``arange(lo[i], hi[i])`` and the ``i`` each element came from."""
    lengths = hi - lo
    group = np.repeat(np.arange(len(lo)), lengths)
    starts = np.cumsum(lengths) - lengths
    return np.arange(lengths.sum()) - starts[group] + lo[group], group
