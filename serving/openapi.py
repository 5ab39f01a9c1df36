"""The OpenAPI document and the docs pages: statuses and security exactly as the service behaves.

``install_openapi(app, settings)`` makes ``app.openapi()`` complete the document FastAPI generates:

* operations on an auth-exempt path (``Settings.auth_exempt``: ``/health``, ``/ready``, ``/metrics``) carry no
  ``security`` (FastAPI declares the app-wide key dependency on every operation); every other operation
  lists 401 and 403;
* every operation with a request body lists 413 (the body size limit applies to all of them);
* every error status uses the shared ``ErrorBody`` schema (routes declare theirs with
  ``serving.errors.error_responses``).

Docs: ``/docs``, ``/redoc`` and ``/openapi.json`` are served without a key only when ``Settings.docs_public``
is true (default: in profile ``dev``). Otherwise the pages are not served, and ``/openapi.json`` needs an API
key like every ``/v1`` route.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from serving.errors import error_responses
from serving.settings import Settings

__all__ = ["install_openapi", "docs_urls"]

_AUTH_STATUSES = (401, 403)


def docs_urls(settings: Settings) -> dict[str, str | None]:
    """``FastAPI(**docs_urls(settings))``: the default docs URLs when public, none otherwise."""
    if settings.docs_public:
        return {"docs_url": "/docs", "redoc_url": "/redoc", "openapi_url": "/openapi.json"}
    return {"docs_url": None, "redoc_url": None, "openapi_url": None}


def install_openapi(app: FastAPI, settings: Settings) -> None:
    """Complete ``app.openapi()`` (see the module docstring); serve it behind the API key when not public."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            _complete(schema, set(settings.auth_exempt))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    if not settings.docs_public:

        @app.get("/openapi.json", include_in_schema=False)
        async def openapi_json(request: Request) -> JSONResponse:
            return JSONResponse(request.app.openapi())


def _complete(schema: dict[str, Any], exempt: set[str]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    extra = error_responses(*_AUTH_STATUSES, 413)
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if path in exempt:
                operation.pop("security", None)
                statuses = ()
            else:
                statuses = _AUTH_STATUSES
            if "requestBody" in operation:
                statuses = (*statuses, 413)
            for status in statuses:
                responses.setdefault(
                    str(status),
                    {
                        "description": extra[status]["description"],
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
                        },
                    },
                )
    _add_error_schemas(components)


def _add_error_schemas(components: dict[str, Any]) -> None:
    from pydantic.json_schema import models_json_schema

    from serving.errors import ErrorBody

    _, defs = models_json_schema([(ErrorBody, "validation")], ref_template="#/components/schemas/{model}")
    for name, definition in defs.get("$defs", {}).items():
        components.setdefault(name, definition)
