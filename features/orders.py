"""Order lines -> the ``series`` table (orders, units or revenue per key and period) and its ``static`` table.

``aggregate_orders(orders, "D", by=("country",), measure="quantity")`` turns a validated orders table into the
``series`` input of the demand forecaster (``series_id``, ``ds``, ``y``) plus a ``static`` table of the key
columns (``series_id`` and one column per key, e.g. ``country``), so a shop that only has an order log can
forecast. ``orderpulse features build series`` is this function on files.

Documented choices:

* ``ds`` is the start of the period: the hour (``"H"``), the midnight (``"D"``) or the first day of the week
  (``"W"``: weeks start on Monday, i.e. the labels of ``pd.date_range(freq="W-MON")``; ``"W-SUN"`` etc. start
  them on that weekday instead). These are the frequencies the forecaster supports
  (``features.calendar.base_freq``). Timestamps are the ones ``features.validation`` produces (UTC when the
  input carried an offset, otherwise as given).
* Every series runs on the full regular grid from its first order's period to the TABLE's last period (the
  period of the newest order of any key). Periods without any order of that key get ``y = 0``: the order log
  is complete, so no order means no demand, not a missing value. Zeros between a key's first and last order
  and zeros after its last order (up to the table's end) are counted separately in the report: a key that
  stopped selling keeps getting zeros, so it is not forecast from a stale level. Nothing is invented before a
  key's first order.
* ``measure="orders"`` counts distinct ``order_id`` per key and period: an order with three lines of one SKU
  counts once for that SKU. ``"quantity"`` sums ``quantity``; ``"revenue"`` sums ``quantity * unit_price``.
* A value at ``ds`` is computed only from orders created inside its period, so appending newer orders never
  changes an earlier period (only the padding grows).
* ``series_id`` is the key values joined with ``"|"`` (``"UK|web"``), or ``"all"`` without keys. A missing
  key value (a guest's ``customer_id``, an empty ``country``) becomes the group ``"(missing)"``; its lines
  are counted in the report, never dropped.

The ``AggregationReport`` is returned next to the tables (``report.to_dict()`` is JSON-ready) and logged; the
frames carry no ``attrs``, so ``DataFrame.to_parquet`` writes them as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from features.calendar import base_freq, step_length

__all__ = ["AggregationReport", "MEASURES", "MISSING_KEY", "OrderSeries", "aggregate_orders"]

Measure = Literal["orders", "quantity", "revenue"]

MEASURES = ("orders", "quantity", "revenue")
MISSING_KEY = "(missing)"
"""Group name for lines whose key column is empty (e.g. guest orders when ``by=("customer_id",)``)."""

_log = logging.getLogger(__name__)

_WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_REQUIRED = {
    "orders": ("order_id", "created_at"),
    "quantity": ("created_at", "quantity"),
    "revenue": ("created_at", "quantity", "unit_price"),
}


@dataclass
class AggregationReport:
    """What ``aggregate_orders`` did: lines in, series and rows out, zero periods and missing keys."""

    freq: str
    measure: str
    by: list[str]
    lines_in: int
    series_out: int = 0
    rows_out: int = 0
    first_period: str = ""
    last_period: str = ""
    zero_periods_between_orders: int = 0
    zero_periods_padded_to_table_end: int = 0
    missing_key_lines: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-serialisable values."""
        return asdict(self)

    def __str__(self) -> str:
        missing = ", ".join(f"{c}={n}" for c, n in self.missing_key_lines.items()) or "none"
        return (
            f"aggregate_orders(freq={self.freq}, measure={self.measure}, by={self.by}): {self.lines_in} order "
            f"lines -> {self.series_out} series, {self.rows_out} rows from {self.first_period} to "
            f"{self.last_period} (periods without orders set to 0: {self.zero_periods_between_orders} between "
            f"a key's orders, {self.zero_periods_padded_to_table_end} after its last order up to the table's "
            f"end; lines with a missing key, grouped as {MISSING_KEY!r}: {missing})"
        )


class OrderSeries(NamedTuple):
    """What ``aggregate_orders`` returns: the ``series`` and ``static`` tables and the report."""

    series: pd.DataFrame
    static: pd.DataFrame
    report: AggregationReport


