"""Events from the OMS: new orders and their outcomes, stored once (``serving.store.events``) and folded into the
order history scoring uses (``serving.history``).

Statuses per event: ``accepted`` (stored now), ``duplicate`` (already known: sent before, or part of the
model's snapshot; not counted twice), ``conflict`` (a different order or outcome is already known under this
``order_id``; not applied). A label for an order the service has not seen is accepted (the order may be
reported later) and counted as ``unknown_order``: it takes effect once its order is in the history.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from serving.history import HistoryState
from serving.schemas.orders import EventsIn, LabelIn, OrderIn
from serving.store.events import EventStore, LabelEvent, OrderEvent

__all__ = ["ingest_events", "order_event", "label_event"]

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
    results: list[dict[str, Any]] = []
    order_status = _orders(body.orders, store, state, request_id, results, on_accepted)
    label_status, unknown = _labels(body.labels, body.orders, store, state, results)
    orders = Counter(order_status)
    labels = Counter(label_status)
    return {
        "orders": {k: orders.get(k, 0) for k in ("accepted", "duplicate", "conflict")},
        "labels": {
            **{k: labels.get(k, 0) for k in ("accepted", "duplicate", "conflict")},
            "unknown_order": unknown,
        },
        "results": results,
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
    fresh = [o for o in orders if o.order_id not in snapshot_ids]
    stored = dict(
        zip(
            (o.order_id for o in fresh),
            store.add_orders([order_event(o) for o in fresh], request_id=request_id, on_accepted=on_accepted),
            strict=True,
        )
    )
    statuses = []
    for order in orders:
        if order.order_id in snapshot_ids:
            status, note = "duplicate", _NOTES[("order", "snapshot")]
        else:
            status = stored[order.order_id]
            note = _NOTES.get(("order", status))
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
    decided: dict[str, tuple[str, str | None]] = {}
    fresh = []
    for label in labels:
        before = snapshot.get(label.order_id)
        if before is None:
            fresh.append(label)
        elif before == (int(label.label), label.labeled_at.isoformat()):
            decided[label.order_id] = ("duplicate", _NOTES[("label", "duplicate")])
        else:
            decided[label.order_id] = ("conflict", _NOTES[("label", "snapshot_conflict")])
    stored = dict(
        zip(
            (lab.order_id for lab in fresh),
            store.add_labels([label_event(lab) for lab in fresh]),
            strict=True,
        )
    )
    known = set(store.known_order_ids([lab.order_id for lab in fresh]))
    known |= {o.order_id for o in orders}
    known |= _in_snapshot(state, [lab.order_id for lab in fresh])
    statuses = []
    unknown = 0
    for label in labels:
        if label.order_id in decided:
            status, note = decided[label.order_id]
        else:
            status = stored[label.order_id]
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
