"""Reason codes: the ONE place that turns (feature, value, contribution) into a sentence a person can act on.

``REASON_TEMPLATES`` maps every order feature (``features.order_features``) to a function of the feature's
value and the order's other feature values (some sentences need two: "order value 2,340 is 9x this
customer's median"). Each template handles a missing value explicitly, because a missing value means
something different per feature (no earlier order, guest checkout, no known outcome yet). Features without a
template (a new feature, a custom covariate) fall back to ``"<feature> is <value>"``, never to an error.

A reason is a dict ``{"feature", "value", "contribution", "text"}``; ``text`` ends with the contribution in
the model's raw units, e.g. ``"customer had exceptions on 5 of their 6 earlier orders with a known outcome
(+0.31)"`` (log-odds for the supervised classifier, see ``training.explain``). Serving and the score job both
call ``build_reasons``; nothing else formats reasons.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from features.columns import FeatureTable, column_values, has_column, n_rows
from training.explain import Contributions

__all__ = ["REASON_TEMPLATES", "Reason", "reason_text", "make_reason", "build_reasons", "format_contribution"]

Reason = dict[str, Any]
"""``{"feature": str, "value": float | int | str | None, "contribution": float, "text": str}``."""

Row = Mapping[str, Any]
Template = Callable[[Any, Row], str]

SKU_ID_KEY = "sku_prior_exception_rate_max_sku"
"""Optional key of a row: the id of the SKU with the highest exception rate, named in that reason if given."""

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    try:
        return bool(isinstance(value, float | np.floating) and math.isnan(value))
    except TypeError:
        return False


def _num(value: Any) -> str:
    """2340.0 -> "2,340"; 3.75 -> "3.75"; 0.333 -> "0.33"."""
    v = float(value)
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:,.2f}"


def _pct(rate: Any) -> str:
    v = 100.0 * float(rate)
    return f"{v:.0f}%" if v >= 1 or v == 0 else f"{v:.1f}%"


def _times(ratio: Any) -> str:
    v = float(ratio)
    return f"{v:.0f}x" if v >= 3 else f"{v:.1f}x"


def _count(n: Any, one: str, many: str) -> str:
    n = int(n)
    return f"{n:,} {one if n == 1 else many}"


def _days(days: Any) -> str:
    d = float(days)
    if d < 1:
        hours = d * 24
        return "less than an hour" if hours < 1 else _count(round(hours), "hour", "hours")
    return _count(round(d), "day", "days")


def _get(row: Row, key: str) -> Any:
    value = row.get(key) if row is not None else None
    return None if _missing(value) else value


# --------------------------------------------------------------------------------------------- templates
def _order_value(v: Any, row: Row) -> str:
    return "order value unknown" if _missing(v) else f"order value {_num(v)}"


def _value_ratio(v: Any, row: Row) -> str:
    if _missing(v):
        return "no earlier order value of this customer to compare with"
    value = _get(row, "order_value")
    head = f"order value {_num(value)}" if value is not None else "order value"
    return f"{head} is {_times(v)} this customer's median"


def _prior_orders(v: Any, row: Row) -> str:
    if _missing(v):
        return "guest checkout: no order history to go by"
    if int(v) == 0:
        return "first order from this customer"
    return f"customer placed {_count(v, 'order', 'orders')} before"


def _prior_value_median(v: Any, row: Row) -> str:
    if _missing(v):
        return "no earlier orders from this customer"
    return f"this customer's median earlier order value is {_num(v)}"


def _days_since_first(v: Any, row: Row) -> str:
    if _missing(v):
        return "first order from this customer"
    return f"customer's first order was {_days(v)} ago"


def _days_since_last(v: Any, row: Row) -> str:
    if _missing(v):
        return "first order from this customer"
    return f"customer's previous order was {_days(v)} ago"


def _prior_labeled(v: Any, row: Row) -> str:
    if _missing(v):
        return "guest checkout: no known outcome of earlier orders"
    if int(v) == 0:
        return "no known outcome of this customer's earlier orders yet"
    return f"{_count(v, 'earlier order', 'earlier orders')} of this customer with a known outcome"


def _prior_exceptions(v: Any, row: Row) -> str:
    if _missing(v):
        return "guest checkout: no known outcome of earlier orders"
    labeled = _get(row, "customer_prior_labeled")
    if labeled is None:
        return f"customer had {_count(v, 'exception', 'exceptions')} before"
    if int(labeled) == 0:
        return "no known outcome of this customer's earlier orders yet"
    return (
        f"customer had exceptions on {int(v):,} of their {int(labeled):,} earlier orders with a known outcome"
    )


def _exception_rate(v: Any, row: Row) -> str:
    if _missing(v):
        return "no known outcome of this customer's earlier orders yet"
    return f"customer's exception rate so far is {_pct(v)}"


def _guest(v: Any, row: Row) -> str:
    if _missing(v):
        return "unknown whether this is a guest checkout"
    return "guest checkout" if int(v) == 1 else "registered customer"


def _sku_orders_min(v: Any, row: Row) -> str:
    if _missing(v):
        return "no SKU history yet"
    if int(v) == 0:
        return "contains a SKU never ordered before"
    return f"its least ordered SKU was ordered {_count(v, 'time', 'times')} before"


def _sku_orders_mean(v: Any, row: Row) -> str:
    if _missing(v):
        return "no SKU history yet"
    return f"its SKUs were ordered {_num(round(float(v)))} times before on average"


def _sku_rate_max(v: Any, row: Row) -> str:
    if _missing(v):
        return "no exception history for its SKUs yet"
    sku = _get(row, SKU_ID_KEY)
    who = f"SKU {sku}" if sku is not None else "a SKU in this order"
    return f"{who} had exceptions on {_pct(v)} of its orders"


def _sku_rate_mean(v: Any, row: Row) -> str:
    if _missing(v):
        return "no exception history for its SKUs yet"
    return f"its SKUs had exceptions on {_pct(v)} of their orders on average"


def _decayed_rate(v: Any, row: Row) -> str:
    if _missing(v):
        return "no known outcome of this customer's earlier orders yet"
    return f"customer's exception rate, recent orders weighted most, is {_pct(v)}"


def _orders_recent(v: Any, row: Row) -> str:
    if _missing(v):
        return "guest checkout: no order history to go by"
    if int(v) == 0:
        return "no other order from this customer in the last 30 days"
    return f"customer placed {_count(v, 'other order', 'other orders')} in the last 30 days"


def _exceptions_recent(v: Any, row: Row) -> str:
    if _missing(v):
        return "guest checkout: no known outcome of earlier orders"
    if int(v) == 0:
        return "no exception of this customer came to light in the last 30 days"
    return f"{_count(v, 'exception', 'exceptions')} of this customer came to light in the last 30 days"


def _days_since_exception(v: Any, row: Row) -> str:
    if _missing(v):
        return "no known exception of this customer"
    return f"customer's last exception came to light {_days(v)} ago"


def _sku_count_ratio(v: Any, row: Row) -> str:
    if _missing(v):
        return "no earlier basket of this customer to compare with"
    n = _get(row, "order_n_distinct_skus")
    head = f"{_count(n, 'SKU', 'SKUs')} in the order" if n is not None else "number of SKUs in the order"
    return f"{head} is {_times(v)} this customer's usual basket"


def _sku_repeat_share(v: Any, row: Row) -> str:
    if _missing(v):
        return "guest checkout: no earlier baskets to compare with"
    if float(v) == 0:
        return "none of its SKUs were bought by this customer before"
    if float(v) == 1:
        return "the customer bought every SKU of this order before"
    return f"the customer bought {_pct(v)} of its SKUs before"


def _sku_prior_exceptions(v: Any, row: Row) -> str:
    if _missing(v):
        return "guest checkout: no known outcome of earlier orders"
    if int(v) == 0:
        return "customer had no exception before on any SKU of this order"
    return f"customer had exceptions before on {_count(v, 'SKU', 'SKUs')} of this order"


def _sku_decayed_max(v: Any, row: Row) -> str:
    if _missing(v):
        return "no exception history for its SKUs yet"
    return f"a SKU in this order had exceptions on {_pct(v)} of its recent orders"


def _sku_decayed_mean(v: Any, row: Row) -> str:
    if _missing(v):
        return "no exception history for its SKUs yet"
    return f"its SKUs had exceptions on {_pct(v)} of their recent orders on average"


def _sku_rate_value_weighted(v: Any, row: Row) -> str:
    if _missing(v):
        return "no exception history for its SKUs yet"
    return f"weighted by line value, its SKUs had exceptions on {_pct(v)} of their orders"


def _quantity_vs_usual(which: str) -> Template:
    """``log(1 + units) - mean log(1 + units)`` of earlier orders, said as a ratio of (1 + units)."""

    def template(v: Any, row: Row) -> str:
        if _missing(v):
            return "no earlier order of its SKUs to compare quantities with"
        return f"{which} ordered in {_times(np.exp(float(v)))} its usual quantity (1 + units, geometric mean)"

    return template


def _category_rate(what: str) -> Template:
    column = f"order_{what}"

    def template(v: Any, row: Row) -> str:
        if _missing(v):
            return f"{what} missing or without known outcomes yet"
        value = _get(row, column)
        who = f"orders from {what} {value}" if value is not None else f"orders from this {what}"
        return f"{who} had exceptions {_pct(v)} of the time"

    return template


def _hour(v: Any, row: Row) -> str:
    if _missing(v):
        return "time of day unknown"
    h = int(v)
    return f"placed between {h:02d}:00 and {(h + 1) % 24:02d}:00"


def _dayofweek(v: Any, row: Row) -> str:
    return "day of week unknown" if _missing(v) else f"placed on a {_DAYS[int(v) % 7]}"


def _weekend(v: Any, row: Row) -> str:
    if _missing(v):
        return "day of week unknown"
    return "placed at the weekend" if int(v) == 1 else "placed on a weekday"


def _month(v: Any, row: Row) -> str:
    return "month unknown" if _missing(v) else f"placed in {_MONTHS[(int(v) - 1) % 12]}"


def _category(what: str) -> Template:
    def template(v: Any, row: Row) -> str:
        if _missing(v):
            return f"{what} missing or not seen in training"
        return f"{what} {v}"

    return template


def _simple(fmt: str, missing: str) -> Template:
    def template(v: Any, row: Row) -> str:
        return missing if _missing(v) else fmt.format(_num(v))

    return template


REASON_TEMPLATES: dict[str, Template] = {
    # order composition
    "order_n_lines": _simple("{} lines in the order", "number of lines unknown"),
    "order_n_distinct_skus": _simple("{} different SKUs in the order", "number of SKUs unknown"),
    "order_total_quantity": _simple("{} units in total", "total quantity unknown"),
    "order_max_line_quantity": _simple("one line orders {} units", "line quantities unknown"),
    "order_value": _order_value,
    "order_mean_unit_price": _simple("average unit price {}", "unit prices unknown"),
    "order_max_unit_price": _simple("most expensive item costs {} per unit", "unit prices unknown"),
    # customer history
    "customer_is_guest": _guest,
    "customer_prior_orders": _prior_orders,
    "customer_prior_value_median": _prior_value_median,
    "customer_value_ratio": _value_ratio,
    "customer_days_since_first_order": _days_since_first,
    "customer_days_since_last_order": _days_since_last,
    "customer_prior_labeled": _prior_labeled,
    "customer_prior_exceptions": _prior_exceptions,
    "customer_prior_exception_rate": _exception_rate,
    "customer_exception_rate_halflife_90d": _decayed_rate,
    "customer_orders_last_30d": _orders_recent,
    "customer_exceptions_last_30d": _exceptions_recent,
    "customer_days_since_last_exception": _days_since_exception,
    "customer_sku_count_ratio": _sku_count_ratio,
    "customer_sku_repeat_share": _sku_repeat_share,
    "customer_sku_prior_exceptions": _sku_prior_exceptions,
    # SKU history
    "sku_prior_orders_min": _sku_orders_min,
    "sku_prior_orders_mean": _sku_orders_mean,
    "sku_prior_exception_rate_max": _sku_rate_max,
    "sku_prior_exception_rate_mean": _sku_rate_mean,
    "sku_exception_rate_halflife_90d_max": _sku_decayed_max,
    "sku_exception_rate_halflife_90d_mean": _sku_decayed_mean,
    "sku_exception_rate_value_weighted": _sku_rate_value_weighted,
    "sku_quantity_vs_usual_max": _quantity_vs_usual("one SKU is"),
    "sku_quantity_vs_usual_mean": _quantity_vs_usual("its SKUs are on average"),
    # time
    "time_hour": _hour,
    "time_dayofweek": _dayofweek,
    "time_is_weekend": _weekend,
    "time_month": _month,
    # categoricals
    "order_country": _category("country"),
    "order_channel": _category("channel"),
    "order_region": _category("region"),
    "order_country_exception_rate": _category_rate("country"),
    "order_channel_exception_rate": _category_rate("channel"),
    "order_region_exception_rate": _category_rate("region"),
}
"""feature name -> ``template(value, row) -> sentence`` (without the contribution)."""


def format_contribution(contribution: float) -> str:
    """``0.3149 -> "+0.31"``, ``-0.004 -> "-0.004"`` (small values keep one significant digit)."""
    c = float(contribution)
    text = f"{c:+.2f}"
    if text in ("+0.00", "-0.00") and c != 0:
        text = f"{c:+.1g}"
    return text


def reason_text(feature: str, value: Any, row: Row | None = None) -> str:
    """The sentence for one feature value (no contribution), using ``row`` for features that need others."""
    template = REASON_TEMPLATES.get(feature)
    if template is None:
        return f"{feature} is missing" if _missing(value) else f"{feature} is {_plain(value)}"
    return template(value, row or {})


def make_reason(feature: str, value: Any, contribution: float, row: Row | None = None) -> Reason:
    """One reason dict ``{feature, value, contribution, text}`` with JSON-safe ``value``."""
    text = f"{reason_text(feature, value, row)} ({format_contribution(contribution)})"
    return {"feature": feature, "value": _jsonable(value), "contribution": float(contribution), "text": text}


def build_reasons(
    features: FeatureTable, contributions: Contributions, k: int = 5, positive_only: bool = True
) -> list[list[Reason]]:
    """The reasons of every row: its top ``k`` contributions (``training.explain.top_contributions``).

    ``features`` holds the rows' feature values as shown to people (row ``i`` explains ``contributions``
    row ``i``; extra columns such as ``order_value`` or ``SKU_ID_KEY`` feed the sentences). With
    ``positive_only`` (default) only features that pushed the score *up* are reasons; otherwise the
    strongest negative ones follow them.
    """
    rows = n_rows(features)
    if rows != len(contributions):
        raise ValueError(
            f"features has {rows} rows but contributions has {len(contributions)}; "
            f"pass the feature rows that were explained, in the same order."
        )
    missing = [f for f in contributions.feature_names if not has_column(features, f)]
    if missing:
        raise ValueError(
            f"features lacks the explained feature column(s) {missing}; pass the same feature "
            f"frame that was explained."
        )
    top = contributions.top(k=k, positive_only=positive_only)
    names = contributions.feature_names
    columns = _Columns(features)
    out: list[list[Reason]] = []
    for i in range(rows):
        row = _RowView(columns, i)
        out.append(
            [
                make_reason(names[j], row.get(names[j]), contributions.values[i, j], row)
                for j in top[i]
                if j >= 0
            ]
        )
    return out


class _Columns:
    """Column arrays of a frame, converted on first use (a request explains one row: touch few columns)."""

    def __init__(self, frame: FeatureTable):
        self.frame = frame
        self.names = list(frame.columns if isinstance(frame, pd.DataFrame) else frame)
        self.cache: dict[str, np.ndarray | None] = {}

    def __call__(self, key: str) -> np.ndarray | None:
        if key not in self.cache:
            self.cache[key] = column_values(self.frame, key) if has_column(self.frame, key) else None
        return self.cache[key]


class _RowView(Mapping):
    """Read-only mapping view of row ``i`` (what templates receive as ``row``)."""

    def __init__(self, columns: _Columns, i: int):
        self.columns = columns
        self.i = i

    def __getitem__(self, key: str) -> Any:
        values = self.columns(key)
        if values is None:
            raise KeyError(key)
        return values[self.i]

    def __iter__(self):
        return iter(self.columns.names)

    def __len__(self) -> int:
        return len(self.columns.names)


def _plain(value: Any) -> str:
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        return _num(value)
    return str(value)


def _jsonable(value: Any) -> float | int | str | None:
    if _missing(value):
        return None
    if isinstance(value, bool | np.bool_):
        return int(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        v = float(value)
        return int(v) if v == int(v) and abs(v) < 2**53 else v
    return str(value)