def aggregate_orders(
    orders: pd.DataFrame,
    freq: str,
    by: Sequence[str] | str = (),
    measure: Measure | str = "orders",
) -> OrderSeries:
    """Aggregate order lines to one series per key on the full regular grid (see the module doc).

    ``orders`` is a validated orders table (``features.validation.validate(df, "orders")``). ``freq`` is
    ``"H"``, ``"D"``, ``"W"`` (weeks starting Monday) or ``"W-<DAY>"``. ``by`` names the key columns (empty:
    one series ``"all"``). ``measure`` is ``"orders"`` (distinct orders), ``"quantity"`` (units) or
    ``"revenue"`` (``quantity * unit_price``).

    Returns ``OrderSeries(series, static, report)``: ``series`` (``series_id`` string, ``ds``, ``y``) sorted
    by (``series_id``, ``ds``), which passes ``validate(series, "series")`` unchanged; ``static``
    (``series_id`` and the key columns as strings, one row per series), which passes ``validate(static,
    "static")``; and the ``AggregationReport``.
    """
    step_name, anchor = _parse_freq(freq)
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {MEASURES}. Got {measure!r} instead.")
    keys = (by,) if isinstance(by, str) else tuple(by)
    if "series_id" in keys:
        raise ValueError(
            "by=('series_id',) is not allowed: series_id is the joined key that aggregate_orders writes. "
            "Rename that column in the orders table or aggregate by other columns."
        )
    needed = _REQUIRED[measure] + keys
    missing = [c for c in dict.fromkeys(needed) if c not in orders.columns]
    if missing:
        raise ValueError(
            f"aggregate_orders(measure={measure!r}, by={keys}) needs columns {missing} that the "
            f"orders table lacks (found: {list(orders.columns)[:12]}). Pass a validated orders "
            f"table or choose `by` among its columns."
        )
    if not pd.api.types.is_datetime64_dtype(orders["created_at"]):
        raise TypeError(
            f"orders.created_at must be datetime64 (tz-naive). Got dtype {orders['created_at'].dtype}"
            f" instead. Pass the table through features.validation.validate(df, 'orders') first."
        )
    if orders["created_at"].isna().any():
        raise ValueError(
            f"orders.created_at has {int(orders['created_at'].isna().sum())} missing values. "
            f"Pass the table through features.validation.validate(df, 'orders') first."
        )
    if orders.empty:
        raise ValueError("orders has no rows: there is nothing to aggregate. Pass a non-empty orders table.")

    freq_name = step_name if step_name != "W" else f"W-{_WEEKDAYS[anchor]}"
    report = AggregationReport(freq=freq_name, measure=str(measure), by=list(keys), lines_in=len(orders))
    step = int(step_length(step_name).value)
    ds = _period_start(orders["created_at"].to_numpy("datetime64[ns]").view("int64"), step_name, anchor)
    frame = pd.DataFrame({"_ds": ds})
    for col in keys:
        frame[col] = _key_values(orders[col], col, report, n_keys=len(keys))
    if measure == "orders":
        frame["_order"] = orders["order_id"].to_numpy()
        frame = frame.drop_duplicates()
        frame["_y"] = 1.0
    elif measure == "quantity":
        frame["_y"] = orders["quantity"].to_numpy("float64")
    else:
        frame["_y"] = orders["quantity"].to_numpy("float64") * orders["unit_price"].to_numpy("float64")

    if keys:
        group_codes, key_table = _series_keys(frame, keys)
    else:
        group_codes = np.zeros(len(frame), dtype="int64")
        key_table = pd.DataFrame({"series_id": pd.array(["all"], dtype="string")})
    series_ids = key_table["series_id"].to_numpy(dtype=object)
    out, between, padded = _fill_periods(
        group_codes, frame["_ds"].to_numpy(), frame["_y"].to_numpy(), series_ids, step
    )

    report.series_out = len(series_ids)
    report.rows_out = len(out)
    report.first_period = str(out["ds"].min())
    report.last_period = str(out["ds"].max())
    report.zero_periods_between_orders = between
    report.zero_periods_padded_to_table_end = padded
    _log.info("%s", report)
    return OrderSeries(out, key_table, report)


