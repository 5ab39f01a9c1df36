"""What is being served (``GET /v1/models``) and a manual registry reload (``POST /v1/admin/reload``).

A reload affects the worker process that receives it; with several uvicorn workers use
``ORDERPULSE_RELOAD_INTERVAL_S`` so every worker picks up a new champion by itself.
"""

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from serving.deps import HolderDep, ModelsDep

__all__ = ["router", "ModelInfo", "ModelsResponse", "ReloadResponse"]

router = APIRouter(tags=["models"])


class ModelInfo(BaseModel):
    kind: str
    name: str
    version: str
    alias: str | None
    run_id: str | None
    data_fingerprint: str | None
    metrics: dict[str, float]
    source: str
    model_uri: str | None
    loaded_at: str
    metadata: dict[str, Any] = {}


class ModelsResponse(BaseModel):
    models: list[ModelInfo]
    missing: list[str]
    generation: int


class KindOutcomeOut(BaseModel):
    status: str
    version: str | None
    previous_version: str | None
    source: str | None
    error: str | None


class ReloadResponse(BaseModel):
    ok: bool
    generation: int
    outcomes: dict[str, KindOutcomeOut]


@router.get("/v1/models", response_model=ModelsResponse)
def list_models(models: ModelsDep, holder: HolderDep) -> dict[str, Any]:
    """The loaded models with their registry metadata, and the kinds that are not loaded."""
    return {
        "models": [m.describe() for _, m in sorted(models.models.items())],
        "missing": models.missing(holder.kinds),
        "generation": models.generation,
    }


@router.post("/v1/admin/reload", response_model=ReloadResponse)
def reload_models(holder: HolderDep) -> dict[str, Any]:
    """Ask the registry for the current alias targets now; a model failing its smoke check is not swapped in.

    Always 200 with per-kind outcomes (``loaded``, ``unchanged``, ``refused``, ``failed``, ``not_found``);
    ``ok`` is false when any kind did not end up loaded or unchanged.
    """
    return holder.reload().to_dict()
