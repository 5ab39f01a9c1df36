"""Order lines -> a ``series`` table: orders, units or revenue per key and period.

``aggregate_orders(orders, "D", by=("sku",), value="quantity")`` turns a validated orders table into the
``series`` input of the demand forecaster (``series_id``, ``ds``, ``y``), so a shop that only has an order log
can still forecast.

Documented choices:

* ``ds`` is the start of the period: the hour (``"H"``), the midnight (``"D"``) or the Monday 00:00 of the
  week (``"W"``, weeks run Monday..Sunday, i.e. the labels of ``pd.date_range(freq="W-MON")``). Timestamps are
  the ones ``features.validation`` produces (UTC when the input carried an offset, otherwise as given).
* Between a key's first and last period, periods without any order get ``y = 0``. For order counts that is a
  real zero (the order log is complete: no order means no demand), not a missing value; the same holds for
  units and revenue. Before a key's first order and after its last one nothing is invented. The number of
  such zero periods is counted in the report.
* ``value="orders"`` counts distinct ``order_id`` per key and period: an order with three lines of one SKU
  counts once for that SKU. ``"quantity"`` sums ``quantity``; ``"revenue"`` sums ``quantity * unit_price``.
* ``series_id`` is the key values joined with ``"|"`` (``"UK|web"``), or ``"all"`` without keys. A missing
  key value (a guest's ``customer_id``, an empty ``country``) becomes the group ``"(missing)"``; its lines
  are counted in the report, never dropped.

The report (``AggregationReport``) is attached to the result as ``result.attrs["report"]`` and logged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

__all__ = ["AggregationReport", "MISSING_KEY", "aggregate_orders"]

Freq = Literal["H", "D", "W"]
Value = Literal["orders", "quantity", "revenue"]

MISSING_KEY = "(missing)"
"""Group name for lines whose key column is empty (e.g. guest orders when ``by=("customer_id",)``)."""

_log = logging.getLogger(__name__)

_NS_HOUR = 3_600 * 10**9
_NS_DAY = 24 * _NS_HOUR
_STEP = {"H": _NS_HOUR, "D": _NS_DAY, "W": 7 * _NS_DAY}
_FREQ_ALIASES = {"H": "H", "h": "H", "D": "D", "d": "D", "W": "W", "W-MON": "W", "w": "W"}
_VALUES = ("orders", "quantity", "revenue")
_REQUIRED = {
    "orders": ("order_id", "created_at"),
    "quantity": ("created_at", "quantity"),
    "revenue": ("created_at", "quantity", "unit_price"),
}


@dataclass
class AggregationReport:
    """What ``aggregate_orders`` did: lines in, series and periods out, zero periods and missing keys."""

    freq: str
    value: str
    lines_in: int
    series_out: int = 0
    rows_out: int = 0
    zero_periods_filled: int = 0
    missing_key_lines: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        missing = ", ".join(f"{c}={n}" for c, n in self.missing_key_lines.items()) or "none"
        return (
            f"aggregate_orders(freq={self.freq}, value={self.value}): {self.lines_in} order lines -> "
            f"{self.series_out} series, {self.rows_out} rows ({self.zero_periods_filled} periods without "
            f"orders set to 0; lines with a missing key, grouped as {MISSING_KEY!r}: {missing})"
        )


def aggregate_orders(
    orders: pd.DataFrame,
    freq: Freq | str,
    by: Sequence[str] | str = (),
    value: Value | str = "orders",
) -> pd.DataFrame:
    """Aggregate order lines to one series per key: ``series_id`` (string), ``ds`` (period start), ``y``.

    ``orders`` is a validated orders table (``features.validation.validate(df, "orders")``). ``freq`` is
    ``"H"``, ``"D"`` or ``"W"`` (Monday-anchored weeks). ``by`` names the key columns (empty: one series
    ``"all"``). ``value`` is ``"orders"`` (distinct orders), ``"quantity"`` (units) or ``"revenue"``
    (``quantity * unit_price``). Periods without orders inside a key's span are ``y = 0`` (see module doc).
    The result is sorted by (``series_id``, ``ds``) and passes ``validate(result, "series")``; its
    ``attrs["report"]`` holds an ``AggregationReport``.
    """
    step_name = _FREQ_ALIASES.get(freq) if isinstance(freq, str) else None
    if step_name is None:
        raise ValueError(
            f"freq must be one of 'H' (hourly), 'D' (daily) or 'W' (weeks starting Monday). "
            f"Got {freq!r} instead."
        )
    if value not in _VALUES:
        raise ValueError(f"value must be one of {_VALUES}. Got {value!r} instead.")
    keys = (by,) if isinstance(by, str) else tuple(by)
    needed = _REQUIRED[value] + keys
    missing = [c for c in dict.fromkeys(needed) if c not in orders.columns]
    if missing:
        raise ValueError(
            f"aggregate_orders(value={value!r}, by={keys}) needs columns {missing} that the "
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

    report = AggregationReport(freq=step_name, value=str(value), lines_in=len(orders))
    step = _STEP[step_name]
    ds = _period_start(orders["created_at"].to_numpy("datetime64[ns]").view("int64"), step_name)
    frame = pd.DataFrame({"_ds": ds})
    for col in keys:
        frame[col] = _key_values(orders[col], col, report, n_keys=len(keys))
    if value == "orders":
        frame["_order"] = orders["order_id"].to_numpy()
        frame = frame.drop_duplicates()
        frame["_y"] = 1.0
    elif value == "quantity":
        frame["_y"] = orders["quantity"].to_numpy("float64")
    else:
        frame["_y"] = orders["quantity"].to_numpy("float64") * orders["unit_price"].to_numpy("float64")

    if keys:
        group_codes, series_ids = _series_ids(frame, keys)
    else:
        group_codes, series_ids = np.zeros(len(frame), dtype="int64"), np.array(["all"], dtype=object)
    y = frame["_y"].to_numpy("float64")
    out = _fill_periods(group_codes, frame["_ds"].to_numpy(), y, series_ids, step)

    report.series_out = len(series_ids)
    report.rows_out = len(out)
    report.zero_periods_filled = int(out.attrs.pop("_filled"))
    out.attrs["report"] = report
    _log.info("%s", report)
    return out


# ---------------------------------------------------------------------------------------------------------


def _period_start(ns: np.ndarray, freq: str) -> np.ndarray:
    """Floor int64 nanoseconds to the period start (floor division also works before 1970)."""
    if freq == "W":
        day = ns // _NS_DAY
        monday_offset = (day + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
        return (day - monday_offset) * _NS_DAY
    step = _STEP[freq]
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


def _series_ids(frame: pd.DataFrame, keys: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Group code per row (groups in sorted series_id order) and the series_id of each group."""
    grouped = frame.groupby(list(keys), sort=True, dropna=False)
    codes = grouped.ngroup().to_numpy("int64")
    uniques = grouped.size().index.to_frame(index=False)
    ids = uniques[keys[0]].astype("string")
    for col in keys[1:]:
        ids = ids.str.cat(uniques[col].astype("string"), sep="|")
    ids_arr = ids.to_numpy(dtype=object)
    # sorting the tuples is not sorting the joined strings ("a|b" vs "a b|c"): renumber by the joined id
    rank = np.argsort(np.argsort(ids_arr, kind="stable"), kind="stable")
    return rank[codes], ids_arr[np.argsort(ids_arr, kind="stable")]