# ---------------------------------------------------------------------------------------------------------


def _parse_freq(freq: str) -> tuple[str, int]:
    """``("H"|"D"|"W", anchor weekday)``: Monday = 0, used for weekly periods only."""
    try:
        name = base_freq(freq)
    except (TypeError, ValueError):
        raise ValueError(
            f"freq must be one of 'H' (hourly), 'D' (daily), 'W' (weeks starting Monday) or 'W-<DAY>' "
            f"(weeks starting on DAY, e.g. 'W-SUN'). Got {freq!r} instead."
        ) from None
    text = freq.strip().upper()
    anchor = _WEEKDAYS.index(text.split("-", 1)[1]) if name == "W" and "-" in text else 0
    return name, anchor


def _period_start(ns: np.ndarray, freq: str, anchor: int) -> np.ndarray:
    """Floor int64 nanoseconds to the period start (floor division also works before 1970)."""
    day_ns = int(step_length("D").value)
    if freq == "W":
        day = ns // day_ns
        weekday = (day + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
        return (day - (weekday - anchor) % 7) * day_ns
    step = int(step_length(freq).value)
    return ns - ns % step


def _key_values(values: pd.Series, col: str, report: AggregationReport, n_keys: int) -> np.ndarray:
    text = values.astype("string")
    n_missing = int(text.isna().sum())
    if n_missing:
        report.missing_key_lines[col] = n_missing
        text = text.fillna(MISSING_KEY)
    if n_keys > 1 and text.str.contains("|", regex=False).any():
        bad = text[text.str.contains("|", regex=False)].unique()[:3].tolist()
        raise ValueError(
            f"Column {col!r} has values containing '|' (e.g. {bad}), which would make the joined "
            f"series_id ambiguous. Replace '|' in that column or aggregate by fewer columns."
        )
    return text.to_numpy(dtype=object)


def _series_keys(frame: pd.DataFrame, keys: tuple[str, ...]) -> tuple[np.ndarray, pd.DataFrame]:
    """Group code per row (groups in sorted series_id order) and the key table (series_id + key columns)."""
    grouped = frame.groupby(list(keys), sort=True, dropna=False)
    codes = grouped.ngroup().to_numpy("int64")
    uniques = grouped.size().index.to_frame(index=False).astype("string")
    ids = uniques[keys[0]]
    for col in keys[1:]:
        ids = ids.str.cat(uniques[col], sep="|")
    # sorting the tuples is not sorting the joined strings ("a|b" vs "a b|c"): renumber by the joined id
    order = np.argsort(ids.to_numpy(dtype=object), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    table = pd.concat([ids.rename("series_id"), uniques], axis=1).iloc[order].reset_index(drop=True)
    return rank[codes], table


def _fill_periods(
    codes: np.ndarray, ds: np.ndarray, y: np.ndarray, ids: np.ndarray, step: int
) -> tuple[pd.DataFrame, int, int]:
    """Sum ``y`` per (group, period); emit every period from each group's first one to the table's last.

    Returns the frame and the number of zero periods between a group's orders and after its last order.
    """
    n_groups = len(ids)
    first = np.full(n_groups, np.iinfo("int64").max, dtype="int64")
    own_last = np.full(n_groups, np.iinfo("int64").min, dtype="int64")
    np.minimum.at(first, codes, ds)
    np.maximum.at(own_last, codes, ds)
    table_last = int(ds.max())
    lengths = (table_last - first) // step + 1
    offsets = np.zeros(n_groups + 1, dtype="int64")
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    group_of_row = np.repeat(np.arange(n_groups), lengths)
    within = np.arange(total, dtype="int64") - offsets[group_of_row]
    grid_ds = first[group_of_row] + within * step
    position = offsets[codes] + (ds - first[codes]) // step
    values = np.bincount(position, weights=y, minlength=total)
    empty = np.bincount(position, minlength=total) == 0
    after_last = grid_ds > own_last[group_of_row]
    out = pd.DataFrame(
        {
            "series_id": pd.array(ids[group_of_row], dtype="string"),
            "ds": grid_ds.astype("datetime64[ns]"),
            "y": values.astype("float64"),
        }
    )
    return out, int((empty & ~after_last).sum()), int(after_last.sum())
