"""``POST /v1/events``: the OMS reports new orders and their outcomes, so history features stay current.

Stored durably (``serving.store.events``) and idempotent on ``order_id``; see ``serving.services.events`` for the
statuses and ``serving.history`` for when scoring sees them (immediately on this replica, within
``ORDERPULSE_EVENTS_REFRESH_INTERVAL_S`` on the others).
"""

from typing import Any

from fastapi import APIRouter

from serving.deps import (
    EventsDep,
    MetricsDep,
    ModelsDep,
    OrderHistoryDep,
    RequestIdDep,
    SettingsDep,
    VolumeDep,
)
from serving.errors import check_batch_size, error_responses
from serving.schemas.orders import EventsIn, EventsOut
from serving.services.events import ingest_events
from serving.services.order_volume import Counted

__all__ = ["router"]

router = APIRouter(tags=["events"])


@router.post("/v1/events", response_model=EventsOut, responses=error_responses(400, 413, 422, 503))
def post_events(
    body: EventsIn,
    events: EventsDep,
    live: OrderHistoryDep,
    models: ModelsDep,
    metrics: MetricsDep,
    settings: SettingsDep,
    request_id: RequestIdDep,
    volume: VolumeDep,
) -> dict[str, Any]:
    """Store ``orders`` (same shape as scoring) and ``labels`` / ``exceptions`` ``{order_id, label, labeled_at}``,
    their ids as the tables' id rule reads them (``stored_as``, ``ids_whole_float_repaired``).

    With ``ORDERPULSE_VOLUME_EVENT_KEYS`` the accepted orders are also counted per series and step, and the
    steps this request closed are judged (``volume``; see ``serving.services.order_volume``): ``volume_late``,
    ``volume_future`` and ``volume_ahead`` count the orders stored but not judged now."""
    check_batch_size(len(body.orders) + len(body.labels), settings.max_batch_orders)
    loaded = models.models.get("anomaly")
    state = live.for_model(loaded) if loaded is not None else None
    counting = volume is not None and volume.orders is not None
    counted: list[Counted] = []

    def count(conn: Any, orders: list) -> None:  # in the transaction storing the orders
        counted.append(volume.count_orders_in(conn, orders))

    result = ingest_events(
        body, events, state, request_id=request_id, on_accepted=count if counting else None
    )
    metrics.on_ids_repaired("events", result["ids_whole_float_repaired"])
    changed = result["orders"]["accepted"] + result["labels"]["accepted"] > 0
    if loaded is not None and changed and settings.events_refresh_on_write:
        state = live.refresh(loaded)
    interval = settings.events_refresh_interval_s
    result["visible"] = (
        "now on this replica" if settings.events_refresh_on_write else "after this replica's next refresh"
    ) + (
        f"; within {interval:g} s on other replicas"
        if interval > 0
        else "; other replicas do not poll (interval 0)"
    )
    result["history"] = state.describe() if state is not None else None
    if counting:
        result["volume"] = volume.close_order_steps()
        result["volume_late"] = sum(c.late for c in counted)
        result["volume_future"] = sum(c.future for c in counted)
        result["volume_ahead"] = sum(volume.orders.ahead(c) for c in counted)
    return result