def _fill_periods(
    codes: np.ndarray, ds: np.ndarray, y: np.ndarray, ids: np.ndarray, step: int
) -> pd.DataFrame:
    """Sum ``y`` per (group, period) and emit every period from each group's first to last one."""
    n_groups = len(ids)
    first = np.full(n_groups, np.iinfo("int64").max, dtype="int64")
    last = np.full(n_groups, np.iinfo("int64").min, dtype="int64")
    np.minimum.at(first, codes, ds)
    np.maximum.at(last, codes, ds)
    lengths = (last - first) // step + 1
    offsets = np.zeros(n_groups + 1, dtype="int64")
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    group_of_row = np.repeat(np.arange(n_groups), lengths)
    within = np.arange(total, dtype="int64") - offsets[group_of_row]
    grid_ds = first[group_of_row] + within * step
    position = offsets[codes] + (ds - first[codes]) // step
    values = np.bincount(position, weights=y, minlength=total)
    has_orders = np.bincount(position, minlength=total) > 0
    out = pd.DataFrame(
        {
            "series_id": pd.array(ids[group_of_row], dtype="string"),
            "ds": grid_ds.astype("datetime64[ns]"),
            "y": values.astype("float64"),
        }
    )
    out.attrs["_filled"] = int((~has_orders).sum())
    return out
