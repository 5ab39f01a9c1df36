"""Outcome events (cancellations, returns) -> the ``labels`` table of the exception classifier.

The common rule: an order is an exception (``label = 1``) when an outcome event for it happens within
``window_days`` after it was created. ``outcome_labels(orders, events, window_days=30)`` applies it;
``orderpulse data labels`` is this function on files.

Events are matched to orders in one of two ways, chosen by the columns of ``events``:

* by ``order_id`` (an OMS that records which order was cancelled or returned): the event counts when
  ``created_at <= event_at <= created_at + window``;
* by ``customer_id`` + ``sku`` (a shop whose returns are separate invoices, like Online Retail): the event
  counts for every order of that customer containing that SKU with ``created_at < event_at <= created_at +
  window``. Guest orders (no ``customer_id``) cannot be matched this way and get no label (counted).

``labeled_at`` is when the label became known: the first matching event for ``label = 1``; the end of the
window (``created_at + window``) for ``label = 0``. An order without an event whose window is still open at
``as_of`` (default: the latest time in the orders and events) is *not* labelled 0, because its outcome is
unknown yet: it is left out of ``labels``, listed in ``pending`` (``order_id, created_at, window_closes_at``)
and counted in the report (``pending_window_open``). Label it by running the rule again later. Events that
match no order in its window are counted (``events_matching_no_order``), as are events without a key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from features.errors import DataValidationError, Problem
from features.ids import MERGED_IDS, WHOLE_FLOAT_IDS, normalize_ids
from features.validation import ValidationReport, parse_timestamps

__all__ = ["LabelReport", "OutcomeLabels", "outcome_labels", "EVENT_TIME"]

EVENT_TIME = "event_at"
"""Name of the events table's time column (when the cancellation or return happened)."""


