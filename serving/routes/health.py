"""Liveness and readiness: ``/health`` answers while the process runs; ``/ready`` when it can serve.

``/ready`` is 200 only when every kind in ``Settings.require_models`` is loaded and the audit store answers;
otherwise 503 with the stable error body, naming what is missing and why (the last load error). Both routes
are open (no API key), so the reasons are given without local paths or URIs (``<path>`` / ``<uri>``); the
full errors are in the service log.
"""

import re
from typing import Any

from fastapi import APIRouter, Request

from serving.deps import HolderDep, SettingsDep
from serving.errors import ServiceNotReadyError, error_responses

__all__ = ["router"]

router = APIRouter(tags=["operations"])

_URI = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]*")
_PATH = re.compile(r"(?<![\w/])(?:~|\.{1,2})?/(?!v1/|ready\b|health\b)[^\s'\":;,()]+")


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process is up (no dependency is checked)."""
    return {"status": "ok"}


@router.get("/ready", responses=error_responses(503))
def ready(request: Request, settings: SettingsDep, holder: HolderDep) -> dict[str, Any]:
    """Readiness: the required models are loaded and the audit store is reachable."""
    snapshot = holder.snapshot()
    missing = snapshot.missing(settings.require_models)
    errors = holder.last_errors
    audit = getattr(request.app.state, "audit", None)
    audit_error = "the audit store is not open" if audit is None else None
    if audit is not None:
        try:
            audit.ping()
        except Exception as exc:
            audit_error = f"the audit store does not answer: {type(exc).__name__}: {_public(str(exc))}"
    if missing or audit_error:
        parts = []
        if missing:
            reasons = "; ".join(f"{k}: {_public(errors.get(k, 'not loaded yet'))}" for k in missing)
            parts.append(f"required models not loaded: {', '.join(missing)} ({reasons})")
        if audit_error:
            parts.append(audit_error)
        raise ServiceNotReadyError(
            "; ".join(parts),
            details={
                "missing_models": missing,
                "errors": {k: _public(errors[k]) for k in missing if k in errors},
                "audit": audit_error or "ok",
            },
        )
    return {
        "status": "ready",
        "models": {k: m.version for k, m in snapshot.models.items()},
        "generation": snapshot.generation,
    }


def _public(text: str) -> str:
    """``text`` without local paths and URIs (these bodies are served without an API key)."""
    return _PATH.sub("<path>", _URI.sub("<uri>", text))
