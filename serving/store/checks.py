"""The event store's guard: ``features.bounds`` applied to what is written and to what is read back.

Writes: ``check_orders`` / ``check_labels`` / ``check_actuals`` raise ``ValueError`` naming the event, the field
and the value before anything is stored (the request schemas refuse these already; this keeps other callers
from storing a row that later requests could not process).

Reads: ``drop_unusable`` removes stored rows that are out of bounds (rows written before the bounds existed,
or by hand) so one bad row cannot break every later history build or forecast; what it drops is counted,
logged with examples and reported to ``on_skip`` (the app's ``orderpulse_event_rows_skipped`` gauge).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from features.bounds import (
    MAX_ACTUAL,
    MAX_ID_LENGTH,
    MAX_QUANTITY,
    MAX_TEXT_LENGTH,
    MAX_UNIT_PRICE,
    MIN_QUANTITY,
    number_problem,
    out_of_bounds_rows,
    text_problem,
    timestamp_problem,
)

if TYPE_CHECKING:
    from serving.store.events import Actual, LabelEvent, OrderEvent

__all__ = ["check_orders", "check_labels", "check_actuals", "drop_unusable", "SkipListener", "TABLE_RULES"]

SkipListener = Callable[[str, int], None]
"""``on_skip(table, n_rows)``: called after each read with the rows of ``table`` left out (0 included)."""

_log = logging.getLogger("orderpulse.serving.events")

TABLE_RULES: dict[str, dict[str, Any]] = {
    "order_events": {
        "timestamps": ("created_at",),
        "ids": ("order_id", "customer_id", "sku"),
        "texts": ("country", "channel", "region"),
        "numbers": {"quantity": (MIN_QUANTITY, MAX_QUANTITY), "unit_price": (0.0, MAX_UNIT_PRICE)},
        "key": "order_id",
    },
    "label_events": {"timestamps": ("labeled_at",), "ids": ("order_id",), "numbers": {"label": (0, 1)}},
    "actuals": {"timestamps": ("ds",), "ids": ("series_id",), "numbers": {"y": (0.0, MAX_ACTUAL)}},
}


def check_orders(orders: Sequence[OrderEvent]) -> None:
    """Raise ``ValueError`` for the first order with a value out of bounds."""
    for order in orders:
        _raise("order", order.order_id, _order_problems(order))


def check_labels(labels: Sequence[LabelEvent]) -> None:
    """Raise ``ValueError`` for the first label with a value out of bounds."""
    for label in labels:
        problems = [_text("order_id", label.order_id), _time("labeled_at", label.labeled_at)]
        _raise("label", label.order_id, [*problems, _binary("label", label.label)])


def check_actuals(actuals: Sequence[Actual]) -> None:
    """Raise ``ValueError`` for the first actual with a value out of bounds."""
    for a in actuals:
        problems = [_text("series_id", a.series_id), _time("ds", a.ds), _number("y", a.y, 0.0, MAX_ACTUAL)]
        _raise("actual", a.series_id, [*problems, _binary("open", a.open)])


def drop_unusable(frame: pd.DataFrame, table: str, on_skip: SkipListener | None = None) -> pd.DataFrame:
    """``frame`` (rows read from ``table``) without the rows out of bounds; for orders, without every line of
    an order that has one bad line or field."""
    rules = TABLE_RULES[table]
    columns = {
        k: tuple(c for c in rules.get(k, ()) if c in frame.columns) for k in ("timestamps", "ids", "texts")
    }
    numbers = {c: r for c, r in rules.get("numbers", {}).items() if c in frame.columns}
    bad, counts = out_of_bounds_rows(frame, numbers=numbers, **columns)
    key = rules.get("key")
    if bad.any() and key is not None:
        bad = frame[key].isin(frame.loc[bad, key]).to_numpy() | bad
    n_bad = int(bad.sum())
    if n_bad:
        examples = frame.loc[bad].head(3).astype(str).to_dict("records")
        _log.warning(
            "skipped %d stored %s rows that are out of bounds (per column: %s; e.g. %s): they are not used; "
            "delete or correct them in the database",
            n_bad,
            table,
            counts,
            examples,
        )
        frame = frame.loc[~bad].reset_index(drop=True)
    if on_skip is not None:
        on_skip(table, n_bad)
    return frame


def _order_problems(order: OrderEvent) -> list[str | None]:
    problems = [
        _text("order_id", order.order_id),
        _text("customer_id", order.customer_id),
        _time("created_at", order.created_at),
        *(_text(f, getattr(order, f), MAX_TEXT_LENGTH) for f in ("country", "channel", "region")),
    ]
    for n, (sku, quantity, price) in enumerate(order.lines):
        problems += [
            _text(f"lines[{n}].sku", sku),
            _number(f"lines[{n}].quantity", quantity, MIN_QUANTITY, MAX_QUANTITY),
            _number(f"lines[{n}].unit_price", price, 0.0, MAX_UNIT_PRICE),
        ]
    return problems


def _binary(field: str, value: Any) -> str | None:
    return None if value in (0, 1) and not isinstance(value, bool) else f"{field} {value!r} is not 0 or 1"


def _text(field: str, value: str | None, max_length: int = MAX_ID_LENGTH) -> str | None:
    if value is None and field != "order_id":
        return None
    if not isinstance(value, str):
        return f"{field} {value!r} is not a string"
    problem = text_problem(value, max_length)
    return f"{field} {value[:40]!r} {problem}" if problem else None


def _time(field: str, value: Any) -> str | None:
    try:
        problem = timestamp_problem(value)
    except (AttributeError, TypeError, OverflowError):
        problem = f"{value!r} is not a timestamp"
    return f"{field}: {problem}" if problem else None


def _number(field: str, value: Any, low: float, high: float) -> str | None:
    problem = number_problem(value, low, high)
    return f"{field}: {problem}" if problem else None


def _raise(kind: str, key: str, problems: list[str | None]) -> None:
    found = [p for p in problems if p]
    if found:
        raise ValueError(
            f"refusing to store the {kind} {str(key)[:40]!r}: {'; '.join(found)} (see features.bounds for the "
            "accepted ranges)"
        )
