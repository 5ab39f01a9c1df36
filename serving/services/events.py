"""Events from the OMS: new orders and their outcomes, stored once (``serving.store.events``) and folded into the
order history scoring uses (``serving.history``).

Statuses per event: ``accepted`` (stored now), ``duplicate`` (already known: sent before, or part of the
model's snapshot; not counted twice), ``conflict`` (a different order or outcome is already known under this
``order_id``; not applied). A label for an order the service has not seen is accepted (the order may be
reported later) and counted as ``unknown_order``: it takes effect once its order is in the history.

Ids are stored as the tables' id rule reads them (``features.ids``), so an event's ``"14911.0"`` meets the
snapshot's ``"14911"``: the request's order ids (orders and labels together), customer ids and SKUs are each one
column; a result whose id was read differently names it in ``stored_as``, and the response counts
``ids_whole_float_repaired`` and ``ids_merged_by_repair`` (two events whose ids became one are then a
``duplicate`` or a ``conflict`` of each other, as the same id sent twice).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from features.ids import MERGED_IDS, WHOLE_FLOAT_IDS, ids_as_text
from features.validation import ValidationReport
from serving.history import HistoryState
from serving.schemas.orders import EventsIn, LabelIn, OrderIn
from serving.store.events import EventStore, LabelEvent, OrderEvent

__all__ = ["ingest_events", "order_event", "label_event", "canonical_events"]

_NOTES = {
    ("order", "duplicate"): "already known: not counted again",
    (
        "order",
        "conflict",
    ): "a different order is stored under this order_id: not applied (the first one stays)",
    ("label", "duplicate"): "already known: not counted again",
    (
        "label",
        "conflict",
    ): "a different outcome is stored for this order_id: not applied (the first one stays)",
    ("order", "snapshot"): "already in the model's training snapshot: not counted again",
    (
        "label",
        "snapshot_conflict",
    ): "the model's snapshot has a different outcome for this order: not applied",
    ("label", "unknown_order"): "no order with this order_id is known yet: used once the order is reported",
}


def order_event(order: OrderIn) -> OrderEvent:
    return OrderEvent(
        order_id=order.order_id,
        created_at=order.created_at,
        customer_id=order.customer_id,
        lines=tuple((line.sku, line.quantity, line.unit_price) for line in order.lines),
        country=order.country,
        channel=order.channel,
        region=order.region,
    )


def label_event(label: LabelIn) -> LabelEvent:
    return LabelEvent(order_id=label.order_id, label=int(label.label), labeled_at=label.labeled_at)


def canonical_events(body: EventsIn) -> tuple[list[OrderIn], list[LabelIn], ValidationReport]:
    """The request's orders and labels with their ids under the id rule (``features.ids``), and the report
    counting ``ids_whole_float_repaired`` / ``ids_merged_by_repair`` (the request itself when nothing changed)."""
    orders, labels = list(body.orders), list(body.labels)
    report = ValidationReport(table="events", rows_in=len(orders) + len(labels))
    order_ids = _ids([o.order_id for o in orders] + [lab.order_id for lab in labels], report)
    customers = _ids([o.customer_id for o in orders], report)
    skus = _ids([line.sku for o in orders for line in o.lines], report)
    if not report.repairs:
        return orders, labels, report
    n_lines = np.cumsum([0] + [len(o.lines) for o in orders])
    orders = [
        o.model_copy(
            update={
                "order_id": order_ids[i],
                "customer_id": customers[i],
                "lines": [
                    line.model_copy(update={"sku": sku})
                    for line, sku in zip(o.lines, skus[n_lines[i] : n_lines[i + 1]], strict=True)
                ],
            }
        )
        for i, o in enumerate(orders)
    ]
    labels = [lab.model_copy(update={"order_id": order_ids[len(orders) + i]}) for i, lab in enumerate(labels)]
    return orders, labels, report


def ingest_events(
    body: EventsIn,
    store: EventStore,
    state: HistoryState | None,
    *,
    request_id: str | None = None,
    on_accepted: Callable[[Any, list[OrderEvent]], None] | None = None,
) -> dict[str, Any]:
    """Store the events of one request; returns counts and one result per event (``EventsOut`` fields).
    ``on_accepted(conn, orders)``: see ``EventStore.add_orders`` (the order volume counts)."""
    orders, labels, report = canonical_events(body)
    results: list[dict[str, Any]] = []
    order_status = _orders(orders, store, state, request_id, results, on_accepted)
    label_status, unknown = _labels(labels, orders, store, state, results)
    sent = [o.order_id for o in body.orders] + [lab.order_id for lab in body.labels]
    for result, as_sent in zip(results, sent, strict=True):
        if result["order_id"] != as_sent:
            result["stored_as"], result["order_id"] = result["order_id"], as_sent
    order_counts = Counter(order_status)
    label_counts = Counter(label_status)
    return {
        "orders": {k: order_counts.get(k, 0) for k in ("accepted", "duplicate", "conflict")},
        "labels": {
            **{k: label_counts.get(k, 0) for k in ("accepted", "duplicate", "conflict")},
            "unknown_order": unknown,
        },
        "results": results,
        "ids_whole_float_repaired": report.repairs.get(WHOLE_FLOAT_IDS, 0),
        "ids_merged_by_repair": report.repairs.get(MERGED_IDS, 0),
    }


def _orders(
    orders: Sequence[OrderIn],
    store: EventStore,
    state: HistoryState | None,
    request_id: str | None,
    results: list[dict[str, Any]],
    on_accepted: Callable[[Any, list[OrderEvent]], None] | None = None,
) -> list[str]:
    snapshot_ids = _in_snapshot(state, [o.order_id for o in orders])
    fresh = [i for i, o in enumerate(orders) if o.order_id not in snapshot_ids]
    events = [order_event(orders[i]) for i in fresh]
    # by position: two orders of one request may share an id (sent twice, or made one by the id rule)
    stored = dict(
        zip(fresh, store.add_orders(events, request_id=request_id, on_accepted=on_accepted), strict=True)
    )
    statuses = []
    for i, order in enumerate(orders):
        if i in stored:
            status = stored[i]
            note = _NOTES.get(("order", status))
        else:
            status, note = "duplicate", _NOTES[("order", "snapshot")]
        statuses.append(status)
        results.append({"kind": "order", "order_id": order.order_id, "status": status, "note": note})
    return statuses


def _labels(
    labels: Sequence[LabelIn],
    orders: Sequence[OrderIn],
    store: EventStore,
    state: HistoryState | None,
    results: list[dict[str, Any]],
) -> tuple[list[str], int]:
    snapshot = state.snapshot_labels if state is not None else {}
    decided: dict[int, tuple[str, str | None]] = {}
    fresh = []
    for i, label in enumerate(labels):
        before = snapshot.get(label.order_id)
        if before is None:
            fresh.append(i)
        elif before == (int(label.label), label.labeled_at.isoformat()):
            decided[i] = ("duplicate", _NOTES[("label", "duplicate")])
        else:
            decided[i] = ("conflict", _NOTES[("label", "snapshot_conflict")])
    fresh_ids = [labels[i].order_id for i in fresh]
    stored = dict(zip(fresh, store.add_labels([label_event(labels[i]) for i in fresh]), strict=True))
    known = set(store.known_order_ids(fresh_ids))
    known |= {o.order_id for o in orders}
    known |= _in_snapshot(state, fresh_ids)
    statuses = []
    unknown = 0
    for i, label in enumerate(labels):
        if i in decided:
            status, note = decided[i]
        else:
            status = stored[i]
            note = _NOTES.get(("label", status))
            if status == "accepted" and label.order_id not in known:
                unknown += 1
                note = _NOTES[("label", "unknown_order")]
        statuses.append(status)
        results.append({"kind": "label", "order_id": label.order_id, "status": status, "note": note})
    return statuses, unknown


def _in_snapshot(state: HistoryState | None, ids: list[str]) -> set[str]:
    """The ``ids`` that are orders of the model's snapshot (hash look-ups, not a scan of the snapshot)."""
    if state is None or not ids:
        return set()
    found = state.snapshot_order_ids.get_indexer(ids) >= 0
    return {i for i, hit in zip(ids, found, strict=True) if hit}


def _ids(values: list[str | None], report: ValidationReport) -> list[str | None]:
    """One column of the request's ids under the id rule (missing as None)."""
    text, missing = ids_as_text(np.array(values, dtype=object), report)
    return [None if m else t for t, m in zip(text.tolist(), missing.tolist(), strict=True)]
