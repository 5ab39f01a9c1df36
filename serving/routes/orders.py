"""``POST /v1/orders/score``: the exception score of one order or a batch, with reasons, recorded before answering.

History features come from this replica's order history (the anomaly model's snapshot plus the events
reported through ``POST /v1/events``; see ``serving.history``). Every decision is written to the audit trail
(one transaction per request, committed before the response) and counted in the Prometheus metrics.

The body is encoded here with orjson and returned as a ``Response``: FastAPI would otherwise validate the dicts
that ``serving.services.scoring`` built against ``ScoredOrder`` / ``ScoreBatchOut`` again (about a tenth of the
CPU of a 100-order request). ``response_model`` still documents the shape in OpenAPI, and
``tests/serving/test_score_route.py`` checks every response against it.
"""

from typing import Any

import orjson
from fastapi import APIRouter, Query, Response

from serving.deps import AuditDep, MetricsDep, ModelsDep, OrderHistoryDep, RequestIdDep, SettingsDep
from serving.errors import check_batch_size, error_responses
from serving.schemas.orders import ExplainMode, ScoreBatchIn, ScoreBatchOut, ScoredOrder, ScoreRequest
from serving.services import scoring

__all__ = ["router"]

router = APIRouter(tags=["orders"])


@router.post(
    "/v1/orders/score",
    response_model=ScoredOrder | ScoreBatchOut,
    responses=error_responses(400, 413, 422, 503),
)
def score_orders(
    body: ScoreRequest,
    models: ModelsDep,
    live: OrderHistoryDep,
    audit: AuditDep,
    metrics: MetricsDep,
    settings: SettingsDep,
    request_id: RequestIdDep,
    explain: ExplainMode = Query(
        "flagged", description="reasons for: flagged orders (default), all orders, or none"
    ),
) -> Response:
    """Score one order (``{order_id, ...}``, answered with one decision) or a batch (``{"orders": [...]}``).

    422 for an invalid order (field-level messages), 413 for more than ``ORDERPULSE_MAX_BATCH_ORDERS``
    orders, 503 when no anomaly model is loaded.
    """
    batch = isinstance(body, ScoreBatchIn)
    orders = body.orders if batch else [body]
    check_batch_size(len(orders), settings.max_batch_orders)
    loaded = models.get("anomaly")
    state = live.for_model(loaded)
    outcome = scoring.score_orders(orders, loaded, state.history, explain=explain, request_id=request_id)
    audit.write_many(outcome.records)
    metrics.observe_scores(outcome.scores, outcome.flagged, model_version=str(loaded.version))
    metrics.on_ids_repaired("score", outcome.ids_whole_float_repaired)
    body: dict[str, Any] = outcome.results[0]
    if batch:
        body = {
            "results": outcome.results,
            "n_orders": len(outcome.results),
            "n_flagged": int(outcome.flagged.sum()),
            "model": scoring.model_ref(loaded),
        }
    return Response(orjson.dumps(body), media_type="application/json")
