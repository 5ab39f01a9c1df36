"""``GET /v1/decisions/{decision_id}``: one recorded decision from the audit trail."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel

from features.bounds import MAX_ID_LENGTH, NO_CONTROL_CHARACTERS
from serving.deps import AuditDep
from serving.errors import NotFoundError, error_responses

__all__ = ["router", "DecisionOut"]

router = APIRouter(tags=["decisions"])


class DecisionOut(BaseModel):
    decision_id: str
    created_at: datetime
    kind: str
    model_name: str
    model_version: str
    model_alias: str | None
    request_id: str | None
    input: Any
    features: Any
    output: Any


@router.get(
    "/v1/decisions/{decision_id}", response_model=DecisionOut, responses=error_responses(404, 422, 503)
)
def get_decision(
    decision_id: Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=NO_CONTROL_CHARACTERS)],
    audit: AuditDep,
) -> dict[str, Any]:
    """The decision with this id as it was recorded before it was returned; 404 when there is none."""
    record = audit.get(decision_id)
    if record is None:
        raise NotFoundError(
            f"no decision with id {decision_id!r}: use the decision_id returned by a score or forecast response",
            details={"decision_id": decision_id},
        )
    return record.to_dict()