@dataclass
class LabelReport:
    """What ``outcome_labels`` did: the rule, and how many orders were labelled, pending or unlabelable."""

    match: str  # "order_id" or "customer_sku"
    window_days: float
    as_of: str
    orders: int = 0
    labels: int = 0
    positives: int = 0
    negatives: int = 0
    pending_window_open: int = 0
    guest_orders_unlabelable: int = 0
    events_in: int = 0
    events_without_key: int = 0
    events_matching_no_order: int = 0
    ids_whole_float_repaired: int = 0  # event ids exported as whole floats ("14911.0") made "14911"
    ids_merged_by_repair: int = 0  # distinct event ids as sent that became one ("14911.0" and "14911")

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-serialisable values."""
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"labels ({self.match}, {self.window_days:g}-day window, as of {self.as_of}): {self.orders} orders -> "
            f"{self.labels} labels ({self.positives} positive, {self.negatives} negative); "
            f"{self.pending_window_open} orders pending (window still open, not labelled), "
            f"{self.guest_orders_unlabelable} guest orders unlabelable; {self.events_in} events, "
            f"{self.events_without_key} without a key, {self.events_matching_no_order} matching no order's window"
            + (
                f"; {self.ids_whole_float_repaired} event ids written as whole floats made integer text"
                if self.ids_whole_float_repaired
                else ""
            )
            + (
                f" ({self.ids_merged_by_repair} distinct ids as sent merged with another)"
                if self.ids_merged_by_repair
                else ""
            )
        )


class OutcomeLabels(NamedTuple):
    """What ``outcome_labels`` returns: ``labels``, the ``pending`` orders and the report."""

    labels: pd.DataFrame
    pending: pd.DataFrame
    report: LabelReport


def outcome_labels(
    orders: pd.DataFrame,
    events: pd.DataFrame,
    *,
    window_days: float = 30,
    as_of: pd.Timestamp | str | None = None,
) -> OutcomeLabels:
    """Label orders by the "cancelled/returned within ``window_days``" rule (see the module doc).

    ``orders``: order lines (``order_id, created_at``, plus ``customer_id, sku`` for customer+SKU matching),
    e.g. a validated orders table. ``events``: one row per cancellation/return with ``event_at`` and either
    ``order_id`` or ``customer_id`` + ``sku``. Returns ``OutcomeLabels(labels, pending, report)``; ``labels``
    (``order_id`` string, ``label`` int8, ``labeled_at``) is sorted by the orders' creation time and passes
    ``validate(labels, "labels")``.
    """
    if not window_days > 0:
        raise ValueError(f"window_days must be a positive number of days. Got {window_days!r} instead.")
    match = _match_kind(orders, events)
    window = pd.Timedelta(days=window_days)
    event_at = _event_times(events)
    per_order = _orders_once(orders, match)
    end = max(per_order["created_at"].max(), event_at.max()) if as_of is None else pd.Timestamp(as_of)
    report = LabelReport(match=match, window_days=float(window_days), as_of=str(end), events_in=len(events))
    report.orders = len(per_order)

    counted = ValidationReport(table="events", rows_in=len(events))
    if match == "order_id":
        ev = pd.DataFrame({"order_id": _ids(events["order_id"], counted), "event_at": event_at.to_numpy()})
        keys = ["order_id"]
        lines = per_order[["order_id", "created_at"]]
        inclusive_start = True
    else:
        ev = pd.DataFrame(
            {
                "customer_id": _ids(events["customer_id"], counted),
                "sku": _ids(events["sku"], counted),
                "event_at": event_at.to_numpy(),
            }
        )
        keys = ["customer_id", "sku"]
        cols = ["order_id", "created_at", "customer_id", "sku"]
        lines = pd.DataFrame({c: _column(orders, c) for c in cols})
        lines = lines.loc[lines["customer_id"].notna()].drop_duplicates()
        report.guest_orders_unlabelable = int(per_order["customer_id"].isna().sum())
        per_order = per_order.loc[per_order["customer_id"].notna()]
        inclusive_start = False
    report.ids_whole_float_repaired = counted.repairs.get(WHOLE_FLOAT_IDS, 0)
    report.ids_merged_by_repair = counted.repairs.get(MERGED_IDS, 0)
    keyless = ev[keys].isna().any(axis=1)
    report.events_without_key = int(keyless.sum())
    ev = ev.loc[~keyless].drop_duplicates()
    ev["_event"] = np.arange(len(ev))

    pairs = lines.merge(ev, on=keys, how="inner")
    after = (
        pairs["event_at"] >= pairs["created_at"]
        if inclusive_start
        else pairs["event_at"] > pairs["created_at"]
    )
    in_window = after & (pairs["event_at"] <= pairs["created_at"] + window)
    pairs = pairs.loc[in_window]
    report.events_matching_no_order = int(len(ev) - pairs["_event"].nunique())
    first_event = pairs.groupby("order_id", sort=False)["event_at"].min()

    event_time = per_order["order_id"].map(first_event)
    closes = per_order["created_at"] + window
    positive = event_time.notna().to_numpy()
    negative = ~positive & (closes <= end).to_numpy()
    pending = ~positive & ~negative
    labels = pd.DataFrame(
        {
            "order_id": per_order["order_id"].astype("string"),
            "label": positive.astype("int8"),
            "labeled_at": event_time.fillna(closes).astype("datetime64[ns]"),
        }
    ).loc[positive | negative]
    report.labels = len(labels)
    report.positives = int(positive.sum())
    report.negatives = int(negative.sum())
    report.pending_window_open = int(pending.sum())
    waiting = pd.DataFrame(
        {
            "order_id": per_order["order_id"].astype("string"),
            "created_at": per_order["created_at"],
            "window_closes_at": closes,
        }
    ).loc[pending]
    return OutcomeLabels(labels.reset_index(drop=True), waiting.reset_index(drop=True), report)


# ---------------------------------------------------------------------------------------------------------


def _match_kind(orders: pd.DataFrame, events: pd.DataFrame) -> str:
    if EVENT_TIME not in events.columns:
        raise DataValidationError(
            [
                Problem(
                    "events",
                    EVENT_TIME,
                    "required column is missing",
                    f"name the time of each cancellation/return {EVENT_TIME!r} "
                    f"(found columns: {list(events.columns)[:12]})",
                )
            ]
        )
    if "order_id" in events.columns:
        match, needed = "order_id", ("order_id", "created_at")
    elif {"customer_id", "sku"} <= set(events.columns):
        match, needed = "customer_sku", ("order_id", "created_at", "customer_id", "sku")
    else:
        raise DataValidationError(
            [
                Problem(
                    "events",
                    "order_id",
                    "events name neither the order nor the customer and SKU",
                    "add an 'order_id' column (the cancelled/returned order) or 'customer_id' and 'sku' "
                    f"columns (found columns: {list(events.columns)[:12]})",
                )
            ]
        )
    missing = [c for c in needed if c not in orders.columns]
    if missing:
        raise DataValidationError(
            [
                Problem(
                    "orders",
                    c,
                    "required column is missing",
                    f"matching events by {match} needs orders.{c} (found columns: {list(orders.columns)[:12]})",
                )
                for c in missing
            ]
        )
    return match


def _event_times(events: pd.DataFrame) -> pd.Series:
    parsed = parse_timestamps(events[EVENT_TIME])
    bad = parsed.isna()
    if bad.any():
        examples = [
            {"row": int(i), EVENT_TIME: None if pd.isna(v) else str(v)}
            for i, v in events.loc[bad.to_numpy(), EVENT_TIME].head(3).items()
        ]
        raise DataValidationError(
            [
                Problem(
                    "events",
                    EVENT_TIME,
                    "missing or unparseable date/time",
                    "use ISO 8601 times such as 2011-03-01 14:05:00, or remove these rows",
                    int(bad.sum()),
                    examples,
                )
            ]
        )
    return parsed.reset_index(drop=True)


def _column(orders: pd.DataFrame, col: str) -> np.ndarray:
    if col == "created_at":
        return parse_timestamps(orders[col]).to_numpy()
    return _ids(orders[col]) if col in orders.columns else np.full(len(orders), pd.NA, dtype=object)


def _ids(s: pd.Series, report: ValidationReport | None = None) -> np.ndarray:
    """A column under the id rule, as str objects (``<NA>`` when missing). Always ``normalize_ids``, never the
    fast path of ``ids_as_text`` that takes a ``string`` column as validated: events are never validated, and
    ``read_frame`` reads a CSV's id columns as ``string`` (``"14911.0"`` stays as written)."""
    return normalize_ids(s, report).to_numpy(dtype=object, na_value=pd.NA)


def _orders_once(orders: pd.DataFrame, match: str) -> pd.DataFrame:
    """One row per order (its first line time and customer), sorted by creation time then order id."""
    lines = pd.DataFrame({c: _column(orders, c) for c in ("order_id", "created_at", "customer_id")})
    if lines["order_id"].isna().any() or lines["created_at"].isna().any():
        raise ValueError(
            "orders has lines without order_id or created_at: validate it first "
            "(features.validation.validate(df, 'orders'))."
        )
    per_order = lines.groupby("order_id", sort=False).agg(
        created_at=("created_at", "min"), customer_id=("customer_id", "first")
    )
    per_order = per_order.reset_index().sort_values(["created_at", "order_id"], kind="stable")
    return per_order.reset_index(drop=True)
